"""The change log kept beside silver: every normalized change applied, at `<silver path>/_changes`.

Silver's cell rule needs no history, but two things do: a key moved by a primary-key change (its row
starts from the old key's row as of the move, which later, late changes of the old key may still
alter) and SCD2 (a late change is slotted into the key's history). For those keys the engine replays
the key's whole history from this log (transforms.merge.fold).

Append-only, one Delta commit per batch (written by delta-rs when the batch is small), written BEFORE
the silver commit; a rerun after a crash appends the batch again, and readers keep one change per
(key, sequence), so that is harmless. It lives inside silver's folder, which Delta readers and VACUUM
of silver ignore (the folder name starts with an underscore). It grows like bronze; pruning changes
older than the tombstone retention is future work.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms import delta_rs
from transforms.merge.layout import TABLE_KEY, table_exists

LOG_COLUMNS = ["_key", "_sequence", "_kind", "_cols", "_old_key", "_commit_ts", "_content"]


def log_path(table_path: str) -> str:
    return table_path.rstrip("/") + "/_changes"


def append(changes: DataFrame, table_path: str, count: int) -> None:
    """Append the batch (`count` changes) in one commit: collected as Arrow and written by delta-rs
    when it is small (transforms.delta_rs), else, or when delta-rs cannot, written by Spark."""
    logged = changes.select(*LOG_COLUMNS)
    path = log_path(table_path)
    if count * len(LOG_COLUMNS) <= delta_rs.SMALL_MERGE_CELLS:
        if delta_rs.append_in_one_commit(changes.sparkSession, path, logged.toArrow()):
            return
    logged.write.format("delta").mode("append").save(path)


def read_log(spark: SparkSession, table_path: str) -> DataFrame:
    path = log_path(table_path)
    if not table_exists(spark, path):
        raise FileNotFoundError(f"no change log at {path}")
    return spark.read.format("delta").load(path)


def move_edges(log: DataFrame) -> set[tuple[str, str]]:
    """(old key, new key) of every primary-key change ever applied."""
    rows = log.where(F.col("_old_key").isNotNull()).select("_old_key", "_key").distinct().collect()
    return {(r["_old_key"], r["_key"]) for r in rows}


def changes_of_keys(log: DataFrame, keys: DataFrame) -> DataFrame:
    """The logged changes of the given keys (a one-column `_key` frame) and every truncate."""
    return log.join(F.broadcast(keys.distinct()), "_key").unionByName(log.where(F.col("_key") == TABLE_KEY))


def connected_keys(seeds: set[str], edges: set[tuple[str, str]]) -> dict[str, str]:
    """Every key linked to a seed by primary-key changes -> its component's name (its smallest key)."""
    neighbours: dict[str, set[str]] = {}
    for old, new in edges:
        neighbours.setdefault(old, set()).add(new)
        neighbours.setdefault(new, set()).add(old)
    component: dict[str, str] = {}
    for seed in sorted(seeds):
        if seed in component:
            continue
        members, todo = {seed}, [seed]
        while todo:
            for other in neighbours.get(todo.pop(), ()):
                if other not in members:
                    members.add(other)
                    todo.append(other)
        name = min(members)
        component.update(dict.fromkeys(members, name))
    return component
