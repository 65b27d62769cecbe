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


def test_a_merge_that_changes_no_row_still_commits_its_progress(spark, tmp_lake):
    path = str(tmp_lake / "customer")
    spark.createDataFrame([(1, "ann", "h1")], SCHEMA).write.format("delta").options(
        **GOLD_TABLE_OPTIONS
    ).save(path)
    table = delta_rs.open_writable(spark, path)
    assert table is not None
    unchanged = pa.table({"id": pa.array([1], pa.int32()), "name": ["ann"], "h": ["h1"], "present": [True]})

    outcome = merge_keys(table, unchanged, ["id"], "present", "h", progress_metadata("gold", entity="c", n=1))

    assert outcome == SmallMergeOutcome(rows=1, inserted=0, updated=0, deleted=0)
    assert current_version(spark, path) == 1  # a commit without data, carrying the progress
    assert latest_progress(spark, path, "gold") == {"stage": "gold", "entity": "c", "n": 1}
    assert [tuple(r) for r in spark.read.format("delta").load(path).collect()] == [(1, "ann", "h1")]


def test_a_table_with_deletion_vectors_is_left_to_spark(spark, tmp_lake):
    path = str(tmp_lake / "big")
    options = {**GOLD_TABLE_OPTIONS, "delta.enableDeletionVectors": "true"}
    spark.createDataFrame([(1, "ann", "h1")], SCHEMA).write.format("delta").options(**options).save(path)

    assert delta_rs.open_writable(spark, path) is None
    assert delta_rs.open_writable(spark, str(tmp_lake / "no_table_here")) is None


def test_every_tenth_version_gets_a_checkpoint_that_spark_reads(spark, tmp_lake):
    path = str(tmp_lake / "checkpointed")
    spark.createDataFrame([(0, "zero", "h0")], SCHEMA).write.format("delta").options(
        **GOLD_TABLE_OPTIONS
    ).save(path)
    for n in range(1, 12):  # versions 1..11, each a delta-rs MERGE inserting key n
        table = delta_rs.open_writable(spark, path)
        assert table is not None
        row = pa.table(
            {"id": pa.array([n], pa.int32()), "name": [f"n{n}"], "h": [f"h{n}"], "present": [True]}
        )
        merge_keys(table, row, ["id"], "present", "h", progress_metadata("gold", entity="c", n=n))

    log = tmp_lake / "checkpointed" / "_delta_log"
    assert sorted(p.name for p in log.glob("*.checkpoint.parquet")) == [
        "00000000000000000010.checkpoint.parquet"
    ]
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()  # Spark reads the log anew, from the checkpoint
    assert current_version(spark, path) == 11
    assert latest_progress(spark, path, "gold") == {"stage": "gold", "entity": "c", "n": 11}
    assert sorted(r["id"] for r in spark.read.format("delta").load(path).collect()) == list(range(12))
