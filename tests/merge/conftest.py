"""Merge-test fixtures: a silver table in a fresh folder, fed `Change`s, read back in the oracle's terms.

The Spark session (`spark`) and the folder (`tmp_lake`) come from tests/conftest.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.reference_model import Change, LiveRow, Version, to_bronze_row
from transforms.bronze_rows import BRONZE_SCHEMA
from transforms.merge import MergeStats, apply_changes, read_history, read_table

USER_KEY = "ID"


class Silver:
    """One silver table under test: `apply` batches of changes, read `live_rows()` / `versions()`."""

    def __init__(
        self,
        spark,
        path: str,
        *,
        history: str = "scd1",
        column_types: dict[str, str] | None = None,
        retention_hours: float = 168,
    ) -> None:
        self.spark, self.path, self.history = spark, path, history
        self.column_types = column_types
        self.retention_hours = retention_hours

    def bronze(self, changes: list[Change]):
        rows = [to_bronze_row(c) for c in changes]
        return self.spark.createDataFrame(rows, BRONZE_SCHEMA)

    def apply(self, changes: list[Change], commit_metadata: str | None = None) -> MergeStats:
        return apply_changes(
            self.spark,
            self.bronze(changes),
            self.path,
            keys=[USER_KEY],
            column_types=self.column_types,
            history=self.history,
            tombstone_retention_hours=self.retention_hours,
            commit_metadata=commit_metadata,
        )

    def stored(self) -> dict[str, dict]:
        """Every stored row (SCD1: tombstones and the table row too) by `_key`, as dicts."""
        return {r["_key"]: r.asDict(recursive=True) for r in read_table(self.spark, self.path).collect()}

    def value_columns(self) -> list[str]:
        return [
            c for c in read_table(self.spark, self.path).columns if not c.startswith("_") and c != USER_KEY
        ]

    def live_rows(self) -> dict[str, LiveRow]:
        columns = self.value_columns()
        table = read_table(self.spark, self.path).where("NOT _deleted")
        return {
            r["_key"]: LiveRow(
                {c: r[c] for c in columns}, tuple(r["_incomplete"]), r["_sequence"], r["_commit_ts"]
            )
            for r in table.collect()
        }

    def versions(self) -> list[Version]:
        columns = self.value_columns()
        rows = read_history(self.spark, self.path, all_columns=True).collect()
        versions = [
            Version(
                r["_key"],
                r["_valid_from_seq"],
                r["_valid_to_seq"],
                r["_valid_from_ts"],
                r["_valid_to_ts"],
                {c: r[c] for c in columns},
                tuple(r["_incomplete"]),
            )
            for r in rows
        ]
        return sorted(versions, key=lambda v: (v.key, v.valid_from_seq))


def new_table_path(lake: Path) -> str:
    return str(lake / f"silver-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def silver(spark, tmp_lake) -> Silver:
    return Silver(spark, new_table_path(tmp_lake))


@pytest.fixture
def silver_scd2(spark, tmp_lake) -> Silver:
    return Silver(spark, new_table_path(tmp_lake), history="scd2")
