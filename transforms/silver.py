"""Silver micro-batch: apply the bronze commits that silver has not applied yet.

The bronze Delta version a silver commit reflects is recorded in that commit (userMetadata, stage
`silver`). A run reads bronze's change data feed from the next version up to the version current at
the start, and applies it as ONE batch through the merge engine. A crash before the silver commit
leaves the recorded version where it was, so the next run re-reads the same commits (the merge makes
any repeat harmless); a rerun with nothing new writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.table_spec import TableSpec
from transforms.bronze_rows import BRONZE_SCHEMA
from transforms.delta_commits import current_version, latest_progress, progress_metadata
from transforms.merge import MergeStats, apply_changes

STAGE = "silver"


@dataclass(frozen=True)
class SilverBatch:
    bronze_from: int | None  # first bronze version read (None: nothing new)
    bronze_to: int | None  # bronze version silver now reflects
    stats: MergeStats


def applied_bronze_version(spark: SparkSession, silver_path: str) -> int | None:
    progress = latest_progress(spark, silver_path, STAGE)
    return None if progress is None else progress["bronze_version"]


def new_bronze_rows(spark: SparkSession, bronze_path: str, after_version: int | None, up_to: int) -> DataFrame:
    """Bronze rows committed in versions (after_version, up_to]; all of them when after_version is None."""
    columns = BRONZE_SCHEMA.fieldNames()
    if after_version is None:
        return spark.read.format("delta").option("versionAsOf", up_to).load(bronze_path).select(*columns)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after_version + 1)
        .option("endingVersion", up_to)
        .load(bronze_path)
    )
    # bronze is append-only; a date backfill rewrites rows (delete + insert): re-applying them is harmless
    return feed.where(F.col("_change_type") == "insert").select(*columns)


def apply_new_bronze(spark: SparkSession, spec: TableSpec, bronze_path: str, silver_path: str) -> SilverBatch:
    bronze_version = current_version(spark, bronze_path)
    applied = applied_bronze_version(spark, silver_path)
    if bronze_version is None or applied == bronze_version:
        return SilverBatch(None, applied, MergeStats())
    # A batch whose bronze commits hold no rows (only Debezium tombstones, say) records nothing and
    # is simply read again, empty, next time.
    changes = new_bronze_rows(spark, bronze_path, applied, bronze_version)
    stats = apply_changes(
        spark,
        changes,
        silver_path,
        keys=spec.keys,
        column_types=spec.columns,
        history=spec.history,
        tombstone_retention_hours=spec.deletes.tombstone_retention_hours,
        commit_metadata=progress_metadata(STAGE, bronze_version=bronze_version),
    )
    return SilverBatch(0 if applied is None else applied + 1, bronze_version, stats)

