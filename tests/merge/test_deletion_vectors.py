"""A silver table starts without deletion vectors and gets them once it holds
transforms.deletion_vectors.DELETION_VECTORS_FROM_BYTES of data (that module says why); the rows are
the same either way, and the table's size and properties are read from Delta's checksum file, or from
DESCRIBE DETAIL without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from delta.tables import DeltaTable

from tests.reference_model import IMAGE, UPDATE, Change, LiveRow, key_json, sequence_at, time_at
from transforms import deletion_vectors
from transforms.delta_commits import current_version, table_size_and_properties

pytestmark = pytest.mark.integration


def _image(key: str, position: int, value: str) -> Change:
    return Change(
        key_json({"ID": key}), sequence_at(position), IMAGE, {"A": value}, commit_ts=time_at(position)
    )


def _update(key: str, position: int, value: str) -> Change:
    return Change(
        key_json({"ID": key}), sequence_at(position), UPDATE, {"A": value}, commit_ts=time_at(position)
    )


def _detail(spark, path: str) -> tuple[int, dict[str, str]]:
    detail = DeltaTable.forPath(spark, path).detail().collect()[0]
    return int(detail["sizeInBytes"]), dict(detail["properties"])


def test_a_small_table_has_no_deletion_vectors_and_a_big_one_gets_them_with_the_same_rows(
    spark, silver, monkeypatch
):
    silver.apply([_image(str(k), k, f"a{k}") for k in range(1, 21)])
    silver.apply([_update("1", 30, "b1")])
    size, properties = table_size_and_properties(spark, silver.path)
    assert properties[deletion_vectors.DELETION_VECTORS] == "false"
    assert 0 < size < deletion_vectors.DELETION_VECTORS_FROM_BYTES
    commits_before = current_version(spark, silver.path)

    monkeypatch.setattr(deletion_vectors, "DELETION_VECTORS_FROM_BYTES", size)  # "big" from now on
    silver.apply([_update("2", 31, "b2")])
    _, properties = table_size_and_properties(spark, silver.path)
    assert properties[deletion_vectors.DELETION_VECTORS] == "true"
    # the switch (a commit without data) and the batch's change log append and silver commit
    assert current_version(spark, silver.path) == commits_before + 2
    silver.apply([_update("3", 32, "b3")])
    assert current_version(spark, silver.path) == commits_before + 3  # once only

    expected = {f"a{k}" for k in range(4, 21)} | {"b1", "b2", "b3"}
    live = silver.live_rows()
    assert {row.values["A"] for row in live.values()} == expected
    assert live[key_json({"ID": "3"})] == LiveRow({"A": "b3"}, (), sequence_at(32), time_at(32))


def test_size_and_properties_come_from_the_checksum_and_without_it_from_describe_detail(spark, silver):
    silver.apply([_image(str(k), k, f"a{k}") for k in range(1, 6)])
    from_checksum = table_size_and_properties(spark, silver.path)
    assert from_checksum == _detail(spark, silver.path)

    checksum = Path(silver.path) / "_delta_log" / f"{current_version(spark, silver.path):020d}.crc"
    checksum.unlink()
    assert table_size_and_properties(spark, silver.path) == from_checksum
