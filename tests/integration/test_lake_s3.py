"""Delta on S3 through s3a, against a real local S3 server (s3proxy): the lake beyond local files."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from delta.tables import DeltaTable

from resources.lake_check import PROBE_PREFIX, explain_lake_error
from tests.integration.lake_scenarios import (
    DELTA_RS_MERGED,
    MERGED,
    ORIGINAL,
    append_same_txn_version_twice,
    append_with_txn,
    delta_rs_merge_then_spark_reads,
    progress_after_two_stages,
    rows,
    write_then_merge,
)

pytestmark = pytest.mark.integration


def _table(lake, name: str) -> str:
    return lake.table_path("tables", f"{name}_{uuid.uuid4().hex[:8]}")


def _objects_under(s3_stack, s3a_path: str) -> list[str]:
    """The object keys the S3 server stores under a path (its filesystem backend: bucket = folder)."""
    bucket, _, prefix = s3a_path.removeprefix("s3a://").partition("/")
    folder = s3_stack.server("s3").data_dir / bucket / prefix
    return sorted(str(item.relative_to(folder)) for item in folder.rglob("*") if item.is_file())


def test_delta_on_s3_writes_merges_time_travels_and_keeps_history(spark, s3_lake, s3_stack):
    path = _table(s3_lake, "customer")

    result = write_then_merge(spark, path)

    assert result["current"] == MERGED
    assert result["version_0"] == ORIGINAL
    assert result["operations"] == [(0, "WRITE"), (1, "MERGE")]
    assert result["merge_metrics"] == {"numTargetRowsUpdated": "1", "numTargetRowsInserted": "1"}
    stored = _objects_under(s3_stack, path)
    assert "_delta_log/00000000000000000001.json" in stored
    assert any(key.endswith(".parquet") for key in stored)


def test_repeated_txn_version_on_s3_is_skipped(spark, s3_lake):
    path = _table(s3_lake, "bronze")

    result = append_same_txn_version_twice(spark, path)

    assert result["rows"] == ORIGINAL
    assert result["operations"] == [(0, "WRITE")]


def test_latest_progress_on_s3_finds_the_stage_commit(spark, s3_lake):
    path = _table(s3_lake, "progress")

    progress = progress_after_two_stages(spark, path)

    assert progress == {"stage": "bronze", "offsets": {"crm.S_CONTACT": {"0": 42}}}


def test_reachable_s3_lake_passes_the_preflight_and_keeps_no_probe(spark, s3_lake, s3_stack):
    s3_lake.check_reachable(spark)

    assert [key for key in _objects_under(s3_stack, s3_lake.root) if PROBE_PREFIX in key] == []


def _wait_for_new_parquet(s3_stack, path: str, known: set[str], writer: threading.Thread) -> bool:
    while writer.is_alive():
        if {key for key in _objects_under(s3_stack, path) if key.endswith(".parquet")} - known:
            return True
        time.sleep(0.05)
    return False


def test_s3_outage_during_an_idempotent_append_fails_clearly_and_the_retry_writes_once(
    spark, s3_lake, s3_stack
):
    path = _table(s3_lake, "outage")
    append_with_txn(spark, path, ORIGINAL, app_id="ingest", version=0)
    before = {key for key in _objects_under(s3_stack, path) if key.endswith(".parquet")}
    # many small tasks: the job stays in flight for a while after its first data file lands
    batch_rows = 480_000
    batch = spark.range(0, batch_rows, 1, 48).selectExpr(
        "CAST(id AS INT) AS id", "concat('name-', id) AS name", "concat('city-', id % 97) AS city"
    )

    def append_batch():
        (
            batch.write.format("delta")
            .mode("append")
            .option("txnAppId", "ingest")
            .option("txnVersion", 1)
            .save(path)
        )

    failure: dict[str, BaseException] = {}

    def attempt():
        try:
            append_batch()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            failure["error"] = error

    writer = threading.Thread(target=attempt)
    writer.start()
    try:
        stopped_mid_write = _wait_for_new_parquet(s3_stack, path, before, writer)
        s3_stack.down()
        writer.join()
    finally:
        s3_stack.up()

    assert stopped_mid_write, "the append finished before the first data file appeared: no outage happened"
    assert "error" in failure, "the append succeeded although the S3 server stopped during it"
    message = explain_lake_error(path, failure["error"], s3_lake.hadoop_settings())
    assert path in message and s3_lake.s3_endpoint in message
    assert "cannot connect to the S3 endpoint" in message
    history = DeltaTable.forPath(spark, path).history().collect()
    assert [(entry.version, entry.operation) for entry in history] == [(0, "WRITE")]

    append_batch()  # the run is retried with the same txnAppId/txnVersion
    append_batch()  # and once more: Delta has recorded the version and skips it

    table = spark.read.format("delta").load(path)
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    assert [(entry.version, entry.operation) for entry in history] == [(0, "WRITE"), (1, "WRITE")]
    assert table.count() == len(ORIGINAL) + batch_rows
    assert table.select("id").distinct().count() == batch_rows  # ids 1 and 2 appear twice, once per batch
    assert rows(table.where("name IN ('ann', 'bob')")) == ORIGINAL


def test_delta_rs_merges_a_few_keys_on_s3_and_spark_reads_its_commit(spark, s3_lake):
    path = _table(s3_lake, "gold")

    result = delta_rs_merge_then_spark_reads(spark, path)

    assert {key: result[key] for key in DELTA_RS_MERGED} == DELTA_RS_MERGED
    # the commit has no checksum file: delta-rs reads the size and properties DESCRIBE DETAIL gives
    assert result["size_and_properties"] == result["detail"]
