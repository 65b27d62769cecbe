"""Bronze rows -> the normalized changes the merge works on, deduplicated, with their counts.

A normalized change has:
    _key        canonical JSON of the key ('{}' for a truncate)
    _sequence   the source sequence (text that sorts like the sequence)
    _kind       'image' (insert, or update carrying the full row), 'update' (partial), 'delete', 'truncate'
    _after      the bronze `after` text (canonical JSON of the present columns; null for delete/truncate)
    _cols       `_after` parsed with from_json(.., 'map<string,string>') minus the key columns: present
                columns only, a JSON null is a null value, an absent column is no key of the map; keyed
                by silver column name (layout.silver_column)
    _old_key    the previous key of a primary-key change, else null
    _commit_ts  the source commit time (else the Kafka time, else the ingestion time)
    _content    what two changes must share to be the same change (kind, old key, after)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.merge.layout import (
    METADATA_COLUMNS,
    TABLE_KEY,
    MergeError,
    by_silver_column_sql,
    key_values_sql,
    spark_type,
)

IMAGE, UPDATE, DELETE, TRUNCATE = "image", "update", "delete", "truncate"
COLUMNS = ["_key", "_sequence", "_kind", "_after", "_cols", "_old_key", "_commit_ts", "_content"]


@dataclass(frozen=True)
class BatchCounts:
    changes_read: int
    duplicates: int  # the same key and sequence delivered more than once in this batch
    position_ties: int  # extra different changes at a (key, source position): the Kafka offset decided
    values_not_castable: int  # present non-null values their column type cannot hold (stored as null)
    columns: list[str]  # every non-key column present in the batch, sorted
    pk_changes: int
    newest_truncate: str | None  # sequence of the newest truncate in the batch
    newest_sequence: str | None
    newest_commit_ts: datetime | None


@dataclass(frozen=True)
class MergeInput:
    """What the SCD1 and SCD2 appliers take besides the batch: its counts, the table's key and other
    columns with their types (silver names; the batch's new columns included), the columns the batch
    adds to the table, and the userMetadata of the silver commit."""

    counts: BatchCounts
    keys: dict[str, str]
    columns: dict[str, str]
    new_columns: list[str]
    commit_metadata: str | None


def normalize(bronze: DataFrame, keys: list[str]) -> DataFrame:
    """`keys`: the key columns' silver names."""
    kind = (
        F.when(F.col("op") == TRUNCATE, F.lit(TRUNCATE))
        .when(F.col("op") == DELETE, F.lit(DELETE))
        .when((F.col("op") == "insert") | F.col("full_image"), F.lit(IMAGE))
        .otherwise(F.lit(UPDATE))
    )
    key_names = F.array(*[F.lit(k) for k in keys])
    carries_row = F.col("_kind").isin(IMAGE, UPDATE)
    present = F.expr(by_silver_column_sql("from_json(_after_raw, 'map<string,string>')"))
    return (
        bronze.select(
            F.when(kind == TRUNCATE, F.lit(TABLE_KEY)).otherwise(F.col("key")).alias("_key"),
            F.col("sequence").alias("_sequence"),
            kind.alias("_kind"),
            F.col("after").alias("_after_raw"),
            F.col("old_key").alias("_old_key_raw"),
            F.coalesce("commit_ts", "kafka_ts", "ingested_at").alias("_commit_ts"),
        )
        .select(
            "_key",
            "_sequence",
            "_kind",
            F.when(carries_row, F.col("_after_raw")).alias("_after"),
            F.when(carries_row, F.map_filter(present, lambda k, v: ~F.array_contains(key_names, k))).alias(
                "_cols"
            ),
            F.when(carries_row & (F.col("_old_key_raw") != F.col("_key")), F.col("_old_key_raw")).alias(
                "_old_key"
            ),
            "_commit_ts",
        )
        .withColumn("_content", content_of(F.col("_kind"), F.col("_old_key"), F.col("_after")))
    )


def content_of(kind: Column, old_key: Column, after: Column) -> Column:
    return F.concat_ws("|", kind, F.coalesce(old_key, F.lit("")), F.coalesce(after, F.lit("")))


def deduplicate(changes: DataFrame) -> DataFrame:
    """One change per (key, sequence): the greatest content wins when two differ (counted as a tie)."""
    order = Window.partitionBy("_key", "_sequence").orderBy(F.col("_content").desc())
    return changes.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def count_batch(changes: DataFrame, column_types: dict[str, str], keys: list[str]) -> BatchCounts:
    """Two small jobs over the (cached) normalized batch for everything the stats and the plan need.

    (One aggregate mixing the distinct counts with the rest is many times slower: Spark expands the
    rows once per distinct group.)"""
    totals = changes.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count("_old_key").alias("pk_changes"),
        F.max(F.when(F.col("_kind") == TRUNCATE, F.col("_sequence"))).alias("newest_truncate"),
        F.max("_sequence").alias("newest_sequence"),
        F.max("_commit_ts").alias("newest_commit_ts"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.map_keys("_cols"))))).alias("columns"),
        *_cast_failures(column_types, keys),
    ).collect()[0]
    position = F.regexp_replace("_sequence", r"\.[^.]*$", "")
    identities = (
        changes.groupBy("_key", position.alias("_position"))
        .agg(F.count_distinct("_sequence").alias("sequences"), F.count_distinct("_content").alias("contents"))
        .agg(
            F.sum("sequences").alias("sequences"),
            F.count(F.lit(1)).alias("positions"),
            F.sum("contents").alias("contents"),
        )
        .collect()[0]
    )
    columns = list(totals["columns"] or [])
    reserved = sorted(set(columns) & METADATA_COLUMNS)
    if reserved:
        raise MergeError(f"source columns {reserved} collide with silver's metadata columns; rename them")
    return BatchCounts(
        changes_read=totals["rows"],
        duplicates=totals["rows"] - (identities["sequences"] or 0),
        position_ties=(identities["contents"] or 0) - identities["positions"],
        values_not_castable=sum(totals[f"_bad_{i}"] or 0 for i in range(len(_typed(column_types)))),
        columns=columns,
        pk_changes=totals["pk_changes"],
        newest_truncate=totals["newest_truncate"],
        newest_sequence=totals["newest_sequence"],
        newest_commit_ts=totals["newest_commit_ts"],
    )


def _typed(column_types: dict[str, str]) -> list[tuple[str, str]]:
    return sorted((c, t) for c, t in column_types.items() if t != "string")


def _cast_failures(column_types: dict[str, str], keys: list[str]) -> list[Column]:
    failures = []
    key_values = F.expr(key_values_sql("_key"))
    for index, (column, type_name) in enumerate(_typed(column_types)):
        source = F.try_element_at(key_values if column in keys else F.col("_cols"), F.lit(column))
        bad = source.isNotNull() & source.try_cast(spark_type(type_name)).isNull()
        failures.append(F.sum(F.when(bad, 1).otherwise(0)).alias(f"_bad_{index}"))
    return failures
