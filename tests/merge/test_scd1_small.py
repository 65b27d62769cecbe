"""Silver's MERGE of a few keys through delta-rs (transforms/merge/scd1_small.py) writes what Spark's
MERGE writes, and the change log's append through delta-rs what Spark's append writes.

The same batches go into two tables: one where delta-rs writes the small MERGEs, one where Spark writes
every MERGE (SMALL_MERGE_CELLS = 0). The batches hold typed columns, partial updates, a key never
imaged, a late change, a delete and a re-insert, a duplicate, a primary-key change with a late change
of the old key, a truncate (whose MERGE rewrites untouched rows: Spark on both), a new column (Spark
on both) and a replay. After every batch both tables must hold the same rows, every metadata column
included, report the same MergeStats, give the same change data feed for the batch's commit and hold
the same change log, and each commit's engine must be the one expected.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.merge.conftest import Silver, new_table_path
from tests.reference_model import (
    DELETE,
    IMAGE,
    TRUNCATE,
    TRUNCATE_KEY,
    UPDATE,
    Change,
    key_json,
    sequence_at,
    time_at,
)
from transforms import delta_rs
from transforms.delta_commits import latest_progress, progress_metadata
from transforms.merge.change_log import log_path

pytestmark = pytest.mark.integration

TYPES = {"ID": "int", "AMOUNT": "decimal(12,2)", "OPENED": "date", "NOTE": "string"}


def change(position: int, kind: str, n: int, cols: dict | None = None, old: int | None = None) -> Change:
    key = key_json({"ID": str(n)})
    old_key = key_json({"ID": str(old)}) if old else None
    return Change(key, sequence_at(position), kind, cols, old_key, time_at(position))


FIRST = [
    change(10, IMAGE, 1, {"AMOUNT": "1.50", "OPENED": "2026-01-02", "NOTE": "one"}),
    change(11, IMAGE, 2, {"AMOUNT": "2.00", "OPENED": "2026-01-03", "NOTE": "two"}),
    change(12, IMAGE, 3, {"AMOUNT": "3.00", "OPENED": "2026-01-04", "NOTE": "three"}),
    change(13, UPDATE, 4, {"NOTE": "never imaged"}),
    change(14, UPDATE, 1, {"AMOUNT": "not a number"}),
]
SECOND = [
    change(20, UPDATE, 1, {"AMOUNT": "2.25"}),
    change(9, UPDATE, 1, {"NOTE": "older than the image"}),
    change(21, DELETE, 2),
    change(22, UPDATE, 3, {"NOTE": None}),
    FIRST[2],  # a duplicate of an applied change
    change(23, UPDATE, 4, {"AMOUNT": "4.00"}),
]
MOVE = [
    change(30, UPDATE, 5, {"NOTE": "moved from 3"}, old=3),
    change(25, UPDATE, 3, {"AMOUNT": "3.50"}),  # the old key, older than the move: reaches key 5
    change(31, IMAGE, 2, {"AMOUNT": "2.50", "OPENED": "2026-02-01", "NOTE": "back"}),
]
TRUNCATED = [
    Change(TRUNCATE_KEY, sequence_at(40), TRUNCATE, commit_ts=time_at(40)),
    change(41, UPDATE, 1, {"NOTE": "after the truncate"}),
]
NEW_COLUMN = [change(50, UPDATE, 1, {"STATUS": "open"})]
AFTER = [
    change(60, IMAGE, 6, {"AMOUNT": "6.00", "OPENED": "2026-03-01", "NOTE": "six", "STATUS": "new"}),
    change(61, UPDATE, 5, {"AMOUNT": "5.25"}),
    change(62, UPDATE, 4, {"OPENED": "2026-04-01"}),
]
# (batch, the engine that writes it where delta-rs may)
BATCHES = [
    (FIRST, "delta-rs"),
    (SECOND, "delta-rs"),
    (MOVE, "delta-rs"),
    (TRUNCATED, "Apache-Spark"),
    (NEW_COLUMN, "Apache-Spark"),
    (AFTER, "delta-rs"),
    (AFTER, "delta-rs"),  # a replay
]


def last_commit(spark, path: str) -> dict:
    row = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]
    return {"version": row["version"], "engine": row["engineInfo"].split("/")[0].split(":")[0]}


def change_feed(spark, path: str, version: int) -> list[dict]:
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", version)
        .option("endingVersion", version)
        .load(path)
        .drop("_commit_version", "_commit_timestamp")
    )
    rows = [r.asDict(recursive=True) for r in feed.collect()]
    return sorted(rows, key=lambda row: (row["_key"], row["_change_type"]))


def logged(spark, path: str) -> list[dict]:
    rows = [r.asDict(recursive=True) for r in spark.read.format("delta").load(log_path(path)).collect()]
    return sorted(rows, key=lambda row: (row["_key"], row["_sequence"], row["_content"]))


def test_delta_rs_writes_what_spark_writes_at_every_batch(spark, tmp_lake, monkeypatch):
    small = Silver(spark, new_table_path(tmp_lake), column_types=TYPES)
    spark_only = Silver(spark, new_table_path(tmp_lake), column_types=TYPES)
    for number, (batch, engine) in enumerate(BATCHES):
        metadata = progress_metadata("silver", batch=number)
        with monkeypatch.context() as forced:
            forced.setattr(delta_rs, "SMALL_MERGE_CELLS", 0)
            expected = spark_only.apply(batch, commit_metadata=metadata)
        stats = small.apply(batch, commit_metadata=metadata)

        assert dataclasses.asdict(stats) == dataclasses.asdict(expected), number
        assert small.stored() == spark_only.stored(), number
        commit, spark_commit = last_commit(spark, small.path), last_commit(spark, spark_only.path)
        assert (commit["engine"], spark_commit["engine"]) == (engine, "Apache-Spark"), number
        assert commit["version"] == spark_commit["version"] == stats.table_version, number
        assert change_feed(spark, small.path, commit["version"]) == change_feed(
            spark, spark_only.path, commit["version"]
        ), number
        log, spark_log = (
            last_commit(spark, log_path(small.path)),
            last_commit(spark, log_path(spark_only.path)),
        )
        assert (log["engine"], spark_log["engine"]) == ("delta-rs", "Apache-Spark"), number
        assert logged(spark, small.path) == logged(spark, spark_only.path), number
        assert latest_progress(spark, small.path, "silver") == {"stage": "silver", "batch": number}
    assert stats.rows_updated == 0 and stats.keys_without_effect == 3  # the replay changed nothing
