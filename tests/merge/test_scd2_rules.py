"""SCD2 silver: the versions of a key are its distinct states in source order."""

from __future__ import annotations

import pytest

from tests.merge.conftest import Silver, new_table_path
from tests.reference_model import (
    DELETE,
    IMAGE,
    TRUNCATE,
    TRUNCATE_KEY,
    UPDATE,
    Change,
    key_json,
    sequence_at,
    time_at,
    versions_in_source_order,
)
from transforms.merge import read_as_of, read_live_rows

pytestmark = pytest.mark.integration


def key(n: int) -> str:
    return key_json({"ID": str(n)})


def change(position: int, kind: str, n: int, cols: dict | None = None, old: int | None = None) -> Change:
    return Change(key(n), sequence_at(position), kind, cols, key(old) if old else None, time_at(position))


def spans(versions) -> list[tuple]:
    return [(v.key, v.valid_from_seq, v.valid_to_seq, v.values) for v in versions]


def test_scd2_versions_are_the_states_between_changes(silver_scd2):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, UPDATE, 1, {"A": "a2"}),
        change(3, UPDATE, 1, {"B": None}),
    ]
    stats = silver_scd2.apply(history)

    versions = silver_scd2.versions()
    assert spans(versions) == [
        (key(1), sequence_at(1), sequence_at(2), {"A": "a", "B": "b"}),
        (key(1), sequence_at(2), sequence_at(3), {"A": "a2", "B": "b"}),
        (key(1), sequence_at(3), None, {"A": "a2", "B": None}),
    ]
    assert [v.valid_from_ts for v in versions] == [time_at(1), time_at(2), time_at(3)]
    assert [v.valid_to_ts for v in versions] == [time_at(2), time_at(3), None]
    assert versions == versions_in_source_order(history)
    assert stats.rows_inserted == 3


def test_scd2_late_change_is_slotted_in_and_later_versions_are_recomputed(silver_scd2):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(3, UPDATE, 1, {"B": "late"}),
        change(5, UPDATE, 1, {"A": "a5"}),
    ]
    silver_scd2.apply([history[0], history[2]])
    stats = silver_scd2.apply([history[1]])

    assert spans(silver_scd2.versions()) == [
        (key(1), sequence_at(1), sequence_at(3), {"A": "a", "B": "b"}),
        (key(1), sequence_at(3), sequence_at(5), {"A": "a", "B": "late"}),
        (key(1), sequence_at(5), None, {"A": "a5", "B": "late"}),  # the late B is carried forward
    ]
    assert (stats.rows_inserted, stats.rows_updated, stats.rows_removed) == (1, 2, 0)


def test_scd2_delete_closes_the_last_version(silver_scd2):
    history = [change(1, IMAGE, 1, {"A": "a"}), change(2, DELETE, 1), change(4, IMAGE, 1, {"A": "again"})]
    silver_scd2.apply(history[:2])
    assert [(v.valid_to_seq, v.is_current) for v in silver_scd2.versions()] == [(sequence_at(2), False)]

    silver_scd2.apply(history[2:])
    assert silver_scd2.versions() == versions_in_source_order(history)
    assert [v.is_current for v in silver_scd2.versions()] == [False, True]


def test_scd2_late_delete_removes_the_versions_it_ends(silver_scd2):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, DELETE, 1),
        change(3, UPDATE, 1, {"A": "revived"}),
    ]
    silver_scd2.apply([history[0], history[2]])
    stats = silver_scd2.apply([history[1]])

    versions = silver_scd2.versions()
    assert versions == versions_in_source_order(history)
    assert [(v.valid_from_seq, v.values, v.incomplete) for v in versions] == [
        (sequence_at(1), {"A": "a", "B": "b"}, ()),
        (sequence_at(3), {"A": "revived", "B": None}, ("B",)),  # after the delete B is unknown
    ]
    assert stats.rows_updated == 2 and stats.incomplete_rows == 1


def test_scd2_truncate_closes_every_current_version(silver_scd2):
    history = [
        change(1, IMAGE, 1, {"A": "a"}),
        change(2, IMAGE, 2, {"A": "b"}),
        Change(TRUNCATE_KEY, sequence_at(3), TRUNCATE, commit_ts=time_at(3)),
    ]
    silver_scd2.apply(history[:2])
    silver_scd2.apply(history[2:])

    assert [(v.key, v.valid_to_seq) for v in silver_scd2.versions()] == [
        (key(1), sequence_at(3)),
        (key(2), sequence_at(3)),
    ]


def test_scd2_primary_key_change_closes_the_old_key_and_continues_under_the_new(silver_scd2):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, UPDATE, 1, {"B": "late"}),
        change(3, UPDATE, 2, {"A": "moved"}, old=1),
    ]
    silver_scd2.apply([history[0], history[2]])
    silver_scd2.apply([history[1]])

    versions = silver_scd2.versions()
    assert versions == versions_in_source_order(history)
    assert spans(versions)[-1] == (key(2), sequence_at(3), None, {"A": "moved", "B": "late"})


def test_scd2_live_rows_are_the_current_versions(spark, silver_scd2):
    silver_scd2.apply(
        [
            change(1, IMAGE, 1, {"A": "a"}),
            change(2, UPDATE, 1, {"A": "b"}),
            change(3, IMAGE, 2, {"A": "c"}),
            change(4, DELETE, 2),
        ]
    )

    rows = read_live_rows(spark, silver_scd2.path).collect()
    assert [(r["ID"], r["A"], r["_sequence"]) for r in rows] == [("1", "b", sequence_at(2))]


POSITION = {sequence_at(p): p for p in range(1, 30)} | {None: None}


def names(versions) -> list[tuple]:
    return [(v.values["NAME"], POSITION[v.valid_from_seq], POSITION[v.valid_to_seq]) for v in versions]


def name_change(position: int, kind: str, name: str | None = None) -> Change:
    return change(position, kind, 1, None if kind == DELETE else {"NAME": name})


def test_scd2_a_late_change_splits_a_run_of_equal_states_where_the_source_did(spark, silver_scd2):
    """NAME=Alice at 5, 10 and 15 (the same value three times), Charlie at 20; Bob at 12 arrives last."""
    history = [
        name_change(p, IMAGE, name)
        for p, name in ((5, "Alice"), (10, "Alice"), (15, "Alice"), (20, "Charlie"))
    ]
    silver_scd2.apply(history)
    assert names(silver_scd2.versions()) == [("Alice", 5, 20), ("Charlie", 20, None)]

    stats = silver_scd2.apply([name_change(12, IMAGE, "Bob")])

    versions = silver_scd2.versions()
    assert names(versions) == [("Alice", 5, 12), ("Bob", 12, 15), ("Alice", 15, 20), ("Charlie", 20, None)]
    assert versions == versions_in_source_order([*history, name_change(12, IMAGE, "Bob")])
    assert (stats.rows_inserted, stats.rows_updated, stats.rows_removed) == (2, 1, 0)  # Alice@5 ends at 12


def test_scd2_repeated_states_and_a_delete_give_one_version_each(silver_scd2):
    history = [
        name_change(10, IMAGE, "Alice"),
        name_change(11, IMAGE, "Alice"),
        name_change(12, DELETE),
        name_change(20, IMAGE, "Bob"),
    ]
    silver_scd2.apply(history[::-1])  # newest first

    assert names(silver_scd2.versions()) == [("Alice", 10, 12), ("Bob", 20, None)]


def test_scd2_a_partial_update_that_changes_nothing_opens_no_version_and_writes_no_change(spark, tmp_lake):
    silver_scd2 = Silver(
        spark, new_table_path(tmp_lake), history="scd2", column_types={"NAME": "string", "EMAIL": "string"}
    )
    silver_scd2.apply(
        [
            change(1, UPDATE, 1, {"NAME": "Alice"}),  # an update of a row capture never saw: EMAIL unknown
            change(2, UPDATE, 1, {"NAME": "Alice"}),
        ]
    )
    assert [
        (POSITION[v.valid_from_seq], POSITION[v.valid_to_seq], v.incomplete) for v in silver_scd2.versions()
    ] == [(1, None, ("EMAIL",))]
    silver_scd2.apply([change(3, UPDATE, 1, {"EMAIL": None})])  # EMAIL is now known to be null: a new state
    silver_scd2.apply(
        [change(4, IMAGE, 1, {"NAME": "Alice", "EMAIL": None})]
    )  # a full image of the same state

    stats = silver_scd2.apply([change(5, UPDATE, 1, {"EMAIL": None, "NAME": "Alice"})])

    versions = silver_scd2.versions()
    assert [(POSITION[v.valid_from_seq], POSITION[v.valid_to_seq], v.incomplete) for v in versions] == [
        (1, 3, ("EMAIL",)),
        (3, None, ()),
    ]
    assert (stats.rows_inserted, stats.rows_updated, stats.rows_removed) == (0, 0, 0)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", stats.table_version)
        .option("endingVersion", stats.table_version)
        .load(silver_scd2.path)
        .where(f"_key <> '{TRUNCATE_KEY}'")
    )
    assert feed.count() == 0  # the table's own bookkeeping row aside, the change feed holds no version change


def test_scd2_a_column_that_appears_is_unknown_in_every_version_never_fully_imaged(silver_scd2):
    # Found by test_merge_properties: key 2's version knew every column the table had then (A), so its
    # `_incomplete` was empty and the column B that came later was not added to it.
    history = [
        change(1, UPDATE, 2, {"A": "x"}),
        change(2, UPDATE, 2, {"A": "y"}),
        change(3, IMAGE, 1, {"A": "a", "B": "b"}),
    ]
    silver_scd2.apply(history[:2])
    assert [v.incomplete for v in silver_scd2.versions()] == [(), ()]  # A is the only column known so far

    stats = silver_scd2.apply(history[2:])

    versions = silver_scd2.versions()
    assert [(v.key, POSITION[v.valid_from_seq], v.incomplete) for v in versions] == [
        (key(1), 3, ()),
        (key(2), 1, ("B",)),
        (key(2), 2, ("B",)),
    ]
    assert versions == versions_in_source_order(history)
    assert stats.new_columns == ("B",)


def test_scd2_rows_as_of_a_moment_are_the_versions_valid_then(silver_scd2):
    """read_as_of (`cdc-lakehouse show --as-of`): the state the source held at a commit time, a late
    change included; a key deleted before the moment, or inserted after it, has no row."""
    history = [
        change(1, IMAGE, 1, {"A": "a"}),
        change(2, IMAGE, 2, {"A": "x"}),
        change(5, UPDATE, 1, {"A": "a5"}),
        change(6, DELETE, 2),
        change(8, IMAGE, 3, {"A": "new"}),
    ]
    silver_scd2.apply(history[:2] + history[3:])
    silver_scd2.apply([history[2]])  # late

    def as_of(position: int) -> dict[str, str]:
        rows = read_as_of(silver_scd2.spark, silver_scd2.path, time_at(position))
        return {row["ID"]: row["A"] for row in rows.collect()}

    assert as_of(0) == {}
    assert as_of(1) == {"1": "a"}  # a version is valid from its own commit time
    assert as_of(4) == {"1": "a", "2": "x"}
    assert as_of(5) == {"1": "a5", "2": "x"}
    assert as_of(7) == {"1": "a5"}
    assert as_of(9) == {"1": "a5", "3": "new"}
