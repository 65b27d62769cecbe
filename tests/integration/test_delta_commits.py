"""Progress recorded in Delta commits, read back from the commit log without a Spark job
(transforms.delta_commits), checked against Delta's own history of the same table."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable

from transforms.delta_commits import commit_info, current_version, latest_progress, progress_metadata

pytestmark = pytest.mark.integration


def _append(spark, path: str, metadata: str | None = None) -> None:
    writer = spark.range(2).write.format("delta").mode("append")
    if metadata is not None:
        writer = writer.option("userMetadata", metadata)
    writer.save(path)


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory) -> str:
    """23 commits (past Delta's checkpoint at 10 and 20): stage `a` every 5th, `b` the others, and a
    last commit of nobody's."""
    path = str(tmp_path_factory.mktemp("commits") / "t")
    for number in range(22):
        _append(spark, path, progress_metadata("a" if number % 5 == 0 else "b", number=number))
    _append(spark, path)
    return path


def test_current_version_is_deltas_newest_version_past_the_checkpoints(spark, table):
    newest = DeltaTable.forPath(spark, table).history(1).collect()[0]["version"]
    assert newest == 22
    assert current_version(spark, table) == newest


def test_latest_progress_is_the_newest_commit_of_the_stage(spark, table):
    assert latest_progress(spark, table, "a") == {"stage": "a", "number": 20}
    assert latest_progress(spark, table, "b") == {"stage": "b", "number": 21}


def test_latest_progress_as_of_a_version(spark, table):
    assert latest_progress(spark, table, "a", at_or_before=14) == {"stage": "a", "number": 10}
    assert latest_progress(spark, table, "b", at_or_before=0) is None
    assert latest_progress(spark, table, "a", at_or_before=0) == {"stage": "a", "number": 0}


def test_a_stage_that_never_committed_and_a_missing_table_have_no_progress(spark, table, tmp_lake):
    assert latest_progress(spark, table, "c") is None
    assert latest_progress(spark, str(tmp_lake / "missing"), "a") is None
    assert current_version(spark, str(tmp_lake / "missing")) is None


def test_commit_info_matches_deltas_history(spark, table):
    history = {row["version"]: row for row in DeltaTable.forPath(spark, table).history().collect()}
    for version in (0, 10, 22):
        info = commit_info(spark, table, version)
        assert info["operation"] == history[version]["operation"]
        assert info.get("userMetadata") == history[version]["userMetadata"]
    assert commit_info(spark, table, 99) is None
