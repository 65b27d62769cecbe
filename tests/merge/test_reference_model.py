"""The oracle checked against the plain truth (pure Python, many examples).

The cell-rule model, fed any delivery of a history (shuffled, split into batches, duplicated,
replayed), ends where the history folded one change at a time in source order ends; and the SCD2 truth
is consistent with the SCD1 truth (the current versions are the live rows).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference_model import (
    CellModel,
    deliveries,
    fold_in_source_order,
    source_histories,
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
        assert (version.values, version.incomplete, version.valid_from_seq) == (
            final[key].values,
            final[key].incomplete,
            final[key].sequence,
        )
