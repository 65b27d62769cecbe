"""Spark with Delta from local jars: create, MERGE, time travel, history."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable

pytestmark = pytest.mark.integration


def _rows(frame):
    return sorted(tuple(row) for row in frame.collect())


def test_merge_updates_matches_inserts_new_keys_and_keeps_older_versions(spark, tmp_lake):
    path = str(tmp_lake / "customer")
    original = [(1, "ann", "paris"), (2, "bob", "rome")]
    spark.createDataFrame(original, "id INT, name STRING, city STRING").write.format("delta").save(path)

    changes = spark.createDataFrame(
        [(2, "bob", "oslo"), (3, "cyd", "lima")], "id INT, name STRING, city STRING"
    )
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(changes.alias("c"), "t.id = c.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )

    current = _rows(spark.read.format("delta").load(path))
    version_0 = _rows(spark.read.format("delta").option("versionAsOf", 0).load(path))
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()

    assert current == [(1, "ann", "paris"), (2, "bob", "oslo"), (3, "cyd", "lima")]
    assert version_0 == original
    assert [(entry.version, entry.operation) for entry in history] == [(0, "WRITE"), (1, "MERGE")]
    assert history[1].operationMetrics["numTargetRowsUpdated"] == "1"
    assert history[1].operationMetrics["numTargetRowsInserted"] == "1"
