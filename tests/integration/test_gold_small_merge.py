"""Gold's MERGE of a few keys through delta-rs (transforms/gold/small_merge.py, transforms/delta_rs.py)
on a local lake, read back by Spark: the cases the incremental gold story does not reach. The same
MERGE on HDFS and S3 is in test_lake_hdfs.py and test_lake_s3.py; delta-rs and Spark doing the same at
every step of incremental gold, in test_gold_incremental.py."""

from __future__ import annotations

import pyarrow as pa
import pytest

from transforms import delta_rs
from transforms.delta_commits import current_version, latest_progress, progress_metadata
from transforms.gold.engine import GOLD_TABLE_OPTIONS
from transforms.gold.small_merge import SmallMergeOutcome, merge_keys

pytestmark = pytest.mark.integration

SCHEMA = "id INT, name STRING, h STRING"


def gold_table(spark, path: str, row: tuple, **options: str) -> None:
    """A one-row table as gold writes one (change data feed, no deletion vectors, unless `options`)."""
    writer = spark.createDataFrame([row], SCHEMA).write.format("delta")
    writer.options(**{**GOLD_TABLE_OPTIONS, **options}).save(path)


def recomputed(key: int, name: str, row_hash: str) -> pa.Table:
    """A merge source of one affected key with its recomputed row."""
    return pa.table({"id": pa.array([key], pa.int32()), "name": [name], "h": [row_hash], "present": [True]})


def merge(spark, path: str, source: pa.Table, n: int) -> SmallMergeOutcome | None:
    table = delta_rs.open_writable(spark, path)
    assert table is not None
    return merge_keys(table, source, ["id"], "present", "h", progress_metadata("gold", entity="c", n=n))


def test_a_merge_that_changes_no_row_still_commits_its_progress(spark, tmp_lake):
    path = str(tmp_lake / "customer")
    gold_table(spark, path, (1, "ann", "h1"))

    outcome = merge(spark, path, recomputed(1, "ann", "h1"), n=1)

    assert outcome == SmallMergeOutcome(rows=1, inserted=0, updated=0, deleted=0)
    assert current_version(spark, path) == 1  # a commit without data, carrying the progress
    assert latest_progress(spark, path, "gold") == {"stage": "gold", "entity": "c", "n": 1}
    assert [tuple(r) for r in spark.read.format("delta").load(path).collect()] == [(1, "ann", "h1")]


def test_a_table_with_deletion_vectors_is_left_to_spark(spark, tmp_lake):
    path = str(tmp_lake / "big")
    gold_table(spark, path, (1, "ann", "h1"), **{"delta.enableDeletionVectors": "true"})

    assert delta_rs.open_writable(spark, path) is None
    assert delta_rs.open_writable(spark, str(tmp_lake / "no_table_here")) is None


def test_every_tenth_version_gets_a_checkpoint_that_spark_reads(spark, tmp_lake):
    path = str(tmp_lake / "checkpointed")
    gold_table(spark, path, (0, "zero", "h0"))
    for n in range(1, 12):  # versions 1..11, each a delta-rs MERGE inserting key n
        assert merge(spark, path, recomputed(n, f"n{n}", f"h{n}"), n=n) is not None

    log = tmp_lake / "checkpointed" / "_delta_log"
    assert sorted(p.name for p in log.glob("*.checkpoint.parquet")) == [
        "00000000000000000010.checkpoint.parquet"
    ]
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()  # Spark reads the log anew, from the checkpoint
    assert current_version(spark, path) == 11
    assert latest_progress(spark, path, "gold") == {"stage": "gold", "entity": "c", "n": 11}
    assert sorted(r["id"] for r in spark.read.format("delta").load(path).collect()) == list(range(12))
