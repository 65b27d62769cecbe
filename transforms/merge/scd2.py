"""SCD2 silver: every version of every key, rebuilt from the change log for the keys a batch touches.

A key's versions are its distinct states in source order (transforms.merge.fold.versions_of): a change
that leaves the key alive in a new state opens a version, one that leaves the state as it was opens
none, and a delete, a truncate or a primary-key change away closes the last version and opens none.
The simplest design that is exactly right whatever the arrival order: for each key the
batch touches (and the keys linked to it by primary-key changes) replay the key's whole history from
the change log (transforms.merge.fold), so a late change is slotted into place and every version after
it is recomputed; then replace that key's versions in ONE MERGE on (`_key`, `_valid_from_seq`):
versions that no longer exist are deleted, changed ones updated, new ones inserted. A batch with a
truncate rebuilds every key (a truncate closes every key's current version), and so does a batch that
brings a column the table has never had: every version of a key never fully imaged then lacks that
column, and a stored version cannot tell (its `_incomplete` is empty when the partial updates before
it had set every column the table knew), so the replay decides.

Cost: the history of the touched keys (read from the log by a key join) plus the MERGE; the fold runs
in Python on the executors, one group per key (or per group of keys linked by primary-key changes).
A truncate or a new column costs a replay of the whole log, once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from transforms.merge import change_log
from transforms.merge.fold import FoldChange, from_row, versions_of_rows
from transforms.merge.layout import SCD2_METADATA, TABLE_KEY, key_values_sql, read_table
from transforms.merge.prepare import BatchCounts, MergeInput
from transforms.merge.scd1 import execute_with_metadata
from transforms.sql_text import MergeAssignments, quote_identifier

FOLDED_SCHEMA = StructType(
    [
        StructField("_key", StringType(), False),
        StructField("_valid_from_seq", StringType(), False),
        StructField("_valid_to_seq", StringType(), True),
        StructField("_valid_from_ts", TimestampType(), True),
        StructField("_valid_to_ts", TimestampType(), True),
        StructField("_is_current", BooleanType(), False),
        StructField("_incomplete", ArrayType(StringType(), True), False),
        StructField("_values", MapType(StringType(), StringType(), True), False),
    ]
)


@dataclass(frozen=True)
class Scd2Outcome:
    had_table_row: bool
    keys_in_batch: int
    keys_rebuilt: int
    metrics: dict[str, str]
    keys_deleted: int
    incomplete_rows: int


def _fold_groups(
    spark: SparkSession,
    history: DataFrame,
    truncates: list[FoldChange],
    component_of: dict[str, str],
    columns: list[str],
) -> DataFrame:
    """Replay each key's (or linked keys') history on the executors."""
    grouped = history.rdd.map(lambda r: (component_of.get(r["_key"], r["_key"]), r)).groupByKey()
    replay_group = functools.partial(versions_of_rows, truncates=truncates, columns=columns)
    return spark.createDataFrame(grouped.flatMap(replay_group), FOLDED_SCHEMA)


def _typed_versions(folded: DataFrame, keys: dict[str, str], columns: dict[str, str]) -> DataFrame:
    key_values = F.expr(key_values_sql("_key"))
    key_columns = [F.try_element_at(key_values, F.lit(k)).try_cast(t).alias(k) for k, t in keys.items()]
    value_columns = [F.try_element_at("_values", F.lit(c)).try_cast(t).alias(c) for c, t in columns.items()]
    return folded.select(*SCD2_METADATA.fieldNames(), *key_columns, *value_columns)


def rebuild_keys(
    spark: SparkSession, batch: DataFrame, log: DataFrame, every_key: bool
) -> tuple[DataFrame, dict[str, str], bool]:
    """(keys to rebuild, key -> component for keys linked by primary-key changes, every key?)."""
    edges = change_log.move_edges(log)
    if every_key:
        every = log.where(F.col("_key") != TABLE_KEY).select("_key").distinct()
        every_endpoint = {k for edge in edges for k in edge}
        return every, change_log.connected_keys(every_endpoint, edges), True
    batch_keys = batch.where(F.col("_key") != TABLE_KEY).select("_key").distinct()
    endpoints = sorted({k for edge in edges for k in edge})
    seeds = (
        {r["_key"] for r in batch_keys.where(F.col("_key").isin(endpoints)).collect()} if endpoints else set()
    )
    component_of = change_log.connected_keys(seeds, edges)
    linked = spark.createDataFrame([(k,) for k in component_of], "_key string")
    return batch_keys.unionByName(linked).distinct(), component_of, False


def apply_scd2(
    spark: SparkSession,
    batch: DataFrame,
    table_path: str,
    given: MergeInput,
) -> Scd2Outcome:
    """Apply a normalized batch (already appended to the change log) to SCD2 silver."""
    counts, keys, columns, new_columns = given.counts, given.keys, given.columns, given.new_columns
    log = change_log.read_log(spark, table_path)
    had_table_row = read_table(spark, table_path).where(F.col("_key") == TABLE_KEY).limit(1).count() > 0
    every_key = counts.newest_truncate is not None or bool(new_columns)
    targets, component_of, everything = rebuild_keys(spark, batch, log, every_key)
    targets = targets.persist()
    history = log.where(F.col("_key") != TABLE_KEY) if everything else log.join(F.broadcast(targets), "_key")
    truncates = [from_row(r) for r in log.where(F.col("_key") == TABLE_KEY).collect()]
    folded = _fold_groups(spark, history, truncates, component_of, list(columns))
    versions = _typed_versions(folded, keys, columns).withColumn("_action", F.lit("upsert")).persist()
    try:
        stored = read_table(spark, table_path).select("_key", "_valid_from_seq").join(targets, "_key")
        stale = stored.join(
            versions.select("_key", "_valid_from_seq"), ["_key", "_valid_from_seq"], "left_anti"
        )
        source = versions.unionByName(stale.withColumn("_action", F.lit("delete")), allowMissingColumns=True)
        source = source.unionByName(_table_row(spark, counts), allowMissingColumns=True)
        metrics = _merge(spark, table_path, source, [*keys, *columns], new_columns, given.commit_metadata)
        per_key = versions.groupBy("_key").agg(
            F.max(F.col("_is_current").cast("int")).alias("current"),
            F.max((F.col("_is_current") & (F.size("_incomplete") > 0)).cast("int")).alias("incomplete"),
        )
        keys_rebuilt = targets.count()
        totals = per_key.agg(
            F.sum("current").alias("current"), F.sum("incomplete").alias("incomplete")
        ).collect()[0]
        keys_in_batch = batch.where(F.col("_key") != TABLE_KEY).select("_key").distinct().count()
    finally:
        versions.unpersist()
        targets.unpersist()
    return Scd2Outcome(
        had_table_row=had_table_row,
        keys_in_batch=keys_in_batch,
        keys_rebuilt=keys_rebuilt,
        metrics=metrics,
        keys_deleted=keys_rebuilt - (totals["current"] or 0),
        incomplete_rows=totals["incomplete"] or 0,
    )


def _table_row(spark: SparkSession, counts: BatchCounts) -> DataFrame:
    """The table row (`_key` '{}'): the newest sequence and commit time applied; updated by every batch,
    so every batch is a commit that carries the caller's metadata."""
    row: tuple = (
        TABLE_KEY,
        TABLE_KEY,
        counts.newest_sequence,
        None,
        counts.newest_commit_ts,
        False,
        [],
        "upsert",
    )
    schema = "_key string, _valid_from_seq string, _valid_to_seq string, _valid_from_ts timestamp, _valid_to_ts timestamp, _is_current boolean, _incomplete array<string>, _action string"
    return spark.createDataFrame([row], schema)


def _merge(
    spark: SparkSession,
    path: str,
    source: DataFrame,
    user_columns: list[str],
    new_columns: list[str],
    commit_metadata: str | None,
) -> dict[str, str]:
    written = [*SCD2_METADATA.fieldNames(), *user_columns]
    values: MergeAssignments = {quote_identifier(c): f"s.{quote_identifier(c)}" for c in written}
    assignments = dict(values)
    for newest in ("_valid_to_seq", "_valid_to_ts"):
        assignments[quote_identifier(newest)] = (
            f"CASE WHEN t._key = '{TABLE_KEY}' THEN greatest(t.{newest}, s.{newest}) ELSE s.{newest} END"
        )
    differs = " OR ".join(
        f"NOT (t.{quote_identifier(c)} <=> s.{quote_identifier(c)})"
        for c in written
        if c not in set(new_columns)
    )
    differs = f"t._key = '{TABLE_KEY}' OR " + ("true" if new_columns else differs)
    merge = (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), "t._key = s._key AND t._valid_from_seq = s._valid_from_seq")
    )
    if new_columns:
        merge = merge.withSchemaEvolution()
    merge = (
        merge.whenMatchedDelete(condition="s._action = 'delete'")
        .whenMatchedUpdate(condition=f"s._action = 'upsert' AND ({differs})", set=assignments)
        .whenNotMatchedInsert(condition="s._action = 'upsert'", values=values)
    )
    return execute_with_metadata(spark, path, merge, commit_metadata)
