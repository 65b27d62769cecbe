"""Benchmark: project() against raw cassandra-driver upserts of the same rows, in one run.

    .venv/bin/python bench/bench_projections.py --rows 100000 [--orders-per-customer 20]
        [--concurrency 32] [--stack-dir .stack] [--incremental-fraction 0.01]

What is measured, on the `orders_by_customer` projection (assets/projections), from a gold `order`
Delta table of --rows orders written once by Spark (not timed):

1. raw:         the projection's rows, computed and collected beforehand (not timed), written with one
                prepared INSERT ... USING TIMESTAMP and execute_concurrent_with_args into a table of the
                same shape: the floor for writing these rows from one Python process.
2. project:     project() first run, everything included: DDL checks, offsets bookkeeping, the Spark
                plan (SQL, latest-N window, hashes), streaming rows to the driver, the writes, and the
                latest-N trim reads of every touched partition.
3. incremental: --incremental-fraction of the orders change status in gold (a MERGE, not timed), then
                project() again: change data feed, affected partitions, diff, writes.

Without --stack-dir a private Cassandra is started on free ports and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from assets.projection_spec import load_projection_specs
from devtools.stack.stack import Stack, StackPorts
from resources.connections import CassandraResource
from resources.spark_session import build_spark_session
from transforms.projections.ddl import create_table_cql, keyspace_cql
from transforms.projections.project import project
from transforms.projections.rows import ACTION, change_plan

AS_OF_US = 1_772_000_000_000_000


def gold_orders(spark, path: str, rows: int, per_customer: int) -> None:
    """A gold `order` table with the columns the projection reads, one Delta commit."""
    frame = spark.range(rows).select(
        F.format_string("O%08d", "id").alias("order_id"),
        F.format_string("N-%08d", "id").alias("order_number"),
        F.format_string("C%07d", (F.col("id") / per_customer).cast("long")).alias("contact_id"),
        F.lit("A-1").alias("account_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 60).alias("ordered_at"),
        F.timestamp_seconds(F.lit(1_767_225_600)).alias("created_at"),
        F.lit("Open").alias("status"),
        F.lit("OPE").alias("status_code"),
        F.lit("Sales Order").alias("category"),
        (F.col("id") % 1000 / 10).cast("decimal(38,7)").alias("total_amount"),
        F.lit("EUR").alias("currency_code"),
        (F.col("id") % 7).cast("long").alias("item_count"),
    )
    frame.write.format("delta").save(path)


def raw_upserts(session, keyspace: str, spec, rows: list[tuple], concurrency: int) -> float:
    session.execute(create_table_cql(spec, keyspace).replace(f".{spec.table_name} (", ".raw_upserts (", 1))
    columns = list(spec.columns)
    insert = session.prepare(
        f"INSERT INTO {keyspace}.raw_upserts ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        "USING TIMESTAMP ?"
    )
    parameters = [(*row, AS_OF_US) for row in rows]
    started = time.perf_counter()
    for start in range(0, len(parameters), 5000):
        execute_concurrent_with_args(
            session,
            insert,
            parameters[start : start + 5000],
            concurrency=concurrency,
            raise_on_first_error=True,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="gold orders = projection rows")
    parser.add_argument("--orders-per-customer", type=int, default=20, help="at most 30 keeps every row")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--incremental-fraction", type=float, default=0.01)
    parser.add_argument("--stack-dir", help="use (or start) the stack of this state directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-projections-"))
    stack = (
        Stack(args.stack_dir)
        if args.stack_dir
        else Stack(work / "stack", StackPorts.free(), servers=("cassandra",), die_with_parent=True)
    )
    stack.up()
    cluster = Cluster(
        **CassandraResource(contact_points=[stack.cassandra_host], port=stack.cassandra_port).cluster_kwargs()
    )
    session = cluster.connect()
    spark = build_spark_session()
    try:
        spec = next(s for s in load_projection_specs() if s.projection == "orders_by_customer")
        path = str(work / "gold" / "order")
        gold_orders(spark, path, args.rows, args.orders_per_customer)
        keyspace = f"bench_{uuid.uuid4().hex[:8]}"
        session.execute(keyspace_cql(keyspace))

        plan = change_plan(spark, spec, {"order": path}, {"order": 0}, None, [], comparable=False)
        rows = [tuple(row[:-1]) for row in plan.where(F.col(ACTION) == "upsert").collect()]
        raw_seconds = raw_upserts(session, keyspace, spec, rows, args.concurrency)

        first = project(
            spark,
            session,
            spec,
            {"order": path},
            as_of_us=AS_OF_US,
            keyspace=keyspace,
            concurrency=args.concurrency,
        )

        changed = max(1, int(args.rows * args.incremental_fraction))
        DeltaTable.forPath(spark, path).update(
            condition=F.col("order_id") < F.format_string("O%08d", F.lit(changed)),
            set={"status": F.lit("Shipped"), "status_code": F.lit("SHI")},
        )
        second = project(
            spark,
            session,
            spec,
            {"order": path},
            as_of_us=AS_OF_US + 60_000_000,
            keyspace=keyspace,
            concurrency=args.concurrency,
        )

        report = {
            "rows": len(rows),
            "concurrency": args.concurrency,
            "raw_upserts": {"seconds": round(raw_seconds, 2), "rows_per_s": round(len(rows) / raw_seconds)},
            "project_first_run": {
                "seconds": first.seconds,
                "rows_written": first.rows_written,
                "rows_per_s": round(first.rows_written / first.seconds),
                "latency_ms": [first.latency_p50_ms, first.latency_p95_ms, first.latency_p99_ms],
                "rows_trimmed": first.rows_trimmed,
            },
            "project_incremental": {
                "changed_gold_rows": changed,
                "seconds": second.seconds,
                "partitions_affected": second.partitions_affected,
                "rows_written": second.rows_written,
                "rows_unchanged": second.rows_unchanged,
                "latency_ms": [second.latency_p50_ms, second.latency_p95_ms, second.latency_p99_ms],
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        cluster.shutdown()
        spark.stop()
        if not args.stack_dir:
            stack.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
