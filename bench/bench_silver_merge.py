"""Benchmark of the silver merge engine (prints figures; not a test).

    .venv/bin/python bench/bench_silver_merge.py                       # the full sizes below
    .venv/bin/python bench/bench_silver_merge.py --rows 100000 --big-rows 500000 --changes 20000 --batch 2000

The last line is one JSON object: the seconds behind each figure, the ratios (`silver_over_naive_100k`,
`silver_over_naive_10k`, `big_over_small`; the keys keep these names at other sizes) and their targets.

Figures:
1. changes/s: one batch of --changes changes applied to a table of --rows rows (and the naive MERGE,
   see below).
2. the SAME batch of --batch changes applied to a table of --rows rows and to one of --big-rows rows:
   if the cost follows the batch, the two times are close.
   Side by side, a naive "dedup then MERGE" into a plain table of the same rows (the latest change per
   key by sequence, whenMatchedUpdateAll / whenNotMatchedInsertAll: no per-column sequences, so it is
   NOT correct for partial updates, late changes or deletes; it is the cost floor of a MERGE).
3. a batch that also runs the tombstone purge (a whole-table pass, once per retention/4 of commit time).
4. storage: the silver table's bytes with and without its per-column sequence map, and the plain table's.

The starting tables are written directly in silver's layout (every row a full image at an old
sequence), not through apply_changes: they stand for a table that has been fed for a long time.
Changes: 70% partial updates of 1-3 columns of existing keys, 10% full-image updates, 15% inserts of new
keys, 5% deletes, in random order, with random Kafka-style sequences newer than the table's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from resources.spark_session import build_spark_session
from transforms.merge import apply_changes
from transforms.merge.layout import SCD1_METADATA, TABLE_KEY, create_table

EPOCH = "2024-01-01 00:00:00"


def sequence_sql(expression: str) -> str:
    """transforms.sequence.encode_sequence((n, n)) in SQL, for non-negative integers n."""
    text = f"cast({expression} as string)"
    part = f"concat(lpad(cast(length({text}) as string), 2, '0'), {text})"
    return f"concat({part}, '.', {part})"


def key_json(id_column: str) -> F.Column:
    return F.concat(F.lit('{"ID":"'), F.col(id_column).cast("string"), F.lit('"}'))


def columns_of(count: int) -> list[str]:
    return [f"C{i:02d}" for i in range(1, count + 1)]


def write_base_silver(spark: SparkSession, path: str, rows: int, columns: list[str]) -> None:
    """`rows` live rows, each a full image set at sequence id+1, plus the table row."""
    create_table(
        spark, path, history="scd1", keys=["ID"], columns={"ID": "string", **dict.fromkeys(columns, "string")}
    )
    seq = F.expr(sequence_sql("id + 1"))
    base = spark.range(rows).select(
        key_json("id").alias("_key"),
        F.lit(False).alias("_deleted"),
        F.expr("cast(array() as array<string>)").alias("_incomplete"),
        seq.alias("_sequence"),
        F.expr(f"timestamp'{EPOCH}' + make_interval(0, 0, 0, 0, 0, 0, id / 1000)").alias("_commit_ts"),
        seq.alias("_image_seq"),
        F.lit("image").alias("_image_op"),
        F.expr("cast(map() as map<string,string>)").alias("_col_seq"),
        F.lit(None).cast("boolean").alias("_pk_changed"),
        F.col("id").cast("string").alias("ID"),
        *[
            F.sha2(F.concat(F.col("id").cast("string"), F.lit(c)), 256).substr(1, 16).alias(c)
            for c in columns
        ],
    )
    table_row = base.limit(1).select(
        F.lit(TABLE_KEY).alias("_key"),
        F.lit(True).alias("_deleted"),
        "_incomplete",
        F.lit(sequence_sql_value(rows)).alias("_sequence"),
        F.expr(f"timestamp'{EPOCH}' + make_interval(0, 0, 0, 0, 0, 0, {rows} / 1000)").alias("_commit_ts"),
        F.lit(None).cast("string").alias("_image_seq"),
        F.lit(None).cast("string").alias("_image_op"),
        "_col_seq",
        "_pk_changed",
        F.lit(None).cast("string").alias("ID"),
        *[F.lit(None).cast("string").alias(c) for c in columns],
    )
    base.unionByName(table_row).select(*SCD1_METADATA.fieldNames(), "ID", *columns).write.format(
        "delta"
    ).mode("append").save(path)


def sequence_sql_value(n: int) -> str:
    text = str(n)
    return f"{len(text):02d}{text}.{len(text):02d}{text}"


def make_changes(
    spark: SparkSession,
    count: int,
    existing_rows: int,
    columns: list[str],
    first_position: int,
    seed: int,
    hours_later: float = 0,
) -> DataFrame:
    """`count` bronze rows (BRONZE_SCHEMA) of random changes, positions first_position.. in random order,
    committed one millisecond apart, starting `hours_later` after the newest row of the table."""
    pick = F.rand(seed)
    columns_array = F.array(*[F.lit(c) for c in columns])
    value = F.sha2(F.concat(F.col("position").cast("string"), F.lit("v")), 256).substr(1, 16)
    partial_columns = F.slice(F.shuffle(columns_array), 1, (F.col("position") % 3 + 1).cast("int"))
    full_image = F.map_from_arrays(columns_array, F.array_repeat(value, len(columns)))
    frame = (
        spark.range(count)
        .select(
            (F.col("id") + first_position).alias("position"), pick.alias("r"), F.rand(seed + 1).alias("k")
        )
        .select(
            "position",
            F.when(F.col("r") < 0.70, "update")
            .when(F.col("r") < 0.80, "full")
            .when(F.col("r") < 0.95, "insert")
            .otherwise("delete")
            .alias("kind"),
            F.when(F.col("r").between(0.80, 0.95), F.col("position") + existing_rows * 10)
            .otherwise((F.col("k") * existing_rows).cast("long"))
            .alias("row_id"),
        )
        .withColumn(
            "after",
            F.when(
                F.col("kind") == "update",
                F.to_json(F.map_from_arrays(partial_columns, F.transform(partial_columns, lambda c: value))),
            ).when(F.col("kind").isin("full", "insert"), F.to_json(full_image)),
        )
    )
    return frame.select(
        F.lit("SRC.T").alias("table"),
        F.when(F.col("kind") == "full", "update").otherwise(F.col("kind")).alias("op"),
        key_json("row_id").alias("key"),
        F.lit(None).cast("string").alias("old_key"),
        F.lit(None).cast("string").alias("before"),
        "after",
        F.col("kind").isin("full", "insert").alias("full_image"),
        F.expr(sequence_sql("position")).alias("sequence"),
        F.expr(
            f"timestamp'{EPOCH}' + make_interval(0, 0, 0, 0, 0, 0, {existing_rows / 1000 + hours_later * 3600} + (position - {first_position}) / 1000)"
        ).alias("commit_ts"),
        F.lit(None).cast("string").alias("txid"),
        F.lit("bench").alias("topic"),
        F.lit(0).alias("partition"),
        F.col("position").alias("offset"),
        F.lit(None).cast("timestamp").alias("kafka_ts"),
        F.lit(None).cast("string").alias("extra"),
        F.to_date(F.lit(EPOCH)).alias("event_date"),
        F.current_timestamp().alias("ingested_at"),
    ).orderBy(F.rand(seed + 2))


def write_plain_table(spark: SparkSession, path: str, rows: int, columns: list[str]) -> None:
    spark.range(rows).select(
        F.col("id").cast("string").alias("ID"),
        *[
            F.sha2(F.concat(F.col("id").cast("string"), F.lit(c)), 256).substr(1, 16).alias(c)
            for c in columns
        ],
        F.expr(sequence_sql("id + 1")).alias("_sequence"),
    ).write.format("delta").option("delta.enableDeletionVectors", "true").save(path)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")


def naive_merge(spark: SparkSession, path: str, changes: DataFrame, columns: list[str]) -> None:
    """Latest change per key by sequence, then updateAll/insertAll (deletes as deletes)."""
    latest = changes.withColumn(
        "_rank", F.row_number().over(Window.partitionBy("key").orderBy(F.col("sequence").desc()))
    ).where("_rank = 1")
    parsed = latest.select(
        F.get_json_object("key", "$.ID").alias("ID"),
        F.from_json("after", "map<string,string>").alias("_after"),
        F.col("sequence").alias("_sequence"),
        "op",
    ).select("ID", *[F.col("_after")[c].alias(c) for c in columns], "_sequence", "op")
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(parsed.alias("s"), "t.ID = s.ID")
        .whenMatchedDelete(condition="s.op = 'delete'")
        .whenMatchedUpdate(set={c: f"s.{c}" for c in ["ID", *columns, "_sequence"]})
        .whenNotMatchedInsert(
            condition="s.op <> 'delete'", values={c: f"s.{c}" for c in ["ID", *columns, "_sequence"]}
        )
        .execute()
    )


def table_bytes(spark: SparkSession, path: str) -> int:
    return DeltaTable.forPath(spark, path).detail().select("sizeInBytes").collect()[0][0]


def timed(label: str, action) -> float:
    """Seconds `action` takes; its Spark jobs carry `label` (Spark's UI and event log, --spark-conf)."""
    SparkSession.getActiveSession().sparkContext.setJobDescription(label)
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the table the batches go into")
    parser.add_argument(
        "--big-rows", type=int, default=5_000_000, help="rows of the bigger table for figure 2 (0: skip)"
    )
    parser.add_argument("--changes", type=int, default=100_000, help="changes of the throughput batch")
    parser.add_argument(
        "--batch", type=int, default=10_000, help="changes of the batch applied to both sizes"
    )
    parser.add_argument("--columns", type=int, default=10, help="non-key columns")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the tables go (default: a temp dir)"
    )
    parser.add_argument(
        "--spark-conf",
        type=json.loads,
        default={},
        help='extra Spark settings as JSON, e.g. \'{"spark.sql.shuffle.partitions": "8"}\'',
    )
    args = parser.parse_args()

    spark = build_spark_session(
        app_name="bench-silver-merge", extra_conf={"spark.ui.showConsoleProgress": "false", **args.spark_conf}
    )
    spark.sparkContext.setLogLevel("ERROR")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-silver-"))
    columns = columns_of(args.columns)
    print(f"tables in {workdir}; {args.columns} columns; cores: {spark.sparkContext.defaultParallelism}")

    def silver_table(name: str, rows: int) -> str:
        path = str(workdir / name)
        shutil.rmtree(path, ignore_errors=True)
        timed(f"write {name} ({rows:,} rows)", lambda: write_base_silver(spark, path, rows, columns))
        return path

    def plain_table(name: str, rows: int) -> str:
        path = str(workdir / name)
        shutil.rmtree(path, ignore_errors=True)
        timed(f"write {name} ({rows:,} rows)", lambda: write_plain_table(spark, path, rows, columns))
        return path

    def apply(path: str, changes: DataFrame) -> None:
        stats = apply_changes(spark, changes, path, keys=["ID"])
        print(
            f"    inserted {stats.rows_inserted:,}, updated {stats.rows_updated:,}, tombstones {stats.rows_deleted:,}, no effect {stats.keys_without_effect:,}"
        )

    big = make_changes(
        spark, args.changes, args.rows, columns, first_position=args.rows * 100, seed=1, hours_later=0.1
    ).persist()
    small_rows = min(args.rows, args.big_rows or args.rows)
    small = make_changes(
        spark, args.batch, small_rows, columns, first_position=args.rows * 200, seed=2, hours_later=0.2
    ).persist()
    purging = make_changes(
        spark, args.batch, small_rows, columns, first_position=args.rows * 300, seed=3, hours_later=200
    ).persist()
    print(f"batches: {big.count():,}, {small.count():,} and {purging.count():,} changes")

    print(f"\n1. throughput: {args.changes:,} changes into {args.rows:,} rows")
    silver = silver_table("silver", args.rows)
    seconds = timed("silver apply_changes", lambda: apply(silver, big))
    print(f"  => {args.changes / seconds:,.0f} changes/s (silver)")
    plain = plain_table("plain", args.rows)
    naive_seconds = timed("naive dedup + MERGE", lambda: naive_merge(spark, plain, big, columns))
    print(f"  => {args.changes / naive_seconds:,.0f} changes/s (naive)")

    print(f"\n2. the same {args.batch:,}-change batch into {args.rows:,} rows and {args.big_rows:,} rows")
    small_seconds = timed(f"silver, {args.rows:,} rows", lambda: apply(silver, small))
    naive_small_seconds = timed(
        f"naive, {args.rows:,} rows", lambda: naive_merge(spark, plain, small, columns)
    )
    big_seconds = None
    if args.big_rows:
        silver_big = silver_table("silver_big", args.big_rows)
        big_seconds = timed(f"silver, {args.big_rows:,} rows", lambda: apply(silver_big, small))
        plain_big = plain_table("plain_big", args.big_rows)
        timed(f"naive, {args.big_rows:,} rows", lambda: naive_merge(spark, plain_big, small, columns))

    print(f"\n3. a {args.batch:,}-change batch that also runs the tombstone purge, into {args.rows:,} rows")
    print(
        "  (the purge runs when the newest commit time crosses a multiple of retention/4: it reads the whole table)"
    )
    purge_seconds = timed(f"silver with purge, {args.rows:,} rows", lambda: apply(silver, purging))

    print("\n4. storage after the batches (current snapshot, bytes)")
    without_sequences = str(workdir / "silver_without_col_seq")
    shutil.rmtree(without_sequences, ignore_errors=True)
    spark.read.format("delta").load(silver).drop("_col_seq").write.format("delta").save(without_sequences)
    copy = str(workdir / "silver_copy")
    shutil.rmtree(copy, ignore_errors=True)
    spark.read.format("delta").load(silver).write.format("delta").save(copy)
    rewritten_plain = str(workdir / "plain_copy")
    shutil.rmtree(rewritten_plain, ignore_errors=True)
    spark.read.format("delta").load(plain).write.format("delta").save(rewritten_plain)
    silver_bytes, without_bytes, plain_bytes = (
        table_bytes(spark, p) for p in (copy, without_sequences, rewritten_plain)
    )
    print(f"  silver (rewritten compactly):      {silver_bytes:>14,}")
    print(
        f"  silver without _col_seq:           {without_bytes:>14,}  (per-column sequences cost {silver_bytes - without_bytes:,})"
    )
    print(f"  plain table (naive, no metadata):  {plain_bytes:>14,}")
    log_bytes = table_bytes(spark, f"{silver}/_changes")
    print(f"  silver change log (_changes):      {log_bytes:>14,}")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "big_rows": args.big_rows,
                "changes": args.changes,
                "batch": args.batch,
                "silver_seconds_100k": round(seconds, 2),
                "naive_seconds_100k": round(naive_seconds, 2),
                "silver_over_naive_100k": round(seconds / naive_seconds, 2),
                "silver_over_naive_100k_target": 1.5,
                "silver_seconds_10k": round(small_seconds, 2),
                "naive_seconds_10k": round(naive_small_seconds, 2),
                "silver_over_naive_10k": round(small_seconds / naive_small_seconds, 2),
                "silver_over_naive_10k_target": 1.5,
                "silver_seconds_10k_big": round(big_seconds, 2) if big_seconds else None,
                "big_over_small": round(big_seconds / small_seconds, 2) if big_seconds else None,
                "big_over_small_target": 1.3,
                "silver_seconds_10k_with_purge": round(purge_seconds, 2),
                "silver_bytes": silver_bytes,
                "plain_bytes": plain_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
