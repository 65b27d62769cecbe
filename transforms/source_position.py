"""What source state a set of silver tables reflects: the newest commit time and the Kafka offsets.

Used by the projections: the write timestamp derives from the commit time, and the offsets are
recorded so a service can load a projection and consume Kafka from exactly where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from transforms import silver
from transforms.bronze.ingest import STAGE as BRONZE_STAGE
from transforms.delta_commits import latest_progress


@dataclass(frozen=True)
class TablePaths:
    topic: str
    bronze: str
    silver: str


@dataclass(frozen=True)
class SourcePositionReflected:
    as_of_us: int | None  # newest source commit time applied to any of the silver tables (µs since epoch)
    kafka_offsets: dict[str, dict[int, int]]  # topic -> partition -> next offset silver reflects


def reflected_position(spark: SparkSession, tables: dict[str, TablePaths]) -> SourcePositionReflected:
    newest = None
    offsets: dict[str, dict[int, int]] = {}
    for paths in tables.values():
        applied, cut = silver.applied_progress(spark, paths.silver)
        if applied is None:
            continue
        progress = latest_progress(spark, paths.bronze, BRONZE_STAGE, at_or_before=applied)
        if progress is not None:
            offsets[paths.topic] = {int(p): end for p, (_, end) in progress["ranges"].items()}
            if cut is not None:
                offsets[paths.topic].update(_first_held_offsets(spark, paths.bronze, applied, cut))
        # max of the bare column, converted afterwards: Delta answers it from the file statistics in
        # its log (no data file read) where it can; max(unix_micros(...)) would scan every file
        micros = (
            spark.read.format("delta")
            .load(paths.silver)
            .agg(F.max("_commit_ts").alias("newest"))
            .select(F.unix_micros("newest"))
            .collect()[0][0]
        )
        if micros is not None:
            newest = micros if newest is None else max(newest, micros)
    return SourcePositionReflected(newest, offsets)


def _first_held_offsets(spark: SparkSession, bronze_path: str, version: int, cut: str) -> dict[int, int]:
    """Per partition, the offset of the first record silver holds back at the cut: silver reflects the
    partition up to there (every record before it is applied; it and the ones after wait)."""
    held = (
        spark.read.format("delta")
        .option("versionAsOf", version)
        .load(bronze_path)
        .where(F.col("sequence") >= cut)
        .groupBy("partition")
        .agg(F.min("offset").alias("offset"))
        .collect()
    )
    return {row["partition"]: row["offset"] for row in held}
