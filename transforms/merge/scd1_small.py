"""An SCD1 batch of a few keys written by delta-rs (transforms.delta_rs) instead of Spark's MERGE.

Spark still computes every row. The MERGE's source (one net change per key, the rebuilt keys, the
table row) is joined to the stored rows of its keys, and the Spark MERGE's own clauses
(transforms.merge.scd1_sql) are evaluated as one SELECT: a stored row takes the WHEN MATCHED
assignments, a new key the INSERT values, and a row is kept only where the MERGE would write it (the
key is new, or the update condition holds). Those rows are collected as Arrow and delta-rs MERGEs them
by `_key`, every column taken from the row, in one commit carrying the batch's `userMetadata`. The
outcome (tombstones, incomplete rows among the rows written) is counted from the same rows instead of
being read back from the change data feed.

Only for a MERGE without clauses over the rows the batch does not touch (no new truncate, no new
column, no tombstone purge: the caller decides), of at most SMALL_MERGE_CELLS values, into a table
delta-rs may write (not one with deletion vectors or column mapping). Everything else, and a delta-rs
MERGE that fails before its commit, goes through Spark's MERGE; both write the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms import delta_rs
from transforms.merge import scd1_sql
from transforms.merge.layout import DELETED, INCOMPLETE, KEY, TABLE_KEY
from transforms.sql_text import MergeAssignments, quote_identifier

_WRITES = "__writes"


@dataclass(frozen=True)
class SmallMerge:
    metrics: dict[str, str]  # in the names of Spark's MERGE metrics, and `version`
    rows_deleted: int
    incomplete_rows: int


def fits(source_rows: int, table_columns: int) -> bool:
    return source_rows * table_columns <= delta_rs.SMALL_MERGE_CELLS


def rows_to_write(
    spark: SparkSession,
    path: str,
    version: int,
    source: DataFrame,
    keys: dict[str, str],
    columns: dict[str, str],
) -> DataFrame:
    """Each source key's row after the MERGE, every column of the table, and `_WRITES`: whether the
    MERGE writes it. `keys`/`columns`: the key and non-key user columns with their Spark types."""
    stored = spark.read.format("delta").option("versionAsOf", version).load(path)
    updated = _by_column(scd1_sql.update_set(columns, set()))
    inserted = _by_column(scd1_sql.insert_values(keys, columns))
    selected = []
    for field in stored.schema.fields:
        kept = f"t.{quote_identifier(field.name)}"
        value = (
            f"CASE WHEN t.{KEY} IS NULL THEN {inserted[field.name]} ELSE {updated.get(field.name, kept)} END"
        )
        selected.append(F.expr(f"CAST({value} AS {field.dataType.simpleString()})").alias(field.name))
    writes = f"t.{KEY} IS NULL OR ({scd1_sql.update_condition(widen_incomplete=False)})"
    joined = source.alias("s").join(stored.alias("t"), F.col(f"s.{KEY}") == F.col(f"t.{KEY}"), "left")
    return joined.select(*selected, F.expr(writes).alias(_WRITES))


def _by_column(assignments: MergeAssignments) -> dict[str, str]:
    """MERGE assignments (SQL text, as transforms.merge.scd1_sql writes them) by plain column name."""
    by_column = {}
    for target, value in assignments.items():
        assert isinstance(value, str), target
        by_column[_unquoted(target)] = value
    return by_column


def _unquoted(identifier: str) -> str:
    if len(identifier) > 1 and identifier.startswith("`") and identifier.endswith("`"):
        return identifier[1:-1].replace("``", "`")
    return identifier


def merge_small(
    spark: SparkSession,
    path: str,
    source: DataFrame,
    keys: dict[str, str],
    columns: dict[str, str],
    commit_metadata: str | None,
) -> SmallMerge | None:
    """Write the batch through delta-rs (see the module docstring); None when the table is not one
    delta-rs may write or delta-rs failed before its commit: then the caller MERGEs with Spark."""
    table = delta_rs.open_writable(spark, path)
    if table is None:
        return None
    every_row = rows_to_write(spark, path, table.version(), source, keys, columns).toArrow()
    rows = every_row.filter(every_row[_WRITES]).drop_columns([_WRITES])
    values = {delta_rs.quote(c): f"s.{delta_rs.quote(c)}" for c in rows.column_names}
    on = f"t.{delta_rs.quote(KEY)} = s.{delta_rs.quote(KEY)}"
    metrics = delta_rs.merge_in_one_commit(
        table,
        rows,
        on,
        lambda merge: merge.when_matched_update(updates=values).when_not_matched_insert(updates=values),
        commit_metadata,
    )
    if metrics is None:
        return None
    deleted, incomplete = _outcome(rows)
    return SmallMerge(
        metrics={
            "numSourceRows": str(every_row.num_rows),
            "numTargetRowsInserted": str(metrics["num_target_rows_inserted"]),
            "numTargetRowsMatchedUpdated": str(metrics["num_target_rows_updated"]),
            "version": str(metrics["version"]),
        },
        rows_deleted=deleted,
        incomplete_rows=incomplete,
    )


def _outcome(rows: pa.Table) -> tuple[int, int]:
    """Of the keys written (the table row aside), how many are tombstones, and live but incomplete."""
    keyed = rows.filter(pc.not_equal(rows[KEY], TABLE_KEY))
    deleted = keyed[DELETED]
    incomplete = pc.and_(pc.invert(deleted), pc.greater(pc.list_value_length(keyed[INCOMPLETE]), 0))
    return int(pc.sum(deleted).as_py() or 0), int(pc.sum(incomplete).as_py() or 0)
