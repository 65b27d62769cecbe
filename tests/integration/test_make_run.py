"""`make run` in its CI size: `python -m orchestration.demo --small`, against the test stack, with its
lake and Dagster instance in temporary folders, judged by the summary it prints.

`make run` empties its topics and drops the `cdc` keyspace first, so it never runs on a shared stack
(CDC_TEST_STACK_DIR): then this module starts a private one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from orchestration.stack.stack import Stack, StackPorts

# The first test also runs `make run --small` (about 25 minutes on a 2-core machine busy with other
# Spark jobs, a few minutes on an idle one): more time than the suite's per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 3300  # under the timeout above, so a hang fails here, with what make run printed


@pytest.fixture(scope="module")
def demo_stack(request) -> Iterator[Stack]:
    if not os.environ.get("CDC_TEST_STACK_DIR"):
        yield request.getfixturevalue("stack")
        return
    state_dir = Path(tempfile.mkdtemp(prefix="cdc-test-make-run-stack-"))
    private = Stack(state_dir, StackPorts.free(), die_with_parent=True)
    try:
        private.up()
        yield private
    finally:
        private.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def make_run_small(demo_stack, tmp_path_factory) -> tuple[str, Path, Path]:
    """Runs `make run --small` once for the module: (what it printed, its lake, its DAGSTER_HOME).
    Fails with the end of its output if it exits non-zero or runs past DEMO_TIMEOUT_S."""
    folder = tmp_path_factory.mktemp("make_run")
    lake, home, output = folder / "lake", folder / "dagster_home", folder / "make-run.log"
    command = [sys.executable, "-u", "-m", "orchestration.demo", "--small", "--stack-dir", str(demo_stack.state_dir),
               "--lake", str(lake), "--dagster-home", str(home)]
    # the user's settings (another stack, lake or keyspace) must not leak in
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_") and k != "DAGSTER_HOME"}
    started = time.monotonic()
    with open(output, "w") as stdout, open(folder / "make-run.stderr", "w") as stderr:
        demo = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr)
        try:
            returncode = demo.wait(timeout=DEMO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
            returncode = None
    printed = output.read_text()
    print(f"\n`make run --small` took {time.monotonic() - started:.0f}s\n{printed}")
    tail = "\n".join(printed.splitlines()[-40:])
    assert returncode is not None, f"make run --small still ran after {DEMO_TIMEOUT_S}s; it printed:\n{tail}"
    assert returncode == 0, f"make run --small exited {returncode}; stderr in {folder}; it printed:\n{tail}"
    return printed, lake, home


@pytest.fixture(scope="module")
def summary(make_run_small) -> str:
    return make_run_small[0]


def _section(summary: str, title: str) -> str:
    """The lines after `==> <title>` up to the next `==>`."""
    match = re.search(rf"^==> {re.escape(title)}.*?$(.*?)(?=^==> |\Z)", summary, re.M | re.S)
    assert match, f"no '==> {title}' section in:\n{summary}"
    return match.group(1)


def test_make_run_runs_both_micro_batches_in_its_own_instance_and_lake(make_run_small, summary):
    _, lake, home = make_run_small
    assert len(re.findall(r"^    run \w{8}: succeeded, \d+ materializations", summary, re.M)) == 2, summary
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"cdc-lakehouse/batch": "make-run"}))
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
    assert {path.name for path in lake.iterdir()} >= {"bronze", "silver", "gold"}


def test_make_run_summary_shows_rows_in_every_layer_and_silver_equal_to_the_source(summary):
    from assets.factory import load_entities, load_specs

    specs = load_specs()
    rows = _section(summary, "Rows per table")
    for spec in specs:
        match = re.search(rf"^    {re.escape(spec.asset_name)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$", rows, re.M)
        assert match, f"no row for {spec.asset_name} in:\n{rows}"
        bronze, _quarantined, silver, verdict = match.groups()
        assert int(bronze) > 0 and int(silver) > 0, match.group(0)
        assert verdict == "yes", f"silver differs from the source: {match.group(0)}"
    for entity in load_entities(specs):
        match = re.search(rf"^    {re.escape(entity.name)}\s+(\d+)$", rows, re.M)
        assert match and int(match.group(1)) > 0, f"gold {entity.name}: {match.group(0) if match else 'missing'}"


def test_make_run_summary_counts_the_checks(summary):
    checks = _section(summary, "Checks")
    match = re.search(r"^    (\d+) evaluated, (\d+) passed, (\d+) failed$", checks, re.M)
    assert match, checks
    evaluated, passed, failed = map(int, match.groups())
    assert evaluated > 0 and evaluated == passed + failed
    assert "failed (ERROR)" not in checks  # an ERROR check failing would also make `make run` exit 1


def test_make_run_summary_shows_each_projection_and_a_sample_orders_by_customer_query(summary):
    from assets.factory import load_entities, load_projections, load_specs

    projections = _section(summary, "Cassandra projections")
    for projection in load_projections(load_entities(load_specs())):
        match = re.search(rf"^    {re.escape(projection.projection)}: (\d+) rows, as of source commit time", projections, re.M)
        assert match and int(match.group(1)) > 0, f"{projection.projection} in:\n{projections}"
    assert len(re.findall(r"^      reflects Kafka offsets \(next to read\): \S", projections, re.M)) == len(
        load_projections(load_entities(load_specs()))
    )
    query = re.search(r"^    cqlsh> SELECT .* FROM cdc\.orders_by_customer WHERE customer_id = '(.+)' LIMIT 5;\n((?:      .+\n)+)",
                      projections, re.M)
    assert query, f"no sample orders_by_customer query with results in:\n{projections}"


def test_make_run_tells_where_the_ui_is(make_run_small, summary):
    _, lake, home = make_run_small
    assert "Open the Dagster UI (http://127.0.0.1:3000)" in summary
    assert f"DAGSTER_HOME={home} CDC_LAKE_ROOT={lake} " in summary
    assert "dagster dev -w workspace.yaml" in summary


def test_the_loop_mode_after_make_run_records_a_run_that_writes_nothing_and_reuses_the_checks(make_run_small, demo_stack):
    """`python -m orchestration.loop --runs 1` on make run's lake and instance, with nothing new in
    Kafka: the run succeeds, no silver or gold table gets a new version, every check reports the
    result make run's last micro-batch recorded, and every projection is a replay."""
    _, lake, home = make_run_small
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_") and k != "DAGSTER_HOME"}
    environment.update({name: str(value) for name, value in demo_stack.connection_settings().items()})
    environment.update({"DAGSTER_HOME": str(home), "CDC_LAKE_ROOT": str(lake),
                        "CDC_SPARK_LOG": str(home / "loop-spark.log"), "CDC_CUT_IDLE_SECONDS": "5"})
    loop = subprocess.run([sys.executable, "-m", "orchestration.loop", "--runs", "1", "--interval", "0"],
                          cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert loop.returncode == 0, f"{loop.stdout}\n{loop.stderr[-3000:]}"
    assert re.search(r"^run \w{8}: succeeded, \d+ materializations", loop.stdout, re.M), loop.stdout

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(tags={"cdc-lakehouse/batch": "loop"}))
        make_runs = {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(tags={"cdc-lakehouse/batch": "make-run"}))}
        events = [record.event_log_entry.dagster_event for record in instance.get_records_for_run(run.run_id).records
                  if record.event_log_entry.dagster_event is not None]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    materialized = {e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
                    for e in events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
    silver = {k: m["silver_version"].value for k, m in materialized.items() if k.startswith("silver/")}
    gold = {k: m["mode"].value for k, m in materialized.items() if k.startswith("gold/")}
    projections = {k: m["status"].value for k, m in materialized.items() if k.startswith("cassandra/")}
    assert silver and set(silver.values()) == {"unchanged"}, silver
    assert gold and set(gold.values()) == {"skipped"}, gold
    assert projections and set(projections.values()) == {"replay"}, projections
    checks = [e.event_specific_data for e in events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert checks, "the loop's run evaluated no check"
    ran_again = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if "reused_from_run" not in c.metadata]
    assert not ran_again, f"checks evaluated again although no table moved: {ran_again}"
    assert {c.metadata["reused_from_run"].value for c in checks} <= make_runs
