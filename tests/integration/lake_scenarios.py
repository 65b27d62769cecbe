"""Delta operations run the same way on every lake (S3, HDFS); the tests assert on what they return."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from transforms import delta_rs
from transforms.delta_commits import (
    current_version,
    latest_progress,
    progress_metadata,
    table_size_and_properties,
)
from transforms.gold import small_merge
from transforms.gold.engine import GOLD_TABLE_OPTIONS

SCHEMA = "id INT, name STRING, city STRING"
ORIGINAL = [(1, "ann", "paris"), (2, "bob", "rome")]
CHANGES = [(2, "bob", "oslo"), (3, "cyd", "lima")]
MERGED = [(1, "ann", "paris"), (2, "bob", "oslo"), (3, "cyd", "lima")]
# what delta_rs_merge_then_spark_reads finds (besides the size, compared with DESCRIBE DETAIL's)
DELTA_RS_MERGED = {
    "current": [(2, "bob", "oslo"), (3, "cyd", "lima")],
    "outcome": {"rows": 2, "inserted": 1, "updated": 1, "deleted": 1},
    "progress": {"stage": "gold", "entity": "scenario"},
    "changes": [("delete", 1), ("insert", 3), ("update_postimage", 2), ("update_preimage", 2)],
}


def rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


def write_then_merge(spark: SparkSession, path: str) -> dict:
    """Write ORIGINAL, MERGE CHANGES into it; return the current rows, version 0 and the history."""
    spark.createDataFrame(ORIGINAL, SCHEMA).write.format("delta").save(path)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(spark.createDataFrame(CHANGES, SCHEMA).alias("c"), "t.id = c.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    return {
        "current": rows(spark.read.format("delta").load(path)),
        "version_0": rows(spark.read.format("delta").option("versionAsOf", 0).load(path)),
        "operations": [(entry.version, entry.operation) for entry in history],
        "merge_metrics": {
            key: history[-1].operationMetrics[key]
            for key in ("numTargetRowsUpdated", "numTargetRowsInserted")
        },
    }


def append_with_txn(spark: SparkSession, path: str, data: list[tuple], app_id: str, version: int) -> None:
    (
        spark.createDataFrame(data, SCHEMA)
        .write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", version)
        .save(path)
    )


def append_same_txn_version_twice(spark: SparkSession, path: str) -> dict:
    """Append one batch with txnAppId/txnVersion, then the same batch and version again."""
    for _attempt in range(2):
        append_with_txn(spark, path, ORIGINAL, app_id="bronze-test", version=7)
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    return {
        "rows": rows(spark.read.format("delta").load(path)),
        "operations": [(entry.version, entry.operation) for entry in history],
    }


def progress_after_two_stages(spark: SparkSession, path: str) -> dict | None:
    """Commit as stage `bronze` (with offsets), then as stage `other`; read bronze's progress back."""
    for stage, offsets in (("bronze", {"crm.S_CONTACT": {"0": 42}}), ("other", {})):
        (
            spark.createDataFrame(ORIGINAL, SCHEMA)
            .write.format("delta")
            .mode("append")
            .option("userMetadata", progress_metadata(stage, offsets=offsets))
            .save(path)
        )
    return latest_progress(spark, path, "bronze")


def delta_rs_merge_then_spark_reads(spark: SparkSession, path: str) -> dict:
    """Spark writes ORIGINAL as gold writes a table (change data feed, no deletion vectors); delta-rs
    MERGEs CHANGES into it and deletes id 1 (transforms.gold.small_merge, with a progress record);
    Spark then reads the rows, the progress and the commit's change data feed."""
    hashed = "id INT, name STRING, city STRING, h STRING"
    writer = spark.createDataFrame([(*row, f"{row[1]}/{row[2]}") for row in ORIGINAL], hashed).write
    writer.format("delta").options(**GOLD_TABLE_OPTIONS).save(path)
    table = delta_rs.open_writable(spark, path)
    assert table is not None, f"delta-rs cannot write {path}"
    source = pa.table(
        {
            "id": pa.array([1] + [row[0] for row in CHANGES], pa.int32()),
            "name": [None] + [row[1] for row in CHANGES],
            "city": [None] + [row[2] for row in CHANGES],
            "h": [None] + [f"{row[1]}/{row[2]}" for row in CHANGES],
            "present": [None] + [True] * len(CHANGES),
        }
    )
    metadata = progress_metadata("gold", entity="scenario")
    outcome = small_merge.merge_keys(table, source, ["id"], "present", "h", metadata)
    assert outcome is not None, "delta-rs failed before its commit"
    version = current_version(spark, path)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", version)
        .option("endingVersion", version)
        .load(path)
    )
    detail = DeltaTable.forPath(spark, path).detail().collect()[0]
    return {
        "current": rows(spark.read.format("delta").load(path).drop("h")),
        "outcome": dataclasses.asdict(outcome),
        "progress": latest_progress(spark, path, "gold"),
        "changes": sorted((row["_change_type"], row["id"]) for row in feed.collect()),
        "size_and_properties": table_size_and_properties(spark, path),
        "detail": (detail["sizeInBytes"], dict(detail["properties"])),
    }
