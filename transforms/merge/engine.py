"""apply_changes: one batch of bronze change rows -> the silver Delta table, in one silver commit.

The rules it implements are docs/DESIGN.md's "Semantics the merge must get right (silver)"; the table
layout is in transforms.merge.layout, the SCD1 cell rule in transforms.merge.scd1, SCD2 in
transforms.merge.scd2.

Commits per call: the change-log append (`<table>/_changes`), then ONE silver commit that holds the
whole batch and `commit_metadata` as its userMetadata (use transforms.delta_commits.progress_metadata
and latest_progress to make reruns no-ops). The first call on a missing table first creates the empty
table (a commit without data). A rerun of a batch already applied changes no row.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.deletion_vectors import turn_on_deletion_vectors_when_big
from transforms.merge import change_log
from transforms.merge.layout import (
    METADATA_COLUMNS,
    MergeError,
    allow_column_names,
    check_table_matches,
    create_table,
    read_table,
    silver_column,
    spark_type,
    table_exists,
)
from transforms.merge.prepare import MergeInput, count_batch, deduplicate, normalize
from transforms.merge.scd1 import apply_scd1
from transforms.merge.scd2 import apply_scd2
from transforms.merge.stats import MergeStats
from transforms.merge.type_change import type_changes, widen_columns

HISTORIES = ("scd1", "scd2")


def apply_changes(
    spark: SparkSession,
    changes: DataFrame,
    table_path: str,
    *,
    keys: list[str],
    column_types: dict[str, str] | None = None,
    history: str = "scd1",
    tombstone_retention_hours: float = 168,
    commit_metadata: str | None = None,
    ignored_operations: Sequence[str] = (),
) -> MergeStats:
    """Apply bronze rows (transforms.bronze_rows.BRONZE_SCHEMA) of ONE source table to its silver table.

    changes: any order, any split into batches, duplicates and replays allowed.
    keys: the key columns (the source's names). column_types: spec type per column (default string);
    declared columns exist from the start, others appear as nullable columns when first seen. Silver
    names each column as the source does, but for backticks (layout.silver_column).
    history: 'scd1' (current row per key) or 'scd2' (every version). An empty batch writes nothing.
    ignored_operations: ops (`delete`, `truncate`) this table does not apply: an outbox's (TableSpec).
    """
    keys = [silver_column(k) for k in keys]
    column_types = {silver_column(c): t for c, t in (column_types or {}).items()}
    if history not in HISTORIES:
        raise MergeError(f"history must be one of {HISTORIES}, got {history!r}")
    if not keys:
        raise MergeError("a silver table needs at least one key column")
    reserved = sorted((set(keys) | set(column_types or {})) & METADATA_COLUMNS)
    if reserved:
        raise MergeError(f"columns {reserved} collide with silver's metadata columns; rename them")
    types = {c: spark_type(t) for c, t in column_types.items()}

    if ignored_operations:
        changes = changes.where(~F.col("op").isin(*ignored_operations))
    normalized = normalize(changes, keys).persist()
    try:
        counts = count_batch(normalized, types, keys)
        if counts.changes_read == 0:
            return MergeStats()
        declared = {k: types.get(k, "string") for k in keys}
        declared.update({c: t for c, t in types.items() if c not in declared})
        if table_exists(spark, table_path):
            check_table_matches(spark, table_path, history=history, keys=keys)
            turn_on_deletion_vectors_when_big(spark, table_path)
        else:
            create_table(spark, table_path, history=history, keys=keys, columns=declared)
        stored = {
            f.name: f.dataType.simpleString()
            for f in read_table(spark, table_path).schema
            if f.name not in METADATA_COLUMNS
        }
        # declared types only: a type hint removed from the spec keeps the stored type
        widened = type_changes(table_path, stored, types)
        widen_columns(spark, table_path, widened)
        stored.update(widened)
        new_columns = [c for c in counts.columns if c not in stored]
        allow_column_names(spark, table_path, new_columns)
        key_types = {k: stored[k] for k in keys}
        columns = {c: t for c, t in stored.items() if c not in key_types}
        columns.update({c: types.get(c, "string") for c in new_columns})

        batch = deduplicate(normalized).persist()
        try:
            change_log.append(batch, table_path, counts.changes_read)
            given = MergeInput(counts, key_types, columns, new_columns, commit_metadata)
            if history == "scd1":
                outcome = apply_scd1(spark, batch, table_path, given, tombstone_retention_hours)
                return _scd1_stats(counts, outcome, new_columns)
            return _scd2_stats(counts, apply_scd2(spark, batch, table_path, given), new_columns)
        finally:
            batch.unpersist()
    finally:
        normalized.unpersist()


def _metric(metrics: dict[str, str], name: str) -> int:
    return int(metrics.get(name, 0) or 0)


def _batch_fields(counts) -> dict:
    return dict(
        changes_read=counts.changes_read,
        duplicates=counts.duplicates,
        position_ties=counts.position_ties,
        values_not_castable=counts.values_not_castable,
        pk_changes=counts.pk_changes,
    )


def _scd1_stats(counts, outcome, new_columns: list[str]) -> MergeStats:
    inserted = _metric(outcome.metrics, "numTargetRowsInserted") - int(outcome.table_row_inserted)
    updated = _metric(outcome.metrics, "numTargetRowsMatchedUpdated") - int(outcome.table_row_updated)
    return MergeStats(
        **_batch_fields(counts),
        before_truncate=outcome.before_truncate,
        keys_in_batch=outcome.keys_in_batch,
        keys_rebuilt=outcome.keys_rebuilt,
        keys_without_effect=outcome.keys_in_batch - inserted - updated,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_removed=_metric(outcome.metrics, "numTargetRowsNotMatchedBySourceDeleted"),
        rows_deleted=outcome.rows_deleted,
        incomplete_rows=outcome.incomplete_rows,
        truncated=outcome.truncated,
        tombstones_purged=outcome.purged,
        new_columns=tuple(new_columns),
        table_version=_metric(outcome.metrics, "version"),
    )


def _scd2_stats(counts, outcome, new_columns: list[str]) -> MergeStats:
    return MergeStats(
        **_batch_fields(counts),
        keys_in_batch=outcome.keys_in_batch,
        keys_rebuilt=outcome.keys_rebuilt,
        rows_inserted=_metric(outcome.metrics, "numTargetRowsInserted") - int(not outcome.had_table_row),
        rows_updated=_metric(outcome.metrics, "numTargetRowsMatchedUpdated") - int(outcome.had_table_row),
        rows_removed=_metric(outcome.metrics, "numTargetRowsMatchedDeleted"),
        rows_deleted=outcome.keys_deleted,
        incomplete_rows=outcome.incomplete_rows,
        truncated=counts.newest_truncate is not None,
        new_columns=tuple(new_columns),
        table_version=_metric(outcome.metrics, "version"),
    )
