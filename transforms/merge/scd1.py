"""SCD1 silver: the current row per key, each column last-writer-wins by source sequence.

One batch is applied as ONE Delta MERGE (after the change log append):

1. Changes older than the truncate barrier (the table row's `_image_seq`, or a truncate in this batch)
   are dropped.
2. Keys linked by a primary-key change — the batch moves a key, or touches a key an earlier move
   linked (`_pk_changed`) — are replayed from the change log (transforms.merge.fold) and written as
   they come out ("replace" rows). So a late change of the OLD key that is older than the move still
   reaches the new key's row, exactly as if it had arrived in order; a change of the old key newer than
   the move re-creates the old key. Such keys stay linked; each later change of theirs replays again
   (a few keys' history, read from the change log).
3. Every other key's changes are folded into one net change (newest image/delete, newest setter per
   column after it), and the MERGE applies it with the cell rule (transforms.merge.scd1_sql).
4. A truncate newer than the stored barrier also rewrites the rows the batch does not touch: rows with
   nothing newer than it are removed, rows with newer changes keep only those columns. A new column
   widens `_incomplete` of the rows that lack it. Tombstones older than the retention are purged.

Cost: the MERGE joins on `_key` (deletion vectors: only changed rows are written); rows the batch does
not touch are rewritten only by a truncate, the first batch with a new column (rows never fully
imaged), or a tombstone purge. A batch of a few keys without those three is written by delta-rs
instead (transforms.merge.scd1_small: the same clauses evaluated by Spark as a SELECT, the rows that
change MERGEd by key), which spares Spark's fixed cost of seconds per MERGE.

Tombstone purge: when the newest commit time applied to the table (the table row's `_commit_ts`, not
the wall clock, so replays are deterministic) crosses a multiple of a quarter of the retention,
tombstones whose `_commit_ts` is older than that newest time minus the retention are removed. A change
older than a purged tombstone that arrives after the purge re-creates the key: the retention is the
promise of how late changes may come.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from transforms.delta_commits import last_commit_metrics
from transforms.merge import change_log, scd1_small, scd1_sql
from transforms.merge.fold import KeyState, final_states, from_row
from transforms.merge.layout import PK_CHANGED, SCD1_METADATA, TABLE_KEY, read_table
from transforms.merge.prepare import DELETE, IMAGE, TRUNCATE, BatchCounts, MergeInput
from transforms.sql_text import sql_string

CELL = StructType([StructField("value", StringType(), True), StructField("seq", StringType(), False)])
NET_SCHEMA = StructType(
    [
        StructField("_key", StringType(), False),
        StructField("_s_image_seq", StringType(), True),
        StructField("_s_image_op", StringType(), True),
        StructField("_s_image_values", MapType(StringType(), StringType(), True), True),
        StructField("_s_cols", MapType(StringType(), CELL, False), False),
        StructField("_s_sequence", StringType(), False),
        StructField("_s_commit_ts", TimestampType(), True),
        StructField("_s_replace", BooleanType(), False),
    ]
)


@dataclass(frozen=True)
class TableRow:
    truncated_at: str | None
    sequence: str | None
    commit_ts: datetime | None


@dataclass(frozen=True)
class Scd1Plan:
    """Everything the MERGE needs besides the source frame."""

    keys: dict[str, str]  # key column -> Spark type
    columns: dict[str, str]  # non-key user column -> Spark type, including the new ones
    new_columns: list[str]
    existing_columns: list[str]  # non-key user columns the table already has
    new_truncate: str | None  # a truncate barrier newer than the stored one
    purge_before: datetime | None  # purge tombstones older than this


@dataclass(frozen=True)
class Scd1Outcome:
    before_truncate: int
    keys_in_batch: int
    keys_rebuilt: int
    metrics: dict[str, str]
    table_row_inserted: bool
    table_row_updated: bool
    rows_deleted: int
    incomplete_rows: int
    truncated: bool
    purged: bool


def read_stored_rows(spark: SparkSession, path: str, batch_keys: DataFrame) -> tuple[TableRow, list[str]]:
    """The table row, and the batch's keys that an earlier primary-key change linked.

    Both reads skip the files without such rows (min/max of `_key`, null counts of `_pk_changed`); the
    second runs only when the table holds linked keys at all."""
    candidates = read_table(spark, path).where((F.col("_key") == TABLE_KEY) | F.col(PK_CHANGED).isNotNull())
    is_table_row = F.col("_key") == TABLE_KEY
    [found] = candidates.agg(
        F.first(
            F.when(is_table_row, F.struct("_image_seq", "_sequence", "_commit_ts")), ignorenulls=True
        ).alias("row"),
        F.count(F.when(~is_table_row, F.lit(1))).alias("linked"),
    ).collect()
    table_row = TableRow(*found["row"]) if found["row"] else TableRow(None, None, None)
    if not found["linked"]:
        return table_row, []
    linked = candidates.where(~is_table_row).select("_key").join(batch_keys, "_key", "left_semi").collect()
    return table_row, sorted(r["_key"] for r in linked)


def purge_cutoff(before: datetime | None, after: datetime | None, retention_hours: float) -> datetime | None:
    """The purge runs when the table's newest commit time crosses a multiple of retention/4."""
    if before is None or after is None or after <= before:
        return None
    window = retention_hours * 3600 / 4
    epoch = datetime(1970, 1, 1)
    if math.floor((after - epoch).total_seconds() / window) <= math.floor(
        (before - epoch).total_seconds() / window
    ):
        return None
    return after - timedelta(hours=retention_hours)


def net_changes(changes: DataFrame, new_truncate: str | None) -> DataFrame:
    """One row per key: the batch's changes of the key folded by the cell rule (one shuffle).

    The newest full image or delete (or the new truncate, if newer) is the key's barrier; of the partial
    updates newer than it, the newest setter of each column wins.
    """
    truncate = "NULL" if new_truncate is None else sql_string(new_truncate)
    per_key = changes.groupBy("_key").agg(
        F.collect_list(
            F.struct(
                F.col("_sequence").alias("seq"),
                F.col("_kind").alias("kind"),
                F.col("_cols").alias("cols"),
                F.col("_commit_ts").alias("ts"),
            )
        ).alias("_cs")
    )
    heads = per_key.select(
        "_key",
        "_cs",
        F.expr("array_max(transform(_cs, c -> c.seq))").alias("_s_sequence"),
        F.expr("array_max(transform(filter(_cs, c -> c.kind IN ('image', 'delete')), c -> c.seq))").alias(
            "_own_seq"
        ),
    ).select(
        "_key",
        "_cs",
        "_s_sequence",
        F.expr("element_at(filter(_cs, c -> c.seq = _s_sequence), 1).ts").alias("_s_commit_ts"),
        F.expr("element_at(filter(_cs, c -> c.seq = _own_seq), 1)").alias("_own"),
        F.expr(f"{truncate} IS NOT NULL AND (_own_seq IS NULL OR {truncate} > _own_seq)").alias(
            "_truncate_wins"
        ),
    )
    cells_type = NET_SCHEMA["_s_cols"].dataType.simpleString()
    newer_updates = "filter(_cs, c -> c.kind = 'update' AND (_s_image_seq IS NULL OR c.seq > _s_image_seq))"
    entries = f"flatten(transform({newer_updates}, c -> transform(map_entries(c.cols), e -> named_struct('col', e.key, 'value', e.value, 'seq', c.seq))))"
    newest_per_column = (
        f"aggregate({entries}, cast(map() as {cells_type}), (acc, e) -> CASE"
        " WHEN try_element_at(acc, e.col).seq >= e.seq THEN acc"
        " ELSE map_concat(map_filter(acc, (k, v) -> k != e.col), map(e.col, named_struct('value', e.value, 'seq', e.seq))) END)"
    )
    return heads.select(
        "_key",
        "_cs",
        F.expr(f"CASE WHEN _truncate_wins THEN {truncate} ELSE _own.seq END").alias("_s_image_seq"),
        F.expr("CASE WHEN _truncate_wins THEN 'delete' ELSE _own.kind END").alias("_s_image_op"),
        F.expr("CASE WHEN NOT _truncate_wins AND _own.kind = 'image' THEN _own.cols END").alias(
            "_s_image_values"
        ),
        "_s_sequence",
        "_s_commit_ts",
    ).select(
        "_key",
        "_s_image_seq",
        "_s_image_op",
        "_s_image_values",
        F.expr(newest_per_column).cast(cells_type).alias("_s_cols"),
        "_s_sequence",
        "_s_commit_ts",
        F.lit(False).alias("_s_replace"),
    )


def replace_row(key: str, state: KeyState) -> tuple:
    image_values = None
    if state.image_op == IMAGE:
        image_values = {c: v for c, v in state.values.items() if c not in state.col_seq}
    cells = {c: (state.values.get(c), seq) for c, seq in state.col_seq.items()}
    return (key, state.image_seq, state.image_op, image_values, cells, state.sequence, state.commit_ts, True)


def rebuild_linked_keys(
    spark: SparkSession, table_path: str, linked_before: list[str], moves: set[tuple[str, str]]
) -> tuple[DataFrame | None, list[str]]:
    """Replace rows for every key linked (now or before) by a primary-key change to a key of the batch."""
    seeds = set(linked_before) | {k for move in moves for k in move}
    if not seeds:
        return None, []
    log = change_log.read_log(spark, table_path)
    component = change_log.connected_keys(seeds, change_log.move_edges(log) | moves)
    keys = sorted(component)
    history = change_log.changes_of_keys(
        log, spark.createDataFrame([(k,) for k in keys], "_key string")
    ).collect()
    states = final_states(from_row(r) for r in history)
    rows = [replace_row(k, states[k]) for k in keys if k in states]
    return spark.createDataFrame(rows, NET_SCHEMA), keys


def table_row_change(spark: SparkSession, counts: BatchCounts, new_truncate: str | None) -> DataFrame:
    """The table row's source: the new barrier, the newest sequence and commit time of the batch."""
    row: tuple = (
        TABLE_KEY,
        new_truncate,
        DELETE if new_truncate else None,
        None,
        {},
        counts.newest_sequence,
        counts.newest_commit_ts,
        False,
    )
    return spark.createDataFrame([row], NET_SCHEMA)


def apply_scd1(
    spark: SparkSession,
    batch: DataFrame,
    table_path: str,
    given: MergeInput,
    retention_hours: float,
) -> Scd1Outcome:
    """Apply a normalized, deduplicated batch (already in the change log) to SCD1 silver."""
    counts, columns, new_columns = given.counts, given.columns, given.new_columns
    changes = batch.where(F.col("_kind") != TRUNCATE)
    stored, linked_before = read_stored_rows(spark, table_path, changes.select("_key").distinct())
    batch_truncate = counts.newest_truncate
    new_truncate = (
        batch_truncate
        if batch_truncate and (stored.truncated_at is None or batch_truncate > stored.truncated_at)
        else None
    )
    barrier = max(filter(None, [stored.truncated_at, new_truncate]), default=None)

    before_truncate = changes.where(F.col("_sequence") < barrier).count() if barrier else 0
    live = changes.where(F.col("_sequence") > barrier) if barrier else changes
    moves: set[tuple[str, str]] = set()
    if counts.pk_changes:
        moves = {
            (r["_old_key"], r["_key"])
            for r in live.where(F.col("_old_key").isNotNull()).select("_old_key", "_key").collect()
        }
    replaced, linked = rebuild_linked_keys(spark, table_path, linked_before, moves)
    if linked:
        live = live.join(
            F.broadcast(spark.createDataFrame([(k,) for k in linked], "_key string")), "_key", "left_anti"
        )

    newest_ts = max(filter(None, [stored.commit_ts, counts.newest_commit_ts]), default=None)
    purge_before = None if new_truncate else purge_cutoff(stored.commit_ts, newest_ts, retention_hours)

    source = net_changes(live, new_truncate)
    if replaced is not None:
        source = source.unionByName(replaced)
    source = source.unionByName(table_row_change(spark, counts, new_truncate))
    for column in new_columns:
        source = source.withColumn(column, F.lit(None).cast(columns[column]))
    existing = [c for c in columns if c not in set(new_columns)]
    plan = Scd1Plan(given.keys, columns, new_columns, existing, new_truncate, purge_before)
    small = None
    only_batch_keys = not (new_columns or new_truncate or purge_before)
    source_rows = counts.changes_read + len(linked) + 1
    if only_batch_keys and scd1_small.fits(source_rows, len(given.keys) + len(columns) + len(SCD1_METADATA)):
        small = scd1_small.merge_small(spark, table_path, source, given.keys, columns, given.commit_metadata)
    if small is None:
        metrics = _merge(spark, table_path, source, plan, given.commit_metadata)
        rows_deleted, incomplete_rows = _outcome_of(spark, table_path, int(metrics["version"]))
    else:
        metrics, rows_deleted, incomplete_rows = small.metrics, small.rows_deleted, small.incomplete_rows
    keys_in_batch = int(metrics.get("numSourceRows", 1)) - 1
    return Scd1Outcome(
        before_truncate=before_truncate,
        keys_in_batch=keys_in_batch,
        keys_rebuilt=len(linked),
        metrics=metrics,
        table_row_inserted=stored.sequence is None,
        table_row_updated=stored.sequence is not None,
        rows_deleted=rows_deleted,
        incomplete_rows=incomplete_rows,
        truncated=bool(new_truncate),
        purged=purge_before is not None,
    )


def _merge(
    spark: SparkSession, path: str, source: DataFrame, plan: Scd1Plan, commit_metadata: str | None
) -> dict[str, str]:
    all_columns = list(plan.columns)
    merge = DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), "t._key = s._key")
    if plan.new_columns:
        merge = merge.withSchemaEvolution()
    merge = merge.whenMatchedUpdate(
        condition=scd1_sql.update_condition(widen_incomplete=bool(plan.new_columns)),
        set=scd1_sql.update_set(plan.columns, set(plan.new_columns)),
    ).whenNotMatchedInsert(values=scd1_sql.insert_values(plan.keys, plan.columns))
    if plan.new_truncate:
        merge = merge.whenNotMatchedBySourceDelete(
            condition=scd1_sql.truncate_delete_condition(plan.new_truncate)
        )
        merge = merge.whenNotMatchedBySourceUpdate(
            condition=scd1_sql.truncate_update_condition(plan.new_truncate),
            set=scd1_sql.truncate_set(plan.existing_columns, all_columns, plan.new_truncate),
        )
    if plan.purge_before is not None:
        cutoff = f"TIMESTAMP '{plan.purge_before.isoformat(sep=' ')}'"
        merge = merge.whenNotMatchedBySourceDelete(condition=scd1_sql.purge_condition(cutoff))
    if plan.new_columns:
        merge = merge.whenNotMatchedBySourceUpdate(
            condition=scd1_sql.WIDEN_CONDITION, set=scd1_sql.widen_set(plan.new_columns)
        )
    return execute_with_metadata(spark, path, merge, commit_metadata)


def execute_with_metadata(
    spark: SparkSession, path: str, merge, commit_metadata: str | None
) -> dict[str, str]:
    """Run the MERGE as one commit carrying `commit_metadata` as its userMetadata; return its metrics."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    if commit_metadata is not None:
        spark.conf.set(key, commit_metadata)
    try:
        merge.execute()
    finally:
        if commit_metadata is not None:
            spark.conf.unset(key)
    version, metrics = last_commit_metrics(spark, path)
    return {**metrics, "version": str(version)}


def _outcome_of(spark: SparkSession, path: str, version: int) -> tuple[int, int]:
    """Of the keys this commit wrote, how many are tombstones, and live but incomplete, after it.

    Read from the commit's change data feed: cost follows the rows the batch changed."""
    row = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", version)
        .option("endingVersion", version)
        .load(path)
        .where(F.col("_change_type").isin("insert", "update_postimage") & (F.col("_key") != TABLE_KEY))
        .agg(
            F.sum(F.when(F.col("_deleted"), 1).otherwise(0)).alias("deleted"),
            F.sum(F.when(~F.col("_deleted") & (F.size("_incomplete") > 0), 1).otherwise(0)).alias(
                "incomplete"
            ),
        )
        .collect()[0]
    )
    return row["deleted"] or 0, row["incomplete"] or 0
