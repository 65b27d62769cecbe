"""Changes of a few keys applied in source order, one at a time: the exact answer, in plain Python.

The SCD1 engine uses it for keys linked by a primary-key change (their state depends on another key's
history, see transforms.merge.scd1); the SCD2 engine for every key it rebuilds. The input is the
complete change history of the keys (the change log) and the table's truncates.

The state of a key carries the same cell metadata silver stores, so a folded row can be written next
to rows kept by the cell rule:
- `col_seq`: the sequence that set each column after the last full image or delete;
- `image_seq` / `image_op`: the last full image ('image') or delete ('delete'); a truncate is a delete
  of every key, a primary-key change a delete of the old key;
- `sequence` / `commit_ts`: the newest change that touched the key.
A key moved by a primary-key change (old_key -> key) starts from the old key's state (values and cell
metadata) overlaid with the change's present columns, unless the change is a full image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

IMAGE, UPDATE, DELETE, TRUNCATE = "image", "update", "delete", "truncate"


@dataclass(frozen=True)
class FoldChange:
    key: str
    seq: str
    kind: str  # image | update | delete | truncate
    cols: dict[str, str | None]  # present non-key columns (empty for delete and truncate)
    old_key: str | None
    commit_ts: datetime | None
    content: str = ""  # decides between two different changes with the same key and sequence


@dataclass
class KeyState:
    values: dict[str, str | None] = field(default_factory=dict)
    col_seq: dict[str, str] = field(default_factory=dict)
    image_seq: str | None = None
    image_op: str | None = None
    alive: bool = False
    sequence: str = ""
    commit_ts: datetime | None = None

    def incomplete(self, columns: Iterable[str]) -> list[str]:
        if not self.alive or self.image_op == IMAGE:
            return []
        return sorted(c for c in columns if c not in self.col_seq)

    def copy(self) -> KeyState:
        return replace(self, values=dict(self.values), col_seq=dict(self.col_seq))


@dataclass(frozen=True)
class Step:
    change: FoldChange
    touched: list[str]  # keys whose state this change set (in this order)
    states: dict[str, KeyState]  # the live table after the change (do not keep: it is mutated)


def unique_in_order(changes: Iterable[FoldChange]) -> list[FoldChange]:
    """One change per (key, sequence) — the greatest content when two differ — sorted by sequence."""
    chosen: dict[tuple[str, str], FoldChange] = {}
    for change in changes:
        identity = (change.key, change.seq)
        if identity not in chosen or change.content > chosen[identity].content:
            chosen[identity] = change
    return sorted(chosen.values(), key=lambda c: (c.seq, c.key))


def replay(changes: Iterable[FoldChange]) -> Iterator[Step]:
    states: dict[str, KeyState] = {}
    for change in unique_in_order(changes):
        touched = _apply(states, change)
        yield Step(change, touched, states)


def final_states(changes: Iterable[FoldChange]) -> dict[str, KeyState]:
    """Every key's state after the whole history (dead keys included, alive=False)."""
    states: dict[str, KeyState] = {}
    for step in replay(changes):
        states = step.states
    return states


def _apply(states: dict[str, KeyState], change: FoldChange) -> list[str]:
    if change.kind == TRUNCATE:
        for state in states.values():
            _barrier(state, change, DELETE)
        return list(states)
    if change.kind == DELETE:
        _barrier(states.setdefault(change.key, KeyState()), change, DELETE)
        return [change.key]
    touched = [change.key]
    if change.old_key is not None and change.old_key != change.key:
        old = states.setdefault(change.old_key, KeyState())
        start = old.copy()
        _barrier(old, change, DELETE)
        touched.append(change.old_key)
        if change.kind == UPDATE:
            states[change.key] = start
    state = states.setdefault(change.key, KeyState())
    if change.kind == IMAGE:
        _barrier(state, change, IMAGE)
    else:
        if not state.alive:
            state.values = {}
            state.col_seq = {}
        state.values.update(change.cols)
        state.col_seq.update(dict.fromkeys(change.cols, change.seq))
        state.alive = True
        state.sequence, state.commit_ts = change.seq, change.commit_ts
    return touched


def _barrier(state: KeyState, change: FoldChange, op: str) -> None:
    state.values = dict(change.cols) if op == IMAGE else {}
    state.col_seq = {}
    state.image_seq, state.image_op = change.seq, op
    state.alive = op == IMAGE
    state.sequence, state.commit_ts = change.seq, change.commit_ts


def versions_of(changes: Iterable[FoldChange], columns: list[str]) -> list[tuple]:
    """SCD2 versions of every key in a history, as tuples (key, valid_from_seq, valid_to_seq,
    valid_from_ts, valid_to_ts, is_current, incomplete, values).

    A version is a distinct state of the key: it opens at a change that leaves the key alive in a state
    other than the one it had just before, and closes at the key's next change that alters or ends that
    state. A change that leaves the state as it was (the same values and the same unknown columns)
    opens no version; since the whole history is replayed, it still splits a run of equal states at the
    right place when a late change lands inside the run."""
    opened: dict[str, tuple] = {}
    versions: list[tuple] = []

    def close(key: str, end: FoldChange | None) -> None:
        start_seq, start_ts, values, incomplete = opened.pop(key)
        end_seq, end_ts = (end.seq, end.commit_ts) if end else (None, None)
        versions.append((key, start_seq, end_seq, start_ts, end_ts, end is None, incomplete, values))

    for step in replay(changes):
        for key in step.touched:
            state = step.states[key]
            if key in opened:
                if state.alive and _same_state(opened[key], state, columns):
                    continue  # the open version goes on
                close(key, step.change)
            if state.alive:
                opened[key] = (
                    step.change.seq,
                    step.change.commit_ts,
                    dict(state.values),
                    state.incomplete(columns),
                )
    for key in list(opened):
        close(key, None)
    return versions


def _same_state(version: tuple, state: KeyState, columns: list[str]) -> bool:
    """What a reader sees is the same: every column's value (absent reads as null) and the unknown ones."""
    _, _, values, incomplete = version
    return incomplete == state.incomplete(columns) and all(
        values.get(c) == state.values.get(c) for c in {*columns, *values, *state.values}
    )


def from_row(row) -> FoldChange:
    """A change-log row (transforms.merge.change_log) as a FoldChange."""
    return FoldChange(
        key=row["_key"],
        seq=row["_sequence"],
        kind=row["_kind"],
        cols=dict(row["_cols"] or {}),
        old_key=row["_old_key"],
        commit_ts=row["_commit_ts"],
        content=row["_content"],
    )


def versions_of_rows(
    group: tuple[str, Iterable], truncates: list[FoldChange], columns: list[str]
) -> list[tuple]:
    """versions_of for one (component, change-log rows) group of an RDD; runs on the executors, so this
    module imports nothing but the standard library."""
    _, rows = group
    return versions_of([from_row(r) for r in rows] + truncates, columns)
