"""The same Delta MERGE on local files, on S3 (s3a, local s3proxy) and on HDFS (local NameNode + DataNode).

    .venv/bin/python bench/bench_lake_targets.py [--rows 1000000] [--changes 100000] [--repeat 2]
                                                 [--targets local,s3,hdfs]

Starts a private S3 and HDFS on free ports (stopped at the end), one local[2] Spark session for all
targets, writes a `rows`-row table on each target and merges `changes` source rows into it (half
update existing keys, half are new). Prints the best time of `repeat` rounds and the ratio to local.
A small warm-up MERGE runs first, so the first target does not pay for the JVM's warm-up alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from delta.tables import DeltaTable

from devtools.stack.s3 import DEFAULT_BUCKET, LOCAL_REGION
from devtools.stack.stack import Stack, StackPorts
from resources.connections import LakeResource
from resources.spark_session import build_spark_session

TARGETS = ("local", "s3", "hdfs")


def table_frame(spark, start: int, end: int):
    return spark.range(start, end).selectExpr(
        "id", "concat('name-', id) AS name", "concat('city-', id % 1000) AS city", "id * 1.5 AS amount"
    )


def write_and_merge(spark, path: str, rows: int, changes: int) -> tuple[float, float]:
    started = time.perf_counter()
    table_frame(spark, 0, rows).write.format("delta").mode("overwrite").save(path)
    written = time.perf_counter()
    source = table_frame(spark, rows - changes // 2, rows + changes - changes // 2)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    merged = time.perf_counter()
    return written - started, merged - written


def lakes(stack: Stack, local_root: Path, run: str) -> dict[str, LakeResource]:
    s3 = stack.server("s3")
    return {
        "local": LakeResource(root=str(local_root)),
        "s3": LakeResource(
            root=f"s3a://{DEFAULT_BUCKET}/bench-{run}",
            s3_endpoint=s3.endpoint,
            s3_path_style_access=True,
            s3_region=LOCAL_REGION,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
        ),
        "hdfs": LakeResource(root=f"{stack.hdfs_uri}/bench-{run}", hadoop_conf={"dfs.replication": "1"}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the target table")
    parser.add_argument("--changes", type=int, default=100_000, help="source rows merged (half new)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time is reported")
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help="comma-separated subset of local,s3,hdfs"
    )
    args = parser.parse_args(argv)
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    if unknown := sorted(set(targets) - set(TARGETS)):
        parser.error(f"unknown targets {unknown}")

    work = Path(tempfile.mkdtemp(prefix="cdc-bench-lakes-"))
    servers = [name for name in ("s3", "hdfs") if name in targets]
    stack = Stack(work / "stack", StackPorts.free(), servers=servers, die_with_parent=True)
    try:
        started = time.perf_counter()
        if servers:
            stack.up()
        print(f"servers {servers} up in {time.perf_counter() - started:.1f} s", flush=True)
        run = uuid.uuid4().hex[:8]
        by_target = {
            name: lake for name, lake in lakes(stack, work / "local-lake", run).items() if name in targets
        }
        started = time.perf_counter()
        first_root = by_target["s3"].root if "s3" in by_target else None
        spark = build_spark_session(lake_root=first_root)
        for lake in by_target.values():
            lake.configure(spark)
            lake.check_reachable(spark)
        print(f"session and lake checks in {time.perf_counter() - started:.1f} s", flush=True)
        write_and_merge(spark, str(work / "warm-up"), 10_000, 1_000)

        best: dict[str, tuple[float, float]] = {}
        for round_number in range(args.repeat):
            for name, lake in by_target.items():
                path = lake.table_path("bench", f"merge_{round_number}")
                write_seconds, merge_seconds = write_and_merge(spark, path, args.rows, args.changes)
                print(
                    f"round {round_number + 1} {name:<5} write {write_seconds:6.2f} s  merge {merge_seconds:6.2f} s",
                    flush=True,
                )
                previous = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(previous[0], write_seconds), min(previous[1], merge_seconds))

        print(f"\nMERGE of {args.changes:,} rows (half new) into {args.rows:,} rows, best of {args.repeat}:")
        print(f"{'target':<7}{'write s':>9}{'merge s':>9}{'merge / local':>15}")
        local_merge = best.get("local", (None, None))[1]
        for name, (write_seconds, merge_seconds) in best.items():
            ratio = f"{merge_seconds / local_merge:.2f}" if local_merge else "-"
            print(f"{name:<7}{write_seconds:9.2f}{merge_seconds:9.2f}{ratio:>15}")
        spark.stop()
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
