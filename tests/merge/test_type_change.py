"""A column's declared type changes in the spec (transforms/merge/type_change.py): a widening is applied
to the stored column in place before the batch, so a value of the wider type arrives whole; anything
else is refused before any write. Delta refuses to read a change data feed across a type change, so
gold, which reads silver's feed, finds it unreadable once and recomputes the entity in full (saying
so); the feed from the widening on reads as usual."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable

from tests.merge.conftest import Silver, new_table_path
from tests.merge.test_scd1_rules import change
from tests.reference_model import IMAGE, UPDATE
from transforms.gold.engine import changed_silver_rows
from transforms.merge import MergeError, read_live_rows

BEYOND_INT = 3_000_000_000


def live(spark, path: str) -> tuple[dict[str, str], dict]:
    frame = read_live_rows(spark, path)
    return dict(frame.dtypes), {r["ID"]: r.asDict() for r in frame.collect()}


def version(spark, path: str) -> int:
    return DeltaTable.forPath(spark, path).history(1).collect()[0]["version"]


def test_int_to_long_and_a_wider_decimal_are_applied_in_place(spark, tmp_lake):
    path = new_table_path(tmp_lake)
    before = Silver(spark, path, column_types={"ID": "long", "QTY": "int", "AMT": "decimal(10,2)"})
    before.apply([change(1, IMAGE, 1, {"QTY": "5", "AMT": "12.50"}), change(2, IMAGE, 2, {"QTY": "7"})])
    last_narrow = version(spark, path)

    after = Silver(spark, path, column_types={"ID": "long", "QTY": "long", "AMT": "decimal(14,4)"})
    stats = after.apply([change(3, UPDATE, 2, {"QTY": str(BEYOND_INT), "AMT": "1234567890.1234"})])

    types, rows = live(spark, path)
    assert (types["QTY"], types["AMT"]) == ("bigint", "decimal(14,4)")
    assert (rows[1]["QTY"], str(rows[1]["AMT"])) == (5, "12.5000")  # stored before: read widened
    assert (rows[2]["QTY"], str(rows[2]["AMT"])) == (BEYOND_INT, "1234567890.1234")
    assert stats.values_not_castable == 0
    with pytest.raises(Exception, match="DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE"):
        changed_silver_rows(spark, path, last_narrow + 1, version(spark, path)).collect()
    merged = version(spark, path)  # the batch's commit, after the widening's metadata commits
    feed = changed_silver_rows(spark, path, merged, merged).collect()
    assert {(r["ID"], r["QTY"], r["_change_type"]) for r in feed} == {
        (2, 7, "update_preimage"),
        (2, BEYOND_INT, "update_postimage"),
    }


def test_a_change_that_is_not_a_widening_is_refused_before_any_write_and_a_removed_hint_keeps_the_type(
    spark, tmp_lake
):
    path = new_table_path(tmp_lake)
    first = {"ID": "long", "A": "long", "B": "decimal(10,2)", "C": "timestamp"}
    Silver(spark, path, column_types=first).apply(
        [change(1, IMAGE, 1, {"A": "1", "B": "1.5", "C": "2024-01-02 03:04:05", "D": "text"})]
    )
    last = version(spark, path)

    for column, stored, then in [
        ("A", "bigint", "int"),
        ("B", "decimal(10,2)", "decimal(10,4)"),
        ("C", "timestamp", "date"),
        ("D", "string", "long"),
    ]:
        with pytest.raises(MergeError) as refused:
            Silver(spark, path, column_types={**first, column: then}).apply(
                [change(2, UPDATE, 1, {"A": "2"})]
            )
        message = str(refused.value)
        assert f"column {column!r} is stored as {stored}, and the spec now declares {then}" in message
        assert "rebuild the table from bronze" in message
        assert version(spark, path) == last

    Silver(spark, path, column_types={"ID": "long"}).apply([change(2, UPDATE, 1, {"A": "2"})])
    types, rows = live(spark, path)
    assert (types["A"], types["B"], rows[1]["A"]) == ("bigint", "decimal(10,2)", 2)
