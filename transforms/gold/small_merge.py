"""An incremental gold MERGE of a few keys through delta-rs (transforms.delta_rs) instead of Spark.

The source is what the Spark MERGE would read, collected as an Arrow table: every affected key, with
its recomputed row and the present marker set, or the marker null where the SQL no longer returns the
key. The clauses are the Spark MERGE's: a matched key without a row is deleted, a matched row whose
content hash differs is updated, a new row is inserted. The commit carries the stage's `userMetadata`
and is made even when no row changes (the versions the run consumed must be recorded).

Measured on the 8-table CRM micro-batch (bench/bench_microbatch.py, 2 cores): Spark's MERGEs of the
five entities took 2.1-4.9 s each; with this path gold's step time fell from 39.8-46.8 s to 25.2-27.1 s
(docs/performance-history.md, "Gold's MERGEs of a few keys through delta-rs").
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from transforms.delta_rs import merge_in_one_commit, quote

_DUPLICATES_SHOWN = 5


@dataclass(frozen=True)
class SmallMergeOutcome:
    rows: int  # recomputed rows (present in the source)
    inserted: int
    updated: int
    deleted: int


def duplicated_keys(source: pa.Table, keys: list[str], present: str) -> list[dict]:
    """A few keys that several recomputed rows hold (each a dict of the key columns); [] when none."""
    rows = source.filter(pc.is_valid(source[present])).select(keys)
    counts = rows.group_by(keys).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts["count_all"], 1)).select(keys)
    return duplicated.slice(0, _DUPLICATES_SHOWN).to_pylist()


def merge_keys(
    table: DeltaTable, source: pa.Table, keys: list[str], present: str, hash_column: str, metadata: str
) -> SmallMergeOutcome | None:
    """MERGE `source` into the gold table by its keys in one commit carrying `metadata` (see the
    module docstring). The caller has refused duplicated keys (duplicated_keys).

    None when delta-rs failed before it committed (say, HDFS DataNodes its own client cannot reach):
    the table is as it was, but for data files no version holds, and the caller writes with Spark. An
    error after the commit is raised: the batch is in the table and its progress recorded."""
    columns = [c for c in source.column_names if c != present]
    values = {quote(c): f"s.{quote(c)}" for c in columns}
    on = " AND ".join(f"t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)}" for k in keys)
    metrics = merge_in_one_commit(
        table,
        source,
        on,
        lambda merge: (
            merge.when_matched_delete(predicate=f"s.{quote(present)} IS NULL")
            .when_matched_update(
                updates=values, predicate=f"t.{quote(hash_column)} <> s.{quote(hash_column)}"
            )
            .when_not_matched_insert(updates=values, predicate=f"s.{quote(present)}")
        ),
        metadata,
    )
    if metrics is None:
        return None
    return SmallMergeOutcome(
        rows=int(pc.sum(pc.is_valid(source[present])).as_py() or 0),
        inserted=int(metrics["num_target_rows_inserted"]),
        updated=int(metrics["num_target_rows_updated"]),
        deleted=int(metrics["num_target_rows_deleted"]),
    )
