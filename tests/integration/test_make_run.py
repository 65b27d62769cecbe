"""`make run` in its CI size: `python -m devtools.demo --small`, against the test stack, with its
lake and Dagster instance in temporary folders, judged by the summary it prints and by what its lake
and instance hold: the whole flow end to end (CRM workload with an initial load overlapping the change
stream, and an order service's Debezium workload with its transactional outbox -> Kafka -> bronze ->
silver -> gold -> checks -> Cassandra, in two micro-batches). Silver must equal the generators' true
source tables, gold the cleanup rules applied in plain Python (tests/gold_expectation.py,
tests/order_service_expectation.py) to that truth, the outbox timeline the committed events; the second batch updates gold incrementally; the loop then
runs only what has work, and a run of every asset with nothing new changes no table.

`make run` empties its topics and drops the `cdc` keyspace first, so it never runs on a shared stack
(CDC_TEST_STACK_DIR): then this module starts a private one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from devtools.stack.stack import Stack
from devtools.workload.capture import WorkloadMessage
from devtools.workload.producer import produce_messages

# The first test also runs `make run --small` (about 25 minutes on a 2-core machine busy with other
# Spark jobs, a few minutes on an idle one): more time than the suite's per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 3300  # under the timeout above, so a hang fails here, with what make run printed
# make run stamps its workload to end now; the module names that moment, so it can generate the same
# workload again to compare with
ENDS_AT = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@pytest.fixture(scope="module")
def make_run_small(unshared_stack, tmp_path_factory) -> tuple[str, Path, Path]:
    """Runs `make run --small` once for the module: (what it printed, its lake, its DAGSTER_HOME).
    Fails with the end of its output if it exits non-zero or runs past DEMO_TIMEOUT_S."""
    folder = tmp_path_factory.mktemp("make_run")
    lake, home, output = folder / "lake", folder / "dagster_home", folder / "make-run.log"
    command = [
        sys.executable,
        "-u",
        "-m",
        "devtools.demo",
        "--small",
        "--stack-dir",
        str(unshared_stack.state_dir),
        "--lake",
        str(lake),
        "--dagster-home",
        str(home),
        "--ends-at",
        ENDS_AT.isoformat(),
    ]
    # the user's settings (another stack, lake or keyspace) must not leak in
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_") and k != "DAGSTER_HOME"}
    started = time.monotonic()
    with open(output, "w") as stdout, open(folder / "make-run.stderr", "w") as stderr:
        demo = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
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
    assert "source crm (goldengate_json):" in rows and "source orders (debezium_json):" in rows, rows
    for spec in specs:
        match = re.search(rf"^    {re.escape(spec.asset_name)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$", rows, re.M)
        assert match, f"no row for {spec.asset_name} in:\n{rows}"
        bronze, _quarantined, silver, verdict = match.groups()
        assert int(bronze) > 0 and int(silver) > 0, match.group(0)
        assert verdict == "yes", f"silver differs from the source: {match.group(0)}"
    for entity in load_entities(specs):
        match = re.search(rf"^    {re.escape(entity.name)}\s+(\d+)$", rows, re.M)
        assert match and int(match.group(1)) > 0, (
            f"gold {entity.name}: {match.group(0) if match else 'missing'}"
        )


def _workloads():
    """make run's two workloads, generated again as make run generated them (the same end time)."""
    from devtools.demo import crm_customers, order_service_config, workload_config
    from devtools.workload import generate_workload
    from devtools.workload.order_service import generate_order_service

    crm = generate_workload(workload_config(small=True, ends_at=ENDS_AT))
    return crm, generate_order_service(order_service_config(True, crm_customers(crm), ends_at=ENDS_AT))


def test_make_run_gives_silver_equal_to_the_source_and_gold_the_cleanup_rules(make_run_small, spark):
    from assets.factory import load_entities, load_specs
    from devtools.workload.compare import differences as silver_differences
    from devtools.workload.compare import silver_rows, truth_rows
    from tests.gold_expectation import (
        ambiguous_lookups,
        differences,
        expected_gold,
        read_gold,
        truth_as_silver,
    )
    from transforms.gold.engine import HASH_COLUMN

    _, lake, _ = make_run_small
    crm, service = _workloads()
    specs = load_specs()
    truth = {**crm.state(as_text_values=True), **service.state(as_text_values=True)}
    assert {spec.source for spec in specs} == {"crm", "orders"}
    for spec in specs:
        silver = silver_rows(spark, str(lake / "silver" / spec.asset_name), spec)
        problems = silver_differences(silver, truth_rows(truth[spec.table], spec))
        assert not problems, f"{spec.table}: {len(problems)} differences, e.g. {problems[:3]}"
    bronze_events = sum(
        spark.read.format("delta").load(str(lake / "bronze" / s.asset_name)).count() for s in specs
    )
    # one bronze row per Kafka record with a change: every GoldenGate message, every Debezium one
    # but the tombstones (the re-delivered ones too: each is a record of its own)
    assert bronze_events == len(crm.messages) + sum(m.value is not None for m in service.messages)

    crm_specs = [spec for spec in specs if spec.source == "crm"]
    source = truth_as_silver(truth, crm_specs)
    assert ambiguous_lookups(source) == []
    expected = expected_gold(source)
    for entity in load_entities(crm_specs):
        (key,) = entity.keys
        rows = read_gold(spark, str(lake / "gold" / entity.name), key)
        gold = {k: {c: v for c, v in row.items() if c != HASH_COLUMN} for k, row in rows.items()}
        problems = differences(gold, expected[entity.name])
        assert not problems, f"gold {entity.name}: {len(problems)} differences, e.g. {problems[:3]}"
        assert gold, f"gold {entity.name} is empty"


def test_make_run_order_service_gold_and_its_outbox_timeline_hold_each_committed_event_once(
    make_run_small, unshared_stack, spark
):
    """The order service's gold is its rules applied to the truth; the outbox gives gold `order_event` and
    the Cassandra `order_timeline` every committed event once (the ones the connector re-delivered
    too), none of a rolled-back transaction, each order's events newest first in commit order."""
    from cassandra.cluster import Cluster

    from tests.gold_expectation import differences, read_gold
    from tests.order_service_expectation import expected_order_events, expected_service_orders
    from transforms.gold.engine import HASH_COLUMN

    _, lake, _ = make_run_small
    _, service = _workloads()
    assert service.rolled_back_order_ids and service.redelivered_event_ids  # the workload has both cases

    def gold(entity: str, key: str) -> dict:
        rows = read_gold(spark, str(lake / "gold" / entity), key)
        return {k: {c: v for c, v in row.items() if c != HASH_COLUMN} for k, row in rows.items()}

    orders = gold("service_order", "order_id")
    problems = differences(orders, expected_service_orders(service.state(as_text_values=True)))
    assert not problems, f"gold service_order: {len(problems)} differences, e.g. {problems[:3]}"
    assert not {int(i) for i in service.rolled_back_order_ids} & set(orders)

    events = gold("order_event", "event_id")
    content = {
        k: {c: v for c, v in row.items() if c not in ("committed_at", "source_position")}
        for k, row in events.items()
    }
    committed = list(service.state(as_text_values=True)["public.outbox"].values())  # in commit order
    problems = differences(content, expected_order_events(committed))
    assert not problems, f"gold order_event: {len(problems)} differences, e.g. {problems[:3]}"
    assert not set(service.rolled_back_order_ids) & {row["order_id"] for row in events.values()}
    in_commit_order: dict[str, list[str]] = {}
    for event in service.events:  # the generator's events are in commit order
        in_commit_order.setdefault(event["aggregateid"], []).append(event["id"])

    cluster = Cluster([unshared_stack.cassandra_host], port=unshared_stack.cassandra_port)
    try:
        session = cluster.connect()
        timeline: dict[str, list[str]] = {}
        for order_id in in_commit_order:
            rows = session.execute("SELECT event_id FROM cdc.order_timeline WHERE order_id = %s", (order_id,))
            timeline[order_id] = [row.event_id for row in rows]
        projected = session.execute("SELECT count(*) FROM cdc.order_timeline").one()[0]
    finally:
        cluster.shutdown()
    assert timeline == {order: events[::-1] for order, events in in_commit_order.items()}  # newest first
    assert projected == len(service.events)  # each event once: the re-delivered ones too


def test_make_run_orders_history_shows_each_order_as_the_source_held_it_at_any_moment(make_run_small, spark):
    """silver `orders` keeps its history (SCD2). As of the snapshot's time it holds exactly the orders
    the snapshot read; as of each outbox event's commit time, the order is in the status the event
    reports (the service wrote both in one transaction)."""
    from transforms.merge import read_as_of, read_history

    _, lake, _ = make_run_small
    _, service = _workloads()
    path = str(lake / "silver" / "orders")

    def statuses(moment: datetime) -> dict[int, str]:
        return {row["id"]: row["status"] for row in read_as_of(spark, path, moment).collect()}

    reads = [json.loads(m.value) for m in service.messages if m.topic == "orders.public.orders" and m.value]
    reads = [r for r in reads if r["op"] == "r"]
    snapshot_time = datetime.fromtimestamp(reads[0]["source"]["ts_ms"] / 1000, UTC).replace(tzinfo=None)
    assert statuses(snapshot_time) == {r["after"]["id"]: r["after"]["status"] for r in reads}

    events = (
        spark.read.format("delta")
        .load(str(lake / "gold" / "order_event"))
        .where("event_type != 'OrderDeleted'")
        .orderBy("source_position")
        .collect()
    )
    for event in events[:: max(1, len(events) // 8)]:  # 8 moments across the stream
        assert statuses(event["committed_at"]).get(int(event["order_id"])) == event["status"], event
    assert read_history(spark, path).count() > len(service.final_state["public.orders"])


def test_make_run_second_micro_batch_updates_gold_incrementally(make_run_small):
    from transforms.gold.engine import INCREMENTAL

    _, _, home = make_run_small
    _, events, _ = _newest_run_events(home, "make-run")
    materialized = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    for entity in ("customer", "order", "service_order", "order_event"):
        metadata = {name: value.value for name, value in materialized[f"gold/{entity}"].items()}
        assert (metadata["mode"], metadata["full_recompute_reason"]) == (INCREMENTAL, "-"), metadata
        assert metadata["keys_recomputed"] > 0


def test_make_run_summary_counts_the_checks(summary):
    checks = _section(summary, "Checks")
    match = re.search(r"^    (\d+) evaluated, (\d+) passed, (\d+) failed$", checks, re.M)
    assert match, checks
    evaluated, passed, failed = map(int, match.groups())
    # a clean run passes every check, freshness included: the workload's changes commit up to now
    assert evaluated > 0 and (passed, failed) == (evaluated, 0), checks


def test_make_run_summary_shows_each_projection_and_a_sample_orders_by_customer_query(summary):
    from assets.factory import load_entities, load_projections, load_specs

    projections = _section(summary, "Cassandra projections")
    for projection in load_projections(load_entities(load_specs())):
        match = re.search(
            rf"^    {re.escape(projection.projection)}: (\d+) rows, as of source commit time",
            projections,
            re.M,
        )
        assert match and int(match.group(1)) > 0, f"{projection.projection} in:\n{projections}"
    assert len(re.findall(r"^      reflects Kafka offsets \(next to read\): \S", projections, re.M)) == len(
        load_projections(load_entities(load_specs()))
    )
    query = re.search(
        r"^    cqlsh> SELECT .* FROM cdc\.orders_by_customer WHERE customer_id = '(.+)' LIMIT 5;\n((?:      .+\n)+)",
        projections,
        re.M,
    )
    assert query, f"no sample orders_by_customer query with results in:\n{projections}"


def test_make_run_tells_where_the_ui_is(make_run_small, summary):
    _, lake, home = make_run_small
    assert "Open the Dagster UI (http://127.0.0.1:3000)" in summary
    assert f"DAGSTER_HOME={home} CDC_LAKE_ROOT={lake} " in summary
    assert "dagster dev -w workspace.yaml" in summary


def _loop_once(home: Path, lake: Path, stack: Stack, idle_seconds: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_") and k != "DAGSTER_HOME"}
    environment.update({name: str(value) for name, value in stack.connection_settings().items()})
    environment.update(
        {
            "DAGSTER_HOME": str(home),
            "CDC_LAKE_ROOT": str(lake),
            "CDC_SPARK_LOG": str(home / "loop-spark.log"),
            "CDC_CUT_IDLE_SECONDS": idle_seconds,
        }
    )
    loop = subprocess.run(
        [sys.executable, "-m", "orchestration.loop", "--runs", "1", "--interval", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert loop.returncode == 0, f"{loop.stdout}\n{loop.stderr[-3000:]}"
    return loop.stdout


def _newest_run_events(home: Path, batch: str) -> tuple[dg.DagsterRun, list, set[str]]:
    """The newest run tagged `cdc-lakehouse/batch: <batch>`, its Dagster events, the other runs' ids."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(tags={"cdc-lakehouse/batch": batch}), limit=1)[0]
        earlier = {r.run_id for r in instance.get_runs() if r.run_id != run.run_id}
        events = [
            record.event_log_entry.dagster_event
            for record in instance.get_records_for_run(run.run_id).records
            if record.event_log_entry.dagster_event is not None
        ]
    return run, events, earlier


def _product_row(spark, lake: Path, layer: str, key_column: str, key: str):
    frame = spark.read.format("delta").load(
        str(lake / layer / ("s_prod_int" if layer == "silver" else "product"))
    )
    return frame.where(f"{key_column} = '{key}'").collect()


def test_the_loop_runs_only_what_has_work_after_make_run(make_run_small, unshared_stack, spark):
    """`python -m orchestration.loop --runs 1` on make run's lake and instance (orchestration.pending):

    1. Nothing new in Kafka: no table has work and no freshness verdict changed (make run's data is a
       few minutes old), so the loop starts no run.
    2. One product renamed at the source: the run holds exactly bronze, cut and silver of S_PROD_INT
       and the gold entities and projections built from it, and gold shows the new name."""
    from orchestration.definitions import entities, projections

    _, lake, home = make_run_small
    printed = _loop_once(home, lake, unshared_stack, idle_seconds="5")
    assert "tables with work: none" in printed and "nothing to run" in printed, printed
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert not instance.get_runs(filters=dg.RunsFilter(tags={"cdc-lakehouse/batch": "loop"}))

    [product] = _product_row(
        spark,
        lake,
        "silver",
        "ROW_ID",
        spark.read.format("delta")
        .load(str(lake / "silver" / "s_prod_int"))
        .where("NOT _deleted")
        .first()["ROW_ID"],
    )
    renamed = {
        "table": "SIEBEL.S_PROD_INT",
        "op_type": "U",
        "op_ts": "2026-12-01 10:00:00.000000",
        "current_ts": "2026-12-01T10:00:01.000000",
        "pos": "99999999990000000000",
        "csn": "999999999999",
        "primary_keys": ["ROW_ID"],
        "after": {"ROW_ID": product["ROW_ID"], "NAME": "Renamed by the loop test"},
    }
    produce_messages(
        unshared_stack.kafka_bootstrap,
        [WorkloadMessage("crm.S_PROD_INT", product["ROW_ID"].encode(), json.dumps(renamed).encode())],
        partitions=3,
    )
    printed = _loop_once(home, lake, unshared_stack, idle_seconds="0")
    assert "tables with work: s_prod_int (1 waiting)" in printed, printed
    run, events, _ = _newest_run_events(home, "loop")
    assert run.status == dg.DagsterRunStatus.SUCCESS, printed
    materialized = {
        e.asset_key.to_user_string()
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    gold = {entity.name for entity in entities if "s_prod_int" in entity.sources}
    served = {p.projection for p in projections if gold & set(p.entities)}
    assert materialized == {
        "bronze/s_prod_int",
        "cut/crm",
        "silver/s_prod_int",
        *(f"gold/{name}" for name in gold),
        *(f"cassandra/{name}" for name in served),
    }
    [row] = _product_row(spark, lake, "gold", "product_id", product["ROW_ID"].strip())
    assert row["name"] == "Renamed by the loop test"


def test_a_run_of_every_asset_with_nothing_new_changes_no_table(make_run_small, unshared_stack, spark):
    """Every bronze, silver and gold asset materialized again (what the schedule runs) after make run and
    the loop consumed everything: no silver or gold table gets a commit."""
    from assets.factory import load_entities, load_specs
    from tests.pipeline import materialize_all, resources

    _, lake, _ = make_run_small
    specs = load_specs()
    tables = [f"silver/{s.asset_name}" for s in specs] + [f"gold/{e.name}" for e in load_entities(specs)]

    def history_lengths() -> dict[str, int]:
        return {table: spark.sql(f"DESCRIBE HISTORY delta.`{lake / table}`").count() for table in tables}

    versions = history_lengths()
    assert materialize_all(specs, resources(unshared_stack.kafka_bootstrap, lake)).success
    assert history_lengths() == versions
