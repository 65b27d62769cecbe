"""Issue 18: source column names with SQL's special characters (tests/hostile_names.py) go through
decoding, bronze rows, the merge and schema drift like any other name, and silver holds the rows the
source held, column by column; a table made without column mapping gets it when such a name arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from delta.tables import DeltaTable

from tests.hostile_names import (
    BACKSLASH,
    BACKTICK,
    BATCHES,
    COMMA,
    DOT,
    KEY,
    LATE,
    LONG,
    QUOTE,
    SPACE,
    SPEC,
    UNICODE,
    expected_rows,
    gg,
    live_rows,
)
from tests.merge.conftest import new_table_path
from transforms.bronze_rows import BRONZE_SCHEMA, to_bronze_row
from transforms.changes import KafkaMessage
from transforms.decoders import decode_for_spec
from transforms.delta_commits import progress_metadata, replace_table
from transforms.gold.engine import changed_silver_rows
from transforms.merge import apply_changes, read_history
from transforms.merge.layout import silver_column
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration


def bronze_frame(spark, values: list[bytes], first_offset: int, spec: TableSpec = SPEC):
    now = datetime.now(UTC)
    rows = []
    for offset, value in enumerate(values, start=first_offset):
        message = KafkaMessage(topic=spec.topic, partition=0, offset=offset, key=None, value=value)
        rows.extend(to_bronze_row(change, now) for change in decode_for_spec(message, spec))
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def apply_batches(spark, path: str, history: str) -> list:
    stats, offset = [], 0
    for batch in BATCHES:
        frame = bronze_frame(spark, batch, offset)
        stats.append(
            apply_changes(spark, frame, path, keys=SPEC.keys, column_types=SPEC.columns, history=history)
        )
        offset += len(batch)
    return stats


@pytest.mark.parametrize("history", ["scd1", "scd2"])
def test_hostile_column_names_merge_column_by_column(spark, tmp_lake, history):
    path = new_table_path(tmp_lake)
    stats = apply_batches(spark, path, history)

    assert stats[-1].new_columns == (silver_column(LATE),)
    expected = expected_rows()
    actual = live_rows(spark, path)
    assert sorted(actual) == sorted(expected)
    for key, row in expected.items():
        assert sorted(actual[key]) == sorted(row)
        for column, value in row.items():
            assert actual[key][column] == value, (key, column)
    if history == "scd2":
        # two inserts, five updates that each change the row's state
        assert len(read_history(spark, path).collect()) == 2 + 5


def test_change_data_feed_of_a_hostile_table_gives_gold_the_changed_rows(spark, tmp_lake):
    path = new_table_path(tmp_lake)
    stats = apply_batches(spark, path, "scd1")

    last = stats[-1].table_version
    changed = changed_silver_rows(spark, path, last, last)
    posts = {r[silver_column(KEY)]: r for r in changed.where("_change_type = 'update_postimage'").collect()}
    expected = expected_rows()
    assert sorted(posts) == sorted(expected)
    for key, row in expected.items():
        for column, value in row.items():
            assert posts[key][column] == value, (key, column)


def column_mapping_mode(spark, path: str) -> str:
    properties = DeltaTable.forPath(spark, path).detail().collect()[0]["properties"]
    return properties.get("delta.columnMapping.mode", "none")


def test_a_table_made_without_column_mapping_gets_it_when_a_column_first_needs_it(spark, tmp_lake):
    path, spec = new_table_path(tmp_lake), SPEC.model_copy(update={"keys": ["ROW_ID"], "columns": {}})
    # names Delta takes without column mapping: the table stays as the previous version made it
    plain = [DOT, BACKSLASH, QUOTE, UNICODE, LONG, BACKTICK]
    insert = gg("I", 1, {"ROW_ID": "1", **{c: f"1:{c}" for c in plain}})
    first = apply_changes(spark, bronze_frame(spark, [insert], 0, spec), path, keys=spec.keys)
    assert column_mapping_mode(spark, path) == "none"

    second_batch = [
        gg("U", 3, {"ROW_ID": "1", SPACE: "x", DOT: "3"}),
        gg("I", 2, {"ROW_ID": "2", COMMA: "z"}),
    ]
    second = apply_changes(spark, bronze_frame(spark, second_batch, 1, spec), path, keys=spec.keys)
    assert column_mapping_mode(spark, path) == "name"
    third = apply_changes(
        spark, bronze_frame(spark, [gg("U", 4, {"ROW_ID": "2", SPACE: "w"})], 3, spec), path, keys=spec.keys
    )

    assert second.new_columns == tuple(sorted([SPACE, COMMA]))
    one = {"ROW_ID": "1", **{silver_column(c): f"1:{c}" for c in plain}, SPACE: "x", DOT: "3", COMMA: None}
    two = {"ROW_ID": "2", **{silver_column(c): None for c in plain}, SPACE: "w", COMMA: "z"}
    assert live_rows(spark, path, "ROW_ID") == {"1": one, "2": two}
    # gold reads the change data feed across the upgrade: the rows as inserted and updated since the first batch
    changed = changed_silver_rows(spark, path, first.table_version + 1, third.table_version)
    images = [r.asDict() for r in changed.where("_change_type != 'update_preimage'").collect()]
    assert len(images) == 3
    by_change = {(r["ROW_ID"], r[SPACE]): {c: r[c] for c in one} for r in images}
    assert by_change == {("1", "x"): one, ("2", "w"): two, ("2", None): {**two, SPACE: None}}


def test_a_rebuilt_table_with_hostile_names_replaces_the_live_one(spark, tmp_lake):
    # what the silver rebuild does: build beside the live table from all of bronze, then replace it
    live, rebuilt = new_table_path(tmp_lake), new_table_path(tmp_lake)
    apply_changes(spark, bronze_frame(spark, BATCHES[0], 0), live, keys=SPEC.keys, column_types=SPEC.columns)
    everything = [value for batch in BATCHES for value in batch]
    apply_changes(
        spark, bronze_frame(spark, everything, 0), rebuilt, keys=SPEC.keys, column_types=SPEC.columns
    )

    missing = new_table_path(tmp_lake)  # a live table that was removed
    for target in (live, missing):
        replace_table(spark, rebuilt, target, progress_metadata("silver", rebuilt=True))

        assert column_mapping_mode(spark, target) == "name"
        assert live_rows(spark, target) == expected_rows()
