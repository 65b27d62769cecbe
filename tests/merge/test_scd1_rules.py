"""SCD1 silver, one test per rule of docs/DESIGN.md "Semantics the merge must get right (silver)".

Each test applies small batches to a real Delta table and compares what readers see with what the
source table held after the same changes in source order (tests.reference_model.fold_in_source_order),
plus the facts the rule names.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.reference_model import (
    DELETE,
    IMAGE,
    TRUNCATE,
    TRUNCATE_KEY,
    UPDATE,
    Change,
    fold_in_source_order,
    key_json,
    sequence_at,
    time_at,
)
from transforms.delta_commits import latest_progress, progress_metadata
from transforms.merge import MergeError, read_history, read_live_rows

pytestmark = pytest.mark.integration


def key(n: int) -> str:
    return key_json({"ID": str(n)})


def change(position: int, kind: str, n: int, cols: dict | None = None, old: int | None = None) -> Change:
    return Change(key(n), sequence_at(position), kind, cols, key(old) if old else None, time_at(position))


def truncate(position: int) -> Change:
    return Change(TRUNCATE_KEY, sequence_at(position), TRUNCATE, commit_ts=time_at(position))


def values(silver, n: int) -> dict:
    return silver.live_rows()[key(n)].values


def test_absent_column_is_untouched_and_null_is_a_value(silver):
    insert = change(1, IMAGE, 1, {"A": "a", "B": "b", "C": "c"})
    update = change(2, UPDATE, 1, {"A": None})  # A present as null; B and C absent
    silver.apply([insert])
    silver.apply([update])

    assert values(silver, 1) == {"A": None, "B": "b", "C": "c"}
    assert silver.live_rows() == fold_in_source_order([insert, update])


def test_insert_sets_every_column_and_a_full_image_nulls_the_columns_it_lacks(silver):
    insert = change(1, IMAGE, 1, {"A": "a", "B": "b"})
    full_update = change(2, IMAGE, 1, {"A": "a2"})  # a full after image without B: B is null now
    silver.apply([insert])
    silver.apply([full_update])

    assert values(silver, 1) == {"A": "a2", "B": None}
    assert silver.live_rows()[key(1)].incomplete == ()


def test_each_column_is_last_writer_wins_by_source_sequence(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a1", "B": "b1"}),
        change(2, UPDATE, 1, {"A": "a2"}),
        change(3, UPDATE, 1, {"B": "b3"}),
        change(4, UPDATE, 1, {"A": "a4"}),
    ]
    silver.apply([history[0], history[3]])
    silver.apply([history[2]])
    stats = silver.apply([history[1]])  # older than the stored A: changes nothing

    assert values(silver, 1) == {"A": "a4", "B": "b3"}
    assert stats.rows_updated == 0 and stats.keys_without_effect == 1
    assert silver.live_rows() == fold_in_source_order(history)


def test_changes_of_a_key_within_one_batch_fold_in_sequence_order(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a1", "B": "b1"}),
        change(2, UPDATE, 1, {"A": "a2"}),
        change(3, UPDATE, 1, {"A": "a3", "B": None}),
        change(4, DELETE, 2),
        change(5, IMAGE, 2, {"A": "x"}),
    ]
    silver.apply(list(reversed(history)))

    assert silver.live_rows() == fold_in_source_order(history)
    assert values(silver, 1) == {"A": "a3", "B": None}


def test_delete_removes_the_row_and_keeps_a_tombstone(silver):
    silver.apply([change(1, IMAGE, 1, {"A": "a"}), change(2, IMAGE, 2, {"A": "b"})])
    stats = silver.apply([change(3, DELETE, 1)])

    assert set(silver.live_rows()) == {key(2)}
    tombstone = silver.stored()[key(1)]
    assert (
        tombstone["_deleted"]
        and tombstone["_image_op"] == "delete"
        and tombstone["_image_seq"] == sequence_at(3)
    )
    assert tombstone["A"] is None
    assert stats.rows_deleted == 1


def test_older_change_after_delete_does_not_resurrect_key(silver):
    silver.apply([change(1, IMAGE, 1, {"A": "a"}), change(3, DELETE, 1)])
    stats = silver.apply([change(2, UPDATE, 1, {"A": "late"}), change(1, IMAGE, 1, {"A": "a"})])

    assert silver.live_rows() == {}
    assert stats.rows_updated == 0 and stats.rows_inserted == 0


def test_delete_arriving_first_blocks_its_older_insert(silver):
    silver.apply([change(3, DELETE, 1)])
    silver.apply([change(1, IMAGE, 1, {"A": "a"})])

    assert silver.live_rows() == {}


def test_change_newer_than_delete_reinserts_or_revives_the_key_incomplete(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, DELETE, 1),
        change(3, UPDATE, 1, {"A": "again"}),  # a partial update after the delete: B is unknown
        change(4, IMAGE, 2, {"A": "x", "B": "y"}),
        change(5, DELETE, 2),
        change(6, IMAGE, 2, {"A": "re-inserted"}),
    ]
    silver.apply([history[2], history[5]])
    silver.apply([history[0], history[1], history[3], history[4]])

    rows = silver.live_rows()
    assert rows == fold_in_source_order(history)
    assert rows[key(1)].values == {"A": "again", "B": None} and rows[key(1)].incomplete == ("B",)
    assert rows[key(2)].values == {"A": "re-inserted", "B": None} and rows[key(2)].incomplete == ()


def test_change_older_than_the_last_full_image_changes_nothing(silver):
    silver.apply([change(5, IMAGE, 1, {"A": "image", "B": "image"})])
    stats = silver.apply(
        [change(4, UPDATE, 1, {"A": "older"}), change(3, IMAGE, 1, {"A": "older", "B": "older"})]
    )

    assert values(silver, 1) == {"A": "image", "B": "image"}
    assert stats.rows_updated == 0


def test_duplicates_and_replays_are_no_ops(silver):
    batch = [
        change(1, IMAGE, 1, {"A": "a"}),
        change(2, UPDATE, 1, {"A": "b"}),
        change(3, IMAGE, 2, {"A": "c"}),
    ]
    first = silver.apply(batch + batch[:2])
    before = silver.stored()
    replay = silver.apply(batch)

    assert first.duplicates == 2
    assert replay.rows_inserted == 0 and replay.rows_updated == 0 and replay.keys_without_effect == 2
    after = silver.stored()
    assert {k: v for k, v in after.items() if k != TRUNCATE_KEY} == {
        k: v for k, v in before.items() if k != TRUNCATE_KEY
    }


def test_update_before_insert_completes_row(silver):
    update = change(5, UPDATE, 1, {"A": "new"})
    insert = change(2, IMAGE, 1, {"A": "old", "B": "b", "C": None})
    silver.apply([update])

    row = silver.live_rows()[key(1)]
    assert row.values == {"A": "new"} and row.incomplete == ()  # A is the only column known so far
    stats = silver.apply(
        [change(6, UPDATE, 2, {"A": "x"}), change(7, IMAGE, 3, {"A": "y", "B": "z", "C": "w"})]
    )
    assert silver.live_rows()[key(2)].incomplete == ("B", "C")  # created by a partial update
    assert silver.live_rows()[key(1)].incomplete == ("B", "C")  # B and C appeared: unknown for row 1
    assert stats.incomplete_rows == 2

    silver.apply([insert])  # older than the update: fills only the columns the update did not set
    row = silver.live_rows()[key(1)]
    assert row.values == {"A": "new", "B": "b", "C": None} and row.incomplete == ()


def test_partial_change_carrying_the_missing_columns_completes_the_row(silver):
    silver.apply([change(5, UPDATE, 1, {"A": "a"}), change(1, IMAGE, 2, {"A": "x", "B": "y"})])
    assert silver.live_rows()[key(1)].incomplete == ("B",)

    silver.apply([change(3, UPDATE, 1, {"B": "older but unknown so far"})])
    row = silver.live_rows()[key(1)]
    assert row.values == {"A": "a", "B": "older but unknown so far"} and row.incomplete == ()


def test_primary_key_change_moves_the_row_to_the_new_key(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, UPDATE, 2, {"A": "moved"}, old=1),
    ]
    silver.apply(history[:1])
    stats = silver.apply(history[1:])

    rows = silver.live_rows()
    assert set(rows) == {key(2)}
    assert rows[key(2)].values == {"A": "moved", "B": "b"} and rows[key(2)].incomplete == ()
    assert silver.stored()[key(1)]["_deleted"]
    assert stats.pk_changes == 1 and stats.keys_rebuilt == 2


def test_late_change_of_old_key_older_than_the_move_reaches_the_new_key(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, UPDATE, 1, {"B": "late"}),
        change(3, UPDATE, 2, {"A": "moved"}, old=1),
        change(4, UPDATE, 2, {"A": "after move"}),
    ]
    silver.apply([history[2]])  # the move first: the old row is unknown, the new row incomplete
    assert silver.live_rows()[key(2)].incomplete == ()  # only A is known anywhere yet
    silver.apply([history[3], history[0]])
    silver.apply([history[1]])

    assert silver.live_rows() == fold_in_source_order(history)
    assert values(silver, 2) == {"A": "after move", "B": "late"}


def test_change_of_old_key_newer_than_the_move_re_creates_the_old_key(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a"}),
        change(2, UPDATE, 2, {}, old=1),
        change(3, IMAGE, 1, {"A": "new row 1"}),
    ]
    silver.apply([history[2]])
    silver.apply([history[0], history[1]])

    assert silver.live_rows() == fold_in_source_order(history)
    assert values(silver, 1) == {"A": "new row 1"} and values(silver, 2) == {"A": "a"}


def test_truncate_removes_every_row_and_column_older_than_it(silver):
    history = [
        change(1, IMAGE, 1, {"A": "a", "B": "b"}),
        change(2, IMAGE, 2, {"A": "x", "B": "y"}),
        truncate(3),
        change(4, UPDATE, 1, {"A": "after"}),
    ]
    silver.apply([history[0], history[1], history[3]])
    stats = silver.apply([history[2]])

    rows = silver.live_rows()
    assert rows == fold_in_source_order(history)
    assert set(rows) == {key(1)} and rows[key(1)].values == {"A": "after", "B": None}
    assert rows[key(1)].incomplete == ("B",)
    assert stats.truncated and stats.rows_removed == 1


def test_change_older_than_a_truncate_in_a_later_batch_is_ignored(silver):
    silver.apply([truncate(5)])
    stats = silver.apply([change(3, IMAGE, 1, {"A": "before truncate"}), change(6, IMAGE, 2, {"A": "after"})])

    assert set(silver.live_rows()) == {key(2)}
    assert stats.before_truncate == 1
    assert silver.stored()[TRUNCATE_KEY]["_image_seq"] == sequence_at(5)


def test_new_column_appears_as_nullable_column_and_nothing_is_dropped(silver):
    silver.apply([change(1, IMAGE, 1, {"A": "a"}), change(2, UPDATE, 2, {"A": "partial"})])
    stats = silver.apply([change(3, UPDATE, 1, {"NEW": "n"})])

    assert stats.new_columns == ("NEW",)
    rows = silver.live_rows()
    assert rows[key(1)].values == {"A": "a", "NEW": "n"}
    assert rows[key(2)].values == {"A": "partial", "NEW": None}
    assert rows[key(2)].incomplete == ("NEW",)  # row 2 was never imaged: NEW is unknown for it
    silver.apply([change(4, UPDATE, 1, {"A": "b"})])
    assert silver.value_columns() == ["A", "NEW"]


def test_tombstones_older_than_the_retention_are_purged_then_an_older_late_change_recreates_the_key(
    spark, tmp_lake
):
    """The retention is the promise of how late a change may come (README, the promise): within it a
    tombstone keeps an older change from bringing the key back; once purged, it no longer can."""
    from tests.merge.conftest import Silver, new_table_path

    silver = Silver(spark, new_table_path(tmp_lake), retention_hours=1)
    start = time_at(0)
    silver.apply([change(1, IMAGE, 1, {"A": "a"}), change(2, IMAGE, 2, {"A": "b"}), change(3, DELETE, 1)])
    silver.apply([Change(key(2), sequence_at(4), DELETE, commit_ts=start + timedelta(minutes=50))])
    stats = silver.apply(
        [Change(key(3), sequence_at(5), IMAGE, {"A": "c"}, commit_ts=start + timedelta(minutes=70))]
    )

    stored = silver.stored()
    assert stats.tombstones_purged
    assert key(1) not in stored  # deleted at 00:00:03, older than 01:10 minus 1 hour
    assert stored[key(2)]["_deleted"]  # deleted at 00:50: kept
    assert set(silver.live_rows()) == {key(3)}

    # changes older than the deletes arrive late: key 2's tombstone still holds; key 1's was purged
    silver.apply([change(2, UPDATE, 1, {"A": "late"}), change(3, UPDATE, 2, {"A": "late"})])
    rows = silver.live_rows()
    assert set(rows) == {key(1), key(3)}
    assert rows[key(1)].values == {"A": "late"}


def test_spec_column_types_apply_and_uncastable_values_are_counted(spark, tmp_lake):
    from tests.merge.conftest import Silver, new_table_path

    silver = Silver(
        spark,
        new_table_path(tmp_lake),
        column_types={"ID": "long", "AMOUNT": "decimal(10,2)", "AT": "timestamp"},
    )
    stats = silver.apply(
        [
            change(1, IMAGE, 1, {"AMOUNT": "12.50", "AT": "2024-05-06 07:08:09.123456", "NAME": "x"}),
            change(2, IMAGE, 2, {"AMOUNT": "not a number", "AT": None}),
        ]
    )

    frame = read_live_rows(spark, silver.path)
    types = dict(frame.dtypes)
    assert (types["ID"], types["AMOUNT"], types["AT"], types["NAME"]) == (
        "bigint",
        "decimal(10,2)",
        "timestamp",
        "string",
    )
    rows = {r["ID"]: r for r in frame.collect()}
    assert str(rows[1]["AMOUNT"]) == "12.50" and rows[1]["AT"].microsecond == 123456
    assert rows[2]["AMOUNT"] is None
    assert stats.values_not_castable == 1


def test_one_silver_commit_per_batch_records_the_callers_metadata(spark, silver):
    from delta.tables import DeltaTable

    silver.apply(
        [change(1, IMAGE, 1, {"A": "a"})], commit_metadata=progress_metadata("silver", bronze_version=7)
    )
    stats = silver.apply(
        [change(2, UPDATE, 1, {"A": "b"}), change(3, IMAGE, 2, {"A": "c"})],
        commit_metadata=progress_metadata("silver", bronze_version=8),
    )

    history = DeltaTable.forPath(spark, silver.path).history().orderBy("version").collect()
    assert [h["operation"] for h in history] == ["CREATE TABLE", "MERGE", "MERGE"]
    assert stats.table_version == history[-1]["version"]
    assert latest_progress(spark, silver.path, "silver") == {"stage": "silver", "bronze_version": 8}


def test_same_source_position_tie_is_counted(silver):
    first = Change(key(1), "011.015", IMAGE, {"A": "one"}, commit_ts=time_at(1))
    other = Change(key(1), "011.016", IMAGE, {"A": "other"}, commit_ts=time_at(1))
    stats = silver.apply([first, other])

    assert stats.position_ties == 1
    assert values(silver, 1) == {"A": "other"}  # the higher Kafka offset is the later change


def test_live_rows_leave_out_tombstones_and_the_table_row_and_scd1_has_no_versions(spark, silver):
    silver.apply([change(1, IMAGE, 1, {"A": "a"}), change(2, IMAGE, 2, {"A": "b"}), change(3, DELETE, 2)])

    frame = read_live_rows(spark, silver.path)
    assert frame.columns == ["ID", "A", "_incomplete", "_sequence", "_commit_ts"]
    assert [(r["ID"], r["A"]) for r in frame.collect()] == [("1", "a")]
    with pytest.raises(MergeError, match="SCD1"):
        read_history(spark, silver.path)


def test_keys_and_history_kind_must_match_the_stored_table(silver):
    silver.apply([change(1, IMAGE, 1, {"A": "a"})])
    silver.history = "scd2"
    with pytest.raises(MergeError, match="scd2"):
        silver.apply([change(2, IMAGE, 1, {"A": "a"})])
