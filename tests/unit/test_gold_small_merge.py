"""transforms.gold.small_merge.duplicated_keys: the keys several recomputed rows hold, found in the
collected source before delta-rs writes anything (the MERGE itself runs in the integration tests:
test_gold_incremental.py, test_lake_hdfs.py, test_lake_s3.py)."""

from __future__ import annotations

import pyarrow as pa

from transforms.gold.small_merge import duplicated_keys


def source(keys: list[tuple[str, int]], present: list[bool | None]) -> pa.Table:
    return pa.table(
        {
            "region": [k[0] for k in keys],
            "id": [k[1] for k in keys],
            "present": pa.array(present, pa.bool_()),
        }
    )


def test_no_key_twice_is_no_duplicate():
    rows = source([("eu", 1), ("eu", 2), ("us", 1)], [True, True, True])
    assert duplicated_keys(rows, ["region", "id"], "present") == []


def test_a_key_held_by_two_recomputed_rows_is_found_with_all_its_columns():
    rows = source([("eu", 1), ("eu", 1), ("us", 1)], [True, True, True])
    assert duplicated_keys(rows, ["region", "id"], "present") == [{"region": "eu", "id": 1}]


def test_affected_keys_without_a_row_are_not_rows():
    # a key the SQL no longer returns appears once, unmarked; with a marked row beside it, once only
    rows = source([("eu", 1), ("eu", 1), ("us", 2), ("us", 2)], [None, True, None, None])
    assert duplicated_keys(rows, ["region", "id"], "present") == []


def test_at_most_five_keys_are_shown():
    keys = [("eu", n) for n in range(8) for _ in range(2)]
    found = duplicated_keys(source(keys, [True] * len(keys)), ["region", "id"], "present")
    assert len(found) == 5
    assert all(key["region"] == "eu" and 0 <= key["id"] < 8 for key in found)
