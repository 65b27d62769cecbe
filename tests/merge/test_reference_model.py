"""The oracle checked against the plain truth (pure Python, many examples).

The cell-rule model, fed any delivery of a history (shuffled, split into batches, duplicated,
replayed), ends where the history folded one change at a time in source order ends; and the SCD2 truth
is consistent with the SCD1 truth (the current versions are the live rows) and its versions are distinct
states (docs/DESIGN.md: a change that leaves the row as it was opens no version).
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference_model import (
    DELETE,
    IMAGE,
    CellModel,
    Change,
    deliveries,
    fold_in_source_order,
    key_json,
    sequence_at,
    source_histories,
    time_at,
    versions_in_source_order,
)


@st.composite
def history_and_delivery(draw):
    history = draw(source_histories())
    return history, draw(deliveries(history))


@settings(max_examples=2000, deadline=None)
@given(history_and_delivery())
def test_cell_model_fed_any_delivery_equals_the_history_folded_in_source_order(case):
    history, batches = case
    model = CellModel()
    for batch in batches:
        model.apply(batch)
    assert model.live_rows() == fold_in_source_order(history)


@settings(max_examples=500, deadline=None)
@given(source_histories())
def test_current_versions_of_the_history_are_its_final_rows(history):
    final = fold_in_source_order(history)
    current = {v.key: v for v in versions_in_source_order(history) if v.is_current}
    assert set(current) == set(final)
    for key, version in current.items():
        assert (version.values, version.incomplete) == (final[key].values, final[key].incomplete)
        assert version.valid_from_seq <= final[key].sequence  # a run of equal states starts at its first


@settings(max_examples=500, deadline=None)
@given(source_histories())
def test_adjacent_versions_of_a_key_are_distinct_states(history):
    versions = versions_in_source_order(history)
    for before, after in itertools.pairwise(versions):
        if before.key == after.key and before.valid_to_seq == after.valid_from_seq:
            assert (before.values, before.incomplete) != (after.values, after.incomplete)


def _names(versions) -> list[tuple]:
    position = {sequence_at(p): p for p in range(1, 30)} | {None: None}
    return [(v.values["NAME"], position[v.valid_from_seq], position[v.valid_to_seq]) for v in versions]


def _name_change(position: int, kind: str, name: str | None = None) -> Change:
    cols = None if kind == DELETE else {"NAME": name}
    return Change(key_json({"ID": "1"}), sequence_at(position), kind, cols, commit_ts=time_at(position))


def test_a_change_that_leaves_the_row_as_it_was_opens_no_version():
    history = [
        _name_change(p, IMAGE, name)
        for p, name in ((5, "Alice"), (10, "Alice"), (15, "Alice"), (20, "Charlie"))
    ]
    assert _names(versions_in_source_order(history)) == [("Alice", 5, 20), ("Charlie", 20, None)]

    late_bob = _name_change(
        12, IMAGE, "Bob"
    )  # lands inside the run of Alices: it splits it where the source did
    assert _names(versions_in_source_order([*history, late_bob])) == [
        ("Alice", 5, 12),
        ("Bob", 12, 15),
        ("Alice", 15, 20),
        ("Charlie", 20, None),
    ]


def test_a_delete_ends_a_run_of_equal_states_and_a_reinsert_opens_a_new_version():
    history = [
        _name_change(10, IMAGE, "Alice"),
        _name_change(11, IMAGE, "Alice"),
        _name_change(12, DELETE),
        _name_change(20, IMAGE, "Bob"),
    ]
    assert _names(versions_in_source_order(history)) == [("Alice", 10, 12), ("Bob", 20, None)]
