"""The engine's in-Python replay (transforms.merge.fold, used for primary-key changes and SCD2)
against the oracle's truth, on random histories. Pure Python."""

from __future__ import annotations

from hypothesis import given, settings

from tests.reference_model import (
    Change,
    LiveRow,
    fold_in_source_order,
    history_columns,
    source_histories,
    versions_in_source_order,
)
from transforms.merge.fold import FoldChange, final_states, versions_of


def as_fold_change(change: Change) -> FoldChange:
    return FoldChange(change.key, change.seq, change.kind, change.present, change.old_key, change.commit_ts)


@settings(max_examples=1000, deadline=None)
@given(source_histories())
def test_replay_of_a_history_ends_in_its_source_table(history):
    columns = history_columns(history)
    states = final_states(as_fold_change(c) for c in reversed(history))
    live = {
        key: LiveRow(
            {c: s.values.get(c) for c in columns}, tuple(s.incomplete(columns)), s.sequence, s.commit_ts
        )
        for key, s in states.items()
        if s.alive
    }
    assert live == fold_in_source_order(history)


@settings(max_examples=1000, deadline=None)
@given(source_histories())
def test_replayed_versions_are_the_states_between_changes(history):
    columns = history_columns(history)
    versions = versions_of([as_fold_change(c) for c in history + history[:3]], columns)
    replayed = sorted(
        (key, start, end, start_ts, end_ts, {c: values.get(c) for c in columns}, tuple(incomplete))
        for key, start, end, start_ts, end_ts, _, incomplete, values in versions
    )
    truth = sorted(
        (v.key, v.valid_from_seq, v.valid_to_seq, v.valid_from_ts, v.valid_to_ts, v.values, v.incomplete)
        for v in versions_in_source_order(history)
    )
    assert replayed == truth
