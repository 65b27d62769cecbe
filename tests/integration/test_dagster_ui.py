"""The Dagster UI, as a user opens it: `dagster dev -w workspace.yaml`, in a real headless Chromium.

`dagster dev` (webserver + daemon, the project's dagster.yaml with its run queue) runs as a
subprocess on a free port, with a temporary DAGSTER_HOME and lake, against the test stack. The
browser is Debian's chromium driven by Selenium through Debian's chromedriver (`make browser`
installs both); nothing is downloaded.

Needs /usr/bin/chromium and /usr/bin/chromedriver: run `make browser` (or `make test`) first.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devtools.stack import process
from devtools.stack.ports import HOST, free_ports
from devtools.stack.stack import Stack

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOCATION = "orchestration.definitions"  # the code location workspace.yaml names
LAYERS = ("bronze", "silver", "gold", "projections")
SERVE_TIMEOUT_S = 420  # dagster dev loads the definitions in a code server; slow on a busy 2-core machine
RUN_TIMEOUT_S = 900


# -- servers --------------------------------------------------------------------------------------


def _terminate_with_this_process() -> None:
    """In the child: the kernel sends it SIGTERM when the test process dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class DagsterDev:
    """`dagster dev` in its own process group; stop() ends it with its webserver, daemon, code
    server and run processes."""

    def __init__(self, stack: Stack, home: Path, lake: Path):
        self.port = free_ports(1)[0]
        self.url = f"http://{HOST}:{self.port}"
        self.log = home / "dagster-dev.log"
        self.lake = lake
        shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
        environment = {
            **os.environ,
            **stack.connection_settings(),
            "DAGSTER_HOME": str(home),
            "CDC_LAKE_ROOT": str(lake),
        }
        dagster = str(Path(sys.executable).parent / "dagster")
        command = [dagster, "dev", "-w", "workspace.yaml", "-h", HOST, "-p", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_terminate_with_this_process,
            )

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self) -> None:
        """Until the webserver answers and the code location has loaded without error."""
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster dev exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
                entry = next(e for e in entries if e["name"] == LOCATION)
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    raise AssertionError(f"code location {LOCATION} failed to load: {loaded['message']}")
                if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
                    return
                last = f"location {entry['loadStatus']}"
            except (requests.RequestException, KeyError, StopIteration) as error:
                last = repr(error)
            time.sleep(2)
        raise AssertionError(
            f"dagster dev did not serve {LOCATION} in {SERVE_TIMEOUT_S}s ({last}):\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        return process.log_tail(self.log, 40)

    def stop(self) -> None:
        process.stop_group(self.process.pid, grace_seconds=30)
        self.process.wait()


@pytest.fixture(scope="module")
def dagster_dev(unshared_stack, tmp_path_factory) -> Iterator[DagsterDev]:
    home, lake = tmp_path_factory.mktemp("dagster_home"), tmp_path_factory.mktemp("lake")
    server = DagsterDev(unshared_stack, home, lake)
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), (
            f"{path} is missing: run `make browser` (installs Debian's chromium and chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # the asset graph draws only the nodes in view: a tall window shows a whole layer
        "--window-size=2400,4800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers --------------------------------------------------------------------------------------


def assets_by_layer() -> dict[str, set[str]]:
    """Group name -> the names the graph shows for its assets (last key part), from the Definitions."""
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    layers: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        layers.setdefault(graph.get(key).group_name, set()).add(key.path[-1])
    return layers


def graph_node_labels(driver) -> set[str]:
    """The asset names on the nodes of the asset graph (HTML inside the graph's SVG)."""
    from selenium.webdriver.common.by import By

    nodes = driver.find_elements(By.XPATH, "//*[local-name()='foreignObject']//div[@data-tooltip]")
    return {node.get_attribute("data-tooltip") for node in nodes}


def wait_for(driver, condition, what: str, timeout_s: float = 180):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=1).until(condition)
    except TimeoutException:
        screenshot = Path(tempfile.mkdtemp(prefix="dagster-ui-")) / "page.png"
        driver.save_screenshot(str(screenshot))
        raise AssertionError(
            f"{what}: not seen within {timeout_s}s at {driver.current_url} (screenshot {screenshot})"
        ) from None


LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""

RUN_STATUS = (
    """query Status($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"""
)

LAST_MATERIALIZATION = """
query Latest($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 1) {
      runId
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    } }
  }
}"""


def launch_run(server: DagsterDev, selector: dict) -> str:
    """Launch a run of the selected job (and assets) through the webserver's GraphQL API, as the UI's
    Launch and Materialize buttons do; its run id."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", **selector}
    result = server.graphql(LAUNCH, {"executionParams": {"selector": selector}})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def launch_materialization(server: DagsterDev, path: list[str]) -> str:
    """Materialize one asset, as the UI's Materialize button does."""
    return launch_run(
        server,
        {
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": path}],
            "assetCheckSelection": [],  # the asset alone: its checks would be a second step (and Spark start)
        },
    )


LAUNCH_BACKFILL = """
mutation Backfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
  }
}"""

BACKFILL = """query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status runs(limit: 100) { runId } } ... on PythonError { message } } }"""

OBSERVATIONS = """
query Observations($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetObservations(limit: 20) {
      runId
      metadataEntries { label ... on JsonMetadataEntry { jsonString } }
    } }
  }
}"""


def backfill_runs(server: DagsterDev, backfill_id: str, expected: int) -> list[dict]:
    """The runs the daemon launched for a backfill, once it has launched `expected` of them."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    backfill = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        assert backfill["status"] not in ("FAILED", "CANCELED"), backfill
        if len(backfill["runs"]) >= expected:
            return backfill["runs"]
        time.sleep(3)
    raise AssertionError(
        f"backfill {backfill_id} launched {backfill.get('runs')} in {RUN_TIMEOUT_S}s:\n{server.log_tail()}"
    )


FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def wait_for_status(server: DagsterDev, run_id: str, statuses: tuple[str, ...], what: str) -> str:
    """Poll the run until its status is one of `statuses`; that status."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = server.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in statuses:
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not {what} within {RUN_TIMEOUT_S}s:\n{server.log_tail()}")


def wait_until_finished(server: DagsterDev, run_id: str) -> str:
    return wait_for_status(server, run_id, FINISHED, "finish")


@pytest.fixture(scope="module")
def crm_workload(unshared_stack):
    """The small CRM workload of the whole-flow tests on the project's real CRM topics (the code location
    reads them), produced once for the module. Every topic of the project's specs is emptied first: they
    are the real topic names, which other tests on the same stack (make run) fill. The order service's
    topics stay empty: a micro-batch finds nothing there."""
    from assets.factory import load_specs
    from devtools.workload.producer import create_topics, delete_topics, produce_messages
    from tests.pipeline import small_crm_workload

    workload = small_crm_workload("crm")
    topics = [spec.topic for spec in load_specs()]
    delete_topics(unshared_stack.kafka_bootstrap, topics)
    create_topics(unshared_stack.kafka_bootstrap, topics, partitions=3)
    produce_messages(unshared_stack.kafka_bootstrap, workload.messages, partitions=3)
    return workload


@dataclass(frozen=True)
class MaterializedBronze:
    asset_name: str  # the busiest table's bronze asset
    produced: int  # messages its topic got
    event_dates: tuple[str, ...]  # the source commit days (UTC) of those messages
    run_id: str
    status: str


@pytest.fixture(scope="module")
def materialized_bronze(dagster_dev, crm_workload) -> MaterializedBronze:
    """The busiest table's bronze asset materialized through the webserver's GraphQL API (as the UI's
    Materialize button does)."""
    from collections import Counter

    from assets.factory import load_specs

    per_topic = Counter(message.topic for message in crm_workload.messages)
    spec = max(load_specs(), key=lambda s: per_topic[s.topic])
    messages = [m for m in crm_workload.messages if m.topic == spec.topic]
    days = sorted({json.loads(m.value)["op_ts"][:10] for m in messages})
    run_id = launch_materialization(dagster_dev, ["bronze", spec.asset_name])
    return MaterializedBronze(
        spec.asset_name, len(messages), tuple(days), run_id, wait_until_finished(dagster_dev, run_id)
    )


# -- tests ----------------------------------------------------------------------------------------


def test_asset_graph_shows_every_asset_of_each_layer(dagster_dev, browser):
    layers = assets_by_layer()
    assert set(LAYERS) <= set(layers), f"layers in the Definitions: {sorted(layers)}"

    browser.get(f"{dagster_dev.url}/asset-groups")  # the global lineage: one box per layer
    wait_for(
        browser,
        lambda d: all(layer in d.find_element("tag name", "body").text for layer in LAYERS),
        f"the layers {LAYERS} on the global asset lineage",
    )

    for layer in LAYERS:
        browser.get(f"{dagster_dev.url}/locations/{LOCATION}/asset-groups/{layer}/lineage")
        expected = layers[layer]
        labels = wait_for(
            browser,
            lambda d, expected=expected: (found := graph_node_labels(d)) >= expected and found,
            f"the {layer} assets {sorted(expected)} on the {layer} asset graph",
        )
        assert expected <= labels


def test_materialization_launched_through_the_webserver_succeeds_and_the_run_page_shows_it(
    dagster_dev, browser, materialized_bronze
):
    asset_name, run_id, path = (
        materialized_bronze.asset_name,
        materialized_bronze.run_id,
        ["bronze", materialized_bronze.asset_name],
    )
    status = materialized_bronze.status
    assert status == "SUCCESS", f"run {run_id} ended {status}; see {dagster_dev.url}/runs/{run_id}"

    [materialization] = dagster_dev.graphql(LAST_MATERIALIZATION, {"path": path})["assetOrError"][
        "assetMaterializations"
    ]
    assert materialization["runId"] == run_id
    metadata = {entry["label"]: entry.get("intValue") for entry in materialization["metadataEntries"]}
    assert metadata["records_read"] == materialized_bronze.produced

    browser.get(f"{dagster_dev.url}/runs/{run_id}")

    # the run header's status tag (the page title follows it only sometimes: a first visit opens
    # Dagster's "Join the community" dialog, and the title was once seen to stay without the status),
    # and the RUN_SUCCESS event in its log, which the page loads after the header (on a busy machine the
    # header was once seen with "Loading run logs…" below it)
    def shown_as_a_success(driver) -> bool:
        text = driver.find_element("tag name", "body").text
        return "Success" in text and f"bronze / {asset_name}" in text and "RUN_SUCCESS" in text

    wait_for(
        browser, shown_as_a_success, f"run {run_id} shown as a success on its page, RUN_SUCCESS in its log"
    )


def test_a_date_backfill_launched_through_the_webserver_rewrites_those_days_of_bronze(
    dagster_dev, materialized_bronze
):
    assert materialized_bronze.status == "SUCCESS"
    days = list(materialized_bronze.event_dates)
    params = {
        "selector": {
            "partitionSetName": "bronze_date_backfill_partition_set",
            "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"},
        },
        "partitionNames": days,
    }
    launched = dagster_dev.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    runs = backfill_runs(
        dagster_dev, launched["backfillId"], len(days)
    )  # the daemon launches one run per day
    statuses = {run["runId"]: wait_until_finished(dagster_dev, run["runId"]) for run in runs}
    assert set(statuses.values()) == {"SUCCESS"}, f"backfill runs: {statuses}; see {dagster_dev.url}/runs"

    path = ["bronze", materialized_bronze.asset_name]
    observed = dagster_dev.graphql(OBSERVATIONS, {"path": path})["assetOrError"]["assetObservations"]
    rewritten = {}
    for observation in observed:
        if observation["runId"] in statuses:
            [entry] = [e for e in observation["metadataEntries"] if e["label"] == "backfill"]
            result = json.loads(entry["jsonString"])
            rewritten[result["event_date"]] = result
    assert sorted(rewritten) == days
    assert sum(result["rows_written"] for result in rewritten.values()) == materialized_bronze.produced
    for day, result in rewritten.items():  # the same rows again: what the regular batch had written
        assert result["rows_replaced"] == result["rows_written"] > 0, (day, result)
        assert result["quarantined"] == 0 and result["left_to_regular_batches"] == 0, (day, result)


MICROBATCH_RUNS = """
query Runs {
  runsOrError(filter: {pipelineName: "microbatch"}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
}"""


LATEST_METADATA = """
query Latest($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 1) {
      runId
      metadataEntries { label ... on JsonMetadataEntry { jsonString } ... on TextMetadataEntry { text } }
    } }
  }
}"""


def microbatch_runs(server: DagsterDev) -> dict[str, dict]:
    """The instance's runs of the `microbatch` job by run id, each with its tags as a mapping."""
    runs = server.graphql(MICROBATCH_RUNS)["runsOrError"]["results"]
    return {run["runId"]: {**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in runs}


def test_two_microbatches_launched_at_once_from_the_ui_run_one_after_the_other(
    dagster_dev, crm_workload, materialized_bronze, spark
):
    """A micro-batch launched from the UI while another is in flight: the run queue (the project's
    dagster.yaml, by the job's tag, which the schedule's and the lag sensor's runs carry too:
    test_automation.py) holds the second until the first ends, both succeed, and the lake is what one
    run makes of the workload: bronze holds each record once, silver equals the source, gold the
    cleanup rules applied to it. (After the bronze and backfill tests above: the busiest table's
    bronze already holds its records, which the runs must not read again.)"""
    from assets.factory import load_entities, load_specs
    from tests.lake_truth import bronze_problems, gold_problems, silver_problems

    assert materialized_bronze.status == "SUCCESS"
    first_id = launch_run(dagster_dev, {"jobName": "microbatch"})
    # handed by the run queue to a run worker
    wait_for_status(dagster_dev, first_id, ("STARTING", "STARTED", *FINISHED), "start")
    second_id = launch_run(dagster_dev, {"jobName": "microbatch"})
    runs = microbatch_runs(dagster_dev)
    assert runs[first_id]["status"] in ("STARTING", "STARTED"), "the first run ended too soon"
    assert runs[second_id]["status"] == "QUEUED", runs[second_id]  # held by the run queue

    statuses = {run_id: wait_until_finished(dagster_dev, run_id) for run_id in (first_id, second_id)}
    assert set(statuses.values()) == {"SUCCESS"}, f"{statuses}; see {dagster_dev.url}/runs"
    runs = microbatch_runs(dagster_dev)
    first, second = runs[first_id], runs[second_id]
    assert first["tags"]["cdc-lakehouse/batch"] == second["tags"]["cdc-lakehouse/batch"] == "microbatch"
    assert second["startTime"] >= first["endTime"], (first, second)  # one after the other

    # the order service's topics are empty: its gold entities and projections wait for their first rows
    for path, waits_for in (
        (["gold", "service_order"], "silver/orders"),
        (["cassandra", "order_timeline"], "gold/order_event"),
    ):
        [latest] = dagster_dev.graphql(LATEST_METADATA, {"path": path})["assetOrError"][
            "assetMaterializations"
        ]
        entries = {e["label"]: e.get("jsonString") or e.get("text") for e in latest["metadataEntries"]}
        assert latest["runId"] == second_id, (path, latest["runId"])
        assert waits_for in json.loads(entries["waiting_for"]), (path, entries)

    specs = [spec for spec in load_specs() if spec.source == "crm"]
    lake = dagster_dev.lake
    problems = [
        *bronze_problems(spark, lake, specs, crm_workload),
        *silver_problems(spark, lake, specs, crm_workload),
        *gold_problems(spark, lake, specs, load_entities(specs), crm_workload),
    ]
    assert not problems, "\n".join(problems)
