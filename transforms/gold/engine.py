"""Gold: run an entity's cleanup SQL over the silver tables and store the result as a Delta table.

The SQL sees every silver table as a temporary view of its LIVE rows (tombstones excluded) with the
user columns plus `_commit_ts` and `_sequence`. The entity is recomputed from silver and MERGEd into
gold by key: only rows whose content changed are rewritten (a content hash), keys that vanished are
deleted. A recomputation is what makes a translation-table change (a renamed list-of-values display
value) reach every affected gold row on the next run. The silver Delta versions a gold commit reflects,
and a hash of the SQL text, are recorded in that commit; when neither has moved, the run does nothing.
A first run, or a SQL whose result columns differ from the gold table's, writes the table whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.delta_commits import current_version, latest_progress, progress_metadata, table_exists

STAGE = "gold"
HASH_COLUMN = "_row_hash"


class GoldError(RuntimeError):
    pass


@dataclass(frozen=True)
class GoldStats:
    skipped: bool  # neither silver nor the SQL changed since the last gold commit
    replaced: bool = False  # the table was written whole (first run, or the SQL's columns changed)
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    silver_versions: dict[str, int] | None = None


def register_silver_views(spark: SparkSession, live_rows: dict[str, DataFrame]) -> None:
    for name, frame in live_rows.items():
        frame.createOrReplaceTempView(name)


def refresh_entity(
    spark: SparkSession,
    *,
    name: str,
    keys: list[str],
    sql_text: str,
    gold_path: str,
    silver_versions: dict[str, int],
) -> GoldStats:
    """Recompute one entity (silver views must be registered) and merge it into gold."""
    sql_sha256 = hashlib.sha256(sql_text.encode("utf-8")).hexdigest()
    previous = latest_progress(spark, gold_path, STAGE)
    if (
        previous is not None
        and previous.get("silver_versions") == silver_versions
        and previous.get("sql_sha256") == sql_sha256
    ):
        return GoldStats(skipped=True, silver_versions=silver_versions)

    result = spark.sql(sql_text)
    missing = [k for k in keys if k not in result.columns]
    if missing:
        raise GoldError(f"gold entity {name}: its SQL does not produce key column(s) {missing}")
    user_columns = [c for c in result.columns if not c.startswith("_")]
    result = result.withColumn(HASH_COLUMN, F.sha2(F.to_json(F.struct(*user_columns)), 256))
    result = result.persist()
    try:
        _refuse_duplicate_keys(name, result, keys)
        metadata = progress_metadata(STAGE, entity=name, silver_versions=silver_versions, sql_sha256=sql_sha256)
        spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", metadata)
        try:
            if not table_exists(spark, gold_path) or _columns_changed(spark, gold_path, result):
                result.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(gold_path)
                rows = result.count()
                return GoldStats(False, replaced=True, rows=rows, inserted=rows, silver_versions=silver_versions)
            target = DeltaTable.forPath(spark, gold_path)
            condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            (
                target.alias("t")
                .merge(result.alias("s"), condition)
                .whenMatchedUpdateAll(condition=f"t.{HASH_COLUMN} <> s.{HASH_COLUMN}")
                .whenNotMatchedInsertAll()
                .whenNotMatchedBySourceDelete()
                .execute()
            )
        finally:
            spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        metrics = target.history(1).select("operationMetrics").collect()[0][0]
        return GoldStats(
            False,
            rows=result.count(),
            inserted=int(metrics.get("numTargetRowsInserted", 0)),
            updated=int(metrics.get("numTargetRowsUpdated", 0)),
            deleted=int(metrics.get("numTargetRowsDeleted", 0)),
            silver_versions=silver_versions,
        )
    finally:
        result.unpersist()


def _columns_changed(spark: SparkSession, gold_path: str, result: DataFrame) -> bool:
    """True when the SQL now yields other columns (names or types) than the gold table holds."""
    stored = spark.read.format("delta").load(gold_path).schema
    return [(f.name, f.dataType) for f in stored] != [(f.name, f.dataType) for f in result.schema]


def _refuse_duplicate_keys(name: str, frame: DataFrame, keys: list[str]) -> None:
    duplicates = frame.groupBy(*keys).count().where("count > 1")
    sample = duplicates.limit(5).collect()
    if sample:
        shown = "; ".join(", ".join(f"{k}={row[k]!r}" for k in keys) for row in sample)
        raise GoldError(
            f"gold entity {name}: its SQL returns several rows for one key ({shown}); "
            "fix the joins in the SQL so each key appears once"
        )


def silver_version_map(spark: SparkSession, paths: dict[str, str]) -> dict[str, int]:
    return {name: current_version(spark, path) for name, path in paths.items()}
