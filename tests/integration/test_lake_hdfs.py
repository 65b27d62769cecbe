"""Delta on HDFS against a real local NameNode and DataNode: the lake beyond local files."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from resources.lake_check import PROBE_PREFIX
from tests.integration.lake_scenarios import (
    DELTA_RS_MERGED,
    MERGED,
    ORIGINAL,
    append_same_txn_version_twice,
    delta_rs_merge_then_spark_reads,
    progress_after_two_stages,
    write_then_merge,
)

pytestmark = pytest.mark.integration


def _table(lake, name: str) -> str:
    return lake.table_path("tables", f"{name}_{uuid.uuid4().hex[:8]}")


def _hdfs_listing(hdfs_stack, hdfs_path: str) -> list[str]:
    """The names in an HDFS folder, asked of the NameNode over WebHDFS (not through Spark)."""
    folder = hdfs_path.removeprefix(hdfs_stack.hdfs_uri)
    url = f"{hdfs_stack.server('hdfs').web_url}/webhdfs/v1{folder}?op=LISTSTATUS"
    with urllib.request.urlopen(url, timeout=10) as response:
        statuses = json.loads(response.read())["FileStatuses"]["FileStatus"]
    return sorted(status["pathSuffix"] for status in statuses)


def test_delta_on_hdfs_writes_merges_time_travels_and_keeps_history(spark, hdfs_lake, hdfs_stack):
    path = _table(hdfs_lake, "customer")

    result = write_then_merge(spark, path)

    assert result["current"] == MERGED
    assert result["version_0"] == ORIGINAL
    assert result["operations"] == [(0, "WRITE"), (1, "MERGE")]
    assert result["merge_metrics"] == {"numTargetRowsUpdated": "1", "numTargetRowsInserted": "1"}
    log = _hdfs_listing(hdfs_stack, f"{path}/_delta_log")
    assert {"00000000000000000000.json", "00000000000000000001.json"} <= set(log)


def test_repeated_txn_version_on_hdfs_is_skipped(spark, hdfs_lake):
    path = _table(hdfs_lake, "bronze")

    result = append_same_txn_version_twice(spark, path)

    assert result["rows"] == ORIGINAL
    assert result["operations"] == [(0, "WRITE")]


def test_latest_progress_on_hdfs_finds_the_stage_commit(spark, hdfs_lake):
    path = _table(hdfs_lake, "progress")

    progress = progress_after_two_stages(spark, path)

    assert progress == {"stage": "bronze", "offsets": {"crm.S_CONTACT": {"0": 42}}}


def test_reachable_hdfs_lake_passes_the_preflight_and_keeps_no_probe(spark, hdfs_lake, hdfs_stack):
    hdfs_lake.check_reachable(spark)

    assert not [name for name in _hdfs_listing(hdfs_stack, hdfs_lake.root) if name.startswith(PROBE_PREFIX)]


def test_delta_rs_merges_a_few_keys_on_hdfs_and_spark_reads_its_commit(spark, hdfs_lake):
    path = _table(hdfs_lake, "gold")

    result = delta_rs_merge_then_spark_reads(spark, path)

    assert {key: result[key] for key in DELTA_RS_MERGED} == DELTA_RS_MERGED
    # the commit has no checksum file: delta-rs reads the size and properties DESCRIBE DETAIL gives
    assert result["size_and_properties"] == result["detail"]
