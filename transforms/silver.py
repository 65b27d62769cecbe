"""Silver micro-batch: apply the bronze changes that silver has not applied yet, up to the cut.

A silver commit records (userMetadata, stage `silver`) the bronze version it reflects and the
transaction-consistent cut it applied up to (transforms.cut; None: no cut, everything). The
invariant after a commit (v, c): every bronze row of versions <= v whose sequence is below c is in
silver. A run with bronze at version v' and cut c' therefore applies, as ONE batch through the merge
engine, the rows of versions <= v with c <= sequence < c' (held back last time) and the rows of
versions (v, v'] below c'. A crash before the silver commit leaves the record where it was, so the
next run reads the same rows again (the merge makes any repeat harmless); a rerun with nothing new
writes nothing. A cut that moves back (a partition found busy again) loses nothing: rows above it
simply wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.bronze_rows import BRONZE_SCHEMA
from transforms.cut import Cut
from transforms.delta_commits import (
    current_version,
    latest_progress,
    progress_metadata,
    record_progress_only,
    table_exists,
)
from transforms.lake_errors import writes_table
from transforms.merge import MergeStats, apply_changes
from transforms.specs.table import TableSpec

STAGE = "silver"


@dataclass(frozen=True)
class SilverBatch:
    bronze_from: int | None  # first bronze version read (None: nothing new)
    bronze_to: int | None  # bronze version silver now reflects
    stats: MergeStats


def applied_bronze_version(spark: SparkSession, silver_path: str) -> int | None:
    return applied_progress(spark, silver_path)[0]


def applied_progress(spark: SparkSession, silver_path: str) -> tuple[int | None, str | None]:
    """(bronze version, cut position) of silver's last commit; (None, None) before the first."""
    progress = latest_progress(spark, silver_path, STAGE)
    if progress is None:
        return None, None
    return progress["bronze_version"], progress.get("cut")


def _bronze(spark: SparkSession, bronze_path: str, version: int) -> DataFrame:
    columns = BRONZE_SCHEMA.fieldNames()
    return spark.read.format("delta").option("versionAsOf", version).load(bronze_path).select(*columns)


def _below(rows: DataFrame, position: str | None) -> DataFrame:
    return rows if position is None else rows.where(F.col("sequence") < position)


def new_bronze_rows(
    spark: SparkSession,
    bronze_path: str,
    applied: tuple[int | None, str | None],
    up_to: int,
    cut: Cut | None = None,
) -> DataFrame:
    """The bronze rows silver has not applied: see the module docstring. `applied` is silver's record."""
    applied_version, applied_cut = applied
    new_cut = None if cut is None else cut.position
    if applied_version is None:
        return _below(_bronze(spark, bronze_path, up_to), new_cut)
    columns = BRONZE_SCHEMA.fieldNames()
    rows = None
    if up_to > applied_version:
        feed = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", applied_version + 1)
            .option("endingVersion", up_to)
            .load(bronze_path)
        )
        # bronze is append-only; a date backfill rewrites rows (delete + insert): re-applying them is harmless
        rows = _below(feed.where(F.col("_change_type") == "insert").select(*columns), new_cut)
    if applied_cut is not None and (new_cut is None or new_cut > applied_cut):
        held = _below(
            _bronze(spark, bronze_path, applied_version).where(F.col("sequence") >= applied_cut), new_cut
        )
        rows = held if rows is None else rows.unionByName(held)
    return rows if rows is not None else spark.createDataFrame([], BRONZE_SCHEMA)


@writes_table(STAGE, "silver_path")
def apply_new_bronze(
    spark: SparkSession, spec: TableSpec, bronze_path: str, silver_path: str, cut: Cut | None = None
) -> SilverBatch:
    bronze_version = current_version(spark, bronze_path)
    applied = applied_progress(spark, silver_path)
    new_cut = None if cut is None else cut.position
    if bronze_version is None or applied == (bronze_version, new_cut):
        return SilverBatch(None, applied[0], MergeStats())
    # A batch that holds no rows (only Debezium tombstones, or everything beyond the cut) records
    # nothing and is simply read again next time. One whose rows are all operations the table ignores
    # records its progress without a row.
    changes = new_bronze_rows(spark, bronze_path, applied, bronze_version, cut)
    metadata = progress_metadata(STAGE, bronze_version=bronze_version, cut=new_cut)
    stats = apply_changes(
        spark,
        changes,
        silver_path,
        keys=spec.keys,
        column_types=spec.columns,
        history=spec.history,
        tombstone_retention_hours=spec.deletes.tombstone_retention_hours,
        ignored_operations=spec.ignored_operations,
        commit_metadata=metadata,
    )
    if stats.changes_read == 0 and spec.ignored_operations and table_exists(spark, silver_path):
        if not changes.isEmpty():  # only operations the table ignores (an outbox's deletes): applied
            record_progress_only(spark, silver_path, metadata)
    first = 0 if applied[0] is None else applied[0] + 1
    return SilverBatch(first, bronze_version, stats)
