"""reflected_position's source time: the newest source commit time applied to any of the silver tables
(tombstones included), read from Delta's file statistics where it can and from the rows where it
cannot (a table with deletion vectors), the same either way."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.reference_model import DELETE, IMAGE, UPDATE, Change, key_json, sequence_at, time_at
from transforms import deletion_vectors
from transforms.delta_commits import progress_metadata
from transforms.source_position import TablePaths, reflected_position

pytestmark = pytest.mark.integration

SILVER_PROGRESS = progress_metadata("silver", bronze_version=0, cut=None)


def _micros(naive: datetime) -> int:
    """As pyspark stores a naive datetime (TimestampType.toInternal: the process's local time)."""
    return int(time.mktime(naive.timetuple())) * 1_000_000 + naive.microsecond


def _change(kind: str, key: str, position: int, value: str | None = None) -> Change:
    columns = None if kind == DELETE else {"A": value}
    return Change(key_json({"ID": key}), sequence_at(position), kind, columns, commit_ts=time_at(position))


def _paths(silver, tmp_path: Path) -> dict[str, TablePaths]:
    return {"t": TablePaths("crm.T", str(tmp_path / "no-bronze"), silver.path)}


def test_the_newest_commit_time_counts_a_tombstone_and_tables_with_deletion_vectors(
    spark, silver, tmp_path, monkeypatch
):
    silver.apply([_change(IMAGE, str(k), k, f"a{k}") for k in range(1, 6)], SILVER_PROGRESS)
    silver.apply([_change(DELETE, "2", 40), _change(UPDATE, "3", 30, "b3")], SILVER_PROGRESS)
    position = reflected_position(spark, _paths(silver, tmp_path))
    assert position.as_of_us == _micros(time_at(40))  # the delete's, kept by its tombstone

    monkeypatch.setattr(deletion_vectors, "DELETION_VECTORS_FROM_BYTES", 0)  # vectors from the next batch
    silver.apply([_change(UPDATE, "4", 50, "b4")], SILVER_PROGRESS)
    silver.apply([_change(UPDATE, "4", 45, "c4"), _change(UPDATE, "5", 60, "b5")], SILVER_PROGRESS)
    position = reflected_position(spark, _paths(silver, tmp_path))
    assert position.as_of_us == _micros(time_at(60))
    assert position.kafka_offsets == {}  # no bronze table: no offsets to record


def test_a_silver_table_without_a_silver_commit_reflects_nothing(spark, silver, tmp_path):
    silver.apply([_change(IMAGE, "1", 1, "a1")])  # no progress record: not written by silver's asset

    position = reflected_position(spark, _paths(silver, tmp_path))

    assert position.as_of_us is None and position.kafka_offsets == {}
