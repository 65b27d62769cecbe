"""`make run`: the whole platform on this machine, end to end, with a summary at the end.

1. starts the local stack (Kafka, Cassandra) in .stack/ (reusing it if it runs);
2. generates two sources' workloads and sends them to Kafka in two parts: a realistic CRM (GoldenGate
   JSON: an initial load, then changes) and an order service (Debezium from Postgres: a snapshot, then
   changes, with a transactional outbox, rolled-back transactions and a connector restart that
   delivers some changes twice);
3. runs the `microbatch` job twice (after each part) in the Dagster instance at .dagster_home/, so
   `make dev` shows the runs, materializations and checks in the UI;
4. prints rows per table and layer, whether silver equals the source, the checks, the quarantine,
   sample `orders_by_customer` and `order_timeline` queries and the Kafka offsets the projections
   reflect.

Every `make run` starts from empty tables: it deletes its topics, .lake/ and the `cdc` keyspace first.
`--small` is the size CI uses. `--stack-dir`, `--lake` and `--dagster-home` put the stack, the tables
and the Dagster instance elsewhere (the test of `make run` uses its own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
LAKE = PROJECT_ROOT / ".lake"
STACK_DIR = PROJECT_ROOT / ".stack"
DEFAULT_SEED = 7
CONTACTS = "SIEBEL.S_CONTACT"  # the CRM table whose rows are the order service's customers


def workload_config(small: bool, seed: int = DEFAULT_SEED, ends_at: datetime | None = None):
    """The CRM workload `make run` feeds through Kafka (`small`: the size CI uses), ending at `ends_at`
    (see ending_at)."""
    from devtools.workload import WorkloadConfig, generate_workload

    initial_rows, changes = (40, 150) if small else (200, 1500)
    config = WorkloadConfig(
        seed=seed, initial_rows=initial_rows, changes=changes, initial_load=True, overlap=5
    )
    return ending_at(config, generate_workload, ends_at)


def order_service_config(
    small: bool, customer_ids: tuple[str, ...], seed: int = DEFAULT_SEED, ends_at: datetime | None = None
):
    """The order service's workload (Debezium from Postgres, its outbox included) `make run` feeds
    beside the CRM's, ending at `ends_at` (see ending_at); its customers are `customer_ids` (the CRM's
    contacts: see crm_customers)."""
    from devtools.workload.order_service import OrderServiceConfig, generate_order_service

    initial_orders, changes = (12, 60) if small else (60, 600)
    config = OrderServiceConfig(
        seed=seed,
        initial_orders=initial_orders,
        changes=changes,
        rollback_rate=0.1,  # a visible share of order transactions rolls back, as the demo shows
        customer_ids=customer_ids,
    )
    return ending_at(config, generate_order_service, ends_at)


def crm_customers(crm_workload) -> tuple[str, ...]:
    """The ROW_IDs of the CRM's contacts at the end of its workload: the order service's customers."""
    return tuple(sorted(crm_workload.state()[CONTACTS]))


def ending_at(config, generate, ends_at: datetime | None):
    """`config` whose last transaction commits at `ends_at` (UTC; default: now, to the second), so its
    tables look as fresh as a live source's and the freshness checks pass. A generator's commit times
    only move forward from its start, by steps that do not depend on the start: one generation
    measures the span."""
    ends_at = ends_at or datetime.now(UTC).replace(microsecond=0)
    if ends_at.tzinfo is not None:  # the generators write UTC times without a zone
        ends_at = ends_at.astimezone(UTC).replace(tzinfo=None)
    span = generate(config).ended_at - config.start_time
    return replace(config, start_time=ends_at - span)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a small workload (what CI runs)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--ends-at",
        type=datetime.fromisoformat,
        default=None,
        help="commit time of the workload's last transaction, UTC (default: now)",
    )
    parser.add_argument(
        "--stack-dir",
        type=Path,
        default=None,
        help="state directory of the stack to use or start (default $CDC_STACK_DIR, else .stack/)",
    )
    parser.add_argument(
        "--lake", type=Path, default=LAKE, help="folder of the Delta tables, emptied first (default .lake/)"
    )
    parser.add_argument(
        "--dagster-home",
        type=Path,
        default=DAGSTER_HOME,
        help="the Dagster instance's folder (default .dagster_home/, the one `make dev` opens)",
    )
    args = parser.parse_args(argv)
    lake, dagster_home = args.lake.resolve(), args.dagster_home.resolve()
    ends_at = args.ends_at or datetime.now(UTC).replace(microsecond=0)
    config = workload_config(args.small, args.seed, ends_at)
    started = time.monotonic()

    from devtools.stack.stack import Stack

    stack = Stack(args.stack_dir)
    step(f"Starting the local stack (Kafka, Cassandra) in {_shown(stack.state_dir)}")
    stack.up()
    for name, value in stack.connection_settings().items():
        os.environ[name] = str(value)
    print(f"    Kafka {stack.kafka_bootstrap}, Cassandra {stack.cassandra_host}:{stack.cassandra_port}")

    step(
        f"Generating the CRM workload (seed {config.seed}: {config.initial_rows} initial rows, "
        f"{config.changes} change transactions, committed from {config.start_time:%Y-%m-%d %H:%M:%S} UTC)"
    )
    from devtools.workload import generate_workload
    from devtools.workload.order_service import generate_order_service

    workload = generate_workload(config)
    print(f"    {len(workload.messages)} GoldenGate messages over {len(workload.topics())} topics")
    service_config = order_service_config(args.small, crm_customers(workload), args.seed, ends_at)
    step(
        f"Generating the order service's workload (Debezium from Postgres, seed {service_config.seed}: "
        f"{service_config.initial_orders} orders in its snapshot, {service_config.changes} change transactions)"
    )
    service = generate_order_service(service_config)
    print(
        f"    {len(service.messages)} Debezium messages over {len(service.topics())} topics: "
        f"{len(service.events)} outbox events committed, {len(service.rolled_back_order_ids)} order "
        f"transactions rolled back, {len(service.redelivered_event_ids)} events delivered twice"
    )
    _reset(stack, workload.topics() + service.topics(), lake)

    step(f"Preparing the Dagster instance in {_shown(dagster_home)}")
    import dagster as dg

    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    os.environ["CDC_LAKE_ROOT"] = str(lake)
    spark_log = os.environ.setdefault("CDC_SPARK_LOG", str(stack.state_dir / "spark.log"))
    print(f"    Spark's own log goes to {spark_log}")
    from devtools.workload.producer import produce_messages
    from orchestration.loop import describe, run_microbatch

    quiet_seconds = float(os.environ.setdefault("CDC_CUT_IDLE_SECONDS", "5"))
    instance = dg.DagsterInstance.get()
    crm_half, service_half = len(workload.messages) // 2, len(service.messages) // 2
    parts = (
        workload.messages[:crm_half] + service.messages[:service_half],
        workload.messages[crm_half:] + service.messages[service_half:],
    )
    results = []
    for number, part in enumerate(parts, start=1):
        step(f"Micro-batch {number}/2: producing {len(part)} messages, then materializing every asset")
        produce_messages(stack.kafka_bootstrap, part, partitions=3)
        # The transaction-consistent cut (transforms/cut.py) holds back each partition's newest
        # transaction until the partition has been quiet for CDC_CUT_IDLE_SECONDS: let it go quiet.
        time.sleep(quiet_seconds)
        run_started = time.monotonic()
        result = run_microbatch(instance, "make-run")
        results.append(result)
        print(f"    {describe(result, time.monotonic() - run_started)}")

    from devtools.demo_summary import print_summary

    truth = {**workload.state(as_text_values=True), **service.state(as_text_values=True)}
    ok = print_summary(truth, results[-1], stack)
    step(f"Done in {time.monotonic() - started:.0f}s")
    print(f"    Spark's own log (its warnings): {spark_log}")
    if dagster_home == DAGSTER_HOME and lake == LAKE and stack.state_dir == STACK_DIR:
        print("    The stack keeps running. Open the Dagster UI with `make dev` (http://127.0.0.1:3000):")
        print(
            "    the asset graph, both runs, their metadata and checks are there. Stop the servers: `make stack-down`."
        )
    else:
        settings = " ".join(f"{name}={value}" for name, value in stack.connection_settings().items())
        print("    The stack keeps running. Open the Dagster UI (http://127.0.0.1:3000) with:")
        print(
            f"    DAGSTER_HOME={dagster_home} CDC_LAKE_ROOT={lake} {settings} dagster dev -w workspace.yaml"
        )
        print(f"    Stop the servers: `CDC_STACK_DIR={stack.state_dir} make stack-down`.")
    return 0 if ok and all(r.success for r in results) else 1


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the project when inside it."""
    return f"{path.relative_to(PROJECT_ROOT)}/" if path.is_relative_to(PROJECT_ROOT) else f"{path}/"


def _reset(stack, topics: list[str], lake: Path) -> None:
    """Empty topics, lake and keyspace, so every `make run` shows one clean story."""
    from cassandra.cluster import Cluster

    from devtools.workload.producer import delete_topics

    delete_topics(stack.kafka_bootstrap, topics)
    shutil.rmtree(lake, ignore_errors=True)
    cluster = Cluster([stack.cassandra_host], port=stack.cassandra_port)
    try:
        cluster.connect().execute("DROP KEYSPACE IF EXISTS cdc", timeout=60)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
