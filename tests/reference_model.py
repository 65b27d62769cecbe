"""The oracle for the silver merge: the plain truth, a small cell-rule model, and random source histories.

Three pure-Python pieces, used only by tests:

- `fold_in_source_order` / `versions_in_source_order`: the TRUTH. Sort a history by source sequence and
  apply it one change at a time, the way the source database did. This is the definition of the right
  answer (docs/DESIGN.md "Semantics the merge must get right"); it cannot be fed out of order.
- `CellModel`: the same rules the Spark engine implements, as a dict of rows with per-column
  sequences, fed batch by batch in ARRIVAL order (any order, duplicates, replays). A test checks it
  against the truth on many random deliveries; the Spark engine is then checked against both.
- `source_histories`: a hypothesis strategy of valid source histories (inserts, partial updates with
  explicit nulls, full-image updates, deletes, re-inserts, truncates, primary-key changes, a column that
  appears late, rows that existed before capture started), and `deliveries` that shuffle, split,
  duplicate and replay them.

A change is a `Change`; `to_bronze_row` turns it into a BRONZE_SCHEMA row for the Spark engine.
Values are text or None; ABSENT (not a key of `cols`) and NULL (None) are different.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from transforms.sequence import encode_sequence

TRUNCATE_KEY = "{}"
IMAGE, UPDATE, DELETE, TRUNCATE = "image", "update", "delete", "truncate"


def key_json(key_values: dict[str, str]) -> str:
    return json.dumps(key_values, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Change:
    """One source change. `key` is the canonical JSON of the key columns ('{}' for a truncate).

    kind: image (insert or full after image), update (partial: only `cols` present), delete, truncate.
    old_key: set on a primary-key change (the row moves from old_key to key).
    """

    key: str
    seq: str
    kind: str
    cols: dict[str, str | None] | None = None
    old_key: str | None = None
    commit_ts: datetime | None = None

    @property
    def present(self) -> dict[str, str | None]:
        return dict(self.cols or {})


@dataclass(frozen=True)
class LiveRow:
    """What a reader sees of one live row (every column of the table, incomplete as a sorted tuple)."""

    values: dict[str, str | None]
    incomplete: tuple[str, ...]
    sequence: str
    commit_ts: datetime | None


@dataclass(frozen=True)
class Version:
    key: str
    valid_from_seq: str
    valid_to_seq: str | None
    valid_from_ts: datetime | None
    valid_to_ts: datetime | None
    values: dict[str, str | None]
    incomplete: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        return self.valid_to_seq is None


def history_columns(changes: Iterable[Change], declared: Iterable[str] = ()) -> list[str]:
    """Every non-key column any change carries (plus the declared ones), sorted."""
    columns = set(declared)
    for change in changes:
        columns.update(change.present)
    return sorted(columns)


def unique_changes(changes: Iterable[Change]) -> list[Change]:
    """Drop repeated deliveries (same key and sequence) and sort by sequence."""
    by_identity = {(c.key, c.seq): c for c in changes}
    return sorted(by_identity.values(), key=lambda c: (c.seq, c.key))


# ---------------------------------------------------------------------------------------------------
# The truth: one change at a time, in source order.


@dataclass
class _SourceRow:
    values: dict[str, str | None]
    known: set[str]
    complete: bool
    sequence: str
    commit_ts: datetime | None

    def copy(self) -> _SourceRow:
        return _SourceRow(dict(self.values), set(self.known), self.complete, self.sequence, self.commit_ts)


def _source_step(rows: dict[str, _SourceRow], change: Change) -> list[str]:
    """Apply one change to the source table; return the keys whose row it touched."""
    if change.kind == TRUNCATE:
        touched = list(rows)
        rows.clear()
        return touched
    if change.kind == DELETE:
        rows.pop(change.key, None)
        return [change.key]
    touched = [change.key]
    base: _SourceRow | None
    if change.old_key is not None and change.old_key != change.key:
        base = rows.pop(change.old_key, None)
        touched.append(change.old_key)
    else:
        base = rows.get(change.key)
    if change.kind == IMAGE:
        row = _SourceRow(change.present, set(change.present), True, change.seq, change.commit_ts)
    else:
        row = base.copy() if base is not None else _SourceRow({}, set(), False, change.seq, change.commit_ts)
        row.values.update(change.present)
        row.known.update(change.present)
    row.sequence, row.commit_ts = change.seq, change.commit_ts
    rows[change.key] = row
    return touched


def _live(row: _SourceRow, columns: list[str]) -> LiveRow:
    values = {c: row.values.get(c) for c in columns}
    incomplete = () if row.complete else tuple(c for c in columns if c not in row.known)
    return LiveRow(values, incomplete, row.sequence, row.commit_ts)


def fold_in_source_order(changes: Iterable[Change], declared: Iterable[str] = ()) -> dict[str, LiveRow]:
    """The source table after the whole history (SCD1 truth): key -> live row."""
    history = unique_changes(changes)
    columns = history_columns(history, declared)
    rows: dict[str, _SourceRow] = {}
    for change in history:
        _source_step(rows, change)
    return {key: _live(row, columns) for key, row in rows.items()}


def versions_in_source_order(changes: Iterable[Change], declared: Iterable[str] = ()) -> list[Version]:
    """Every state every key went through (SCD2 truth): a version per distinct state, from the change that
    set it to the change that altered or ended it; a change that leaves the row as it was opens none."""
    history = unique_changes(changes)
    columns = history_columns(history, declared)
    rows: dict[str, _SourceRow] = {}
    open_versions: dict[str, tuple[Change, _SourceRow]] = {}
    closed: list[Version] = []

    def close(key: str, end: Change | None) -> None:
        start, row = open_versions.pop(key)
        live = _live(row, columns)
        closed.append(
            Version(
                key,
                start.seq,
                end.seq if end else None,
                start.commit_ts,
                end.commit_ts if end else None,
                live.values,
                live.incomplete,
            )
        )

    def same_state(key: str) -> bool:
        before, now = _live(open_versions[key][1], columns), _live(rows[key], columns)
        return (before.values, before.incomplete) == (now.values, now.incomplete)

    for change in history:
        for key in _source_step(rows, change):
            if key in open_versions:
                if key in rows and same_state(key):
                    continue  # a change that leaves the row as it was opens no version
                close(key, change)
            if key in rows:
                open_versions[key] = (change, rows[key].copy())
    for key in list(open_versions):
        close(key, None)
    return sorted(closed, key=lambda v: (v.key, v.valid_from_seq))


# ---------------------------------------------------------------------------------------------------
# The cell-rule model: what the engine does, in arrival order.


@dataclass
class _CellRow:
    values: dict[str, str | None] = field(default_factory=dict)
    col_seq: dict[str, str] = field(default_factory=dict)  # columns set after image_seq
    image_seq: str | None = None  # newest full image or delete
    image_op: str | None = None  # IMAGE or DELETE
    sequence: str = ""
    commit_ts: datetime | None = None

    def cell_seq(self, column: str) -> str | None:
        return self.col_seq.get(column, self.image_seq)

    @property
    def deleted(self) -> bool:
        return self.image_op == DELETE and self.sequence == self.image_seq

    def barrier(self, seq: str, op: str, image: dict[str, str | None], columns: set[str]) -> None:
        if self.image_seq is not None and seq <= self.image_seq:
            return
        for column in columns | set(self.values) | set(image):
            if column in self.col_seq and self.col_seq[column] > seq:
                continue
            self.values[column] = image.get(column) if op == IMAGE else None
            self.col_seq.pop(column, None)
        self.image_seq, self.image_op = seq, op

    def set_cells(self, seq: str, cells: dict[str, str | None]) -> None:
        for column, value in cells.items():
            current = self.cell_seq(column)
            if current is None or seq > current:
                self.values[column] = value
                self.col_seq[column] = seq

    def touch(self, seq: str, commit_ts: datetime | None) -> None:
        if seq > self.sequence:
            self.sequence, self.commit_ts = seq, commit_ts


class CellModel:
    """Silver as the engine keeps it: per-column last-writer-wins by sequence, tombstones, a truncate
    barrier, and keys touched by a primary-key change rebuilt from the change log they came with.

    Feed it batches in any order with `apply`; read it with `live_rows`.
    """

    def __init__(self, declared: Iterable[str] = ()) -> None:
        self.rows: dict[str, _CellRow] = {}
        self.linked: dict[str, LiveRow | None] = {}  # key -> rebuilt row (None: not alive)
        self.truncated_at: str | None = None
        self.columns: set[str] = set(declared)
        self.log: dict[tuple[str, str], Change] = {}

    def apply(self, batch: Iterable[Change]) -> None:
        batch = list(batch)
        for change in batch:
            self.columns.update(change.present)
            self.log.setdefault((change.key, change.seq), change)
        for change in batch:
            if change.kind == TRUNCATE:
                self._truncate(change.seq)
        for change in batch:
            if change.kind == TRUNCATE or (self.truncated_at and change.seq < self.truncated_at):
                continue
            if change.old_key is not None and change.old_key != change.key:
                self.linked.setdefault(change.old_key, None)
                self.linked.setdefault(change.key, None)
            if change.key not in self.linked:
                self._apply_cells(change)
        self._rebuild_linked()

    def _apply_cells(self, change: Change) -> None:
        row = self.rows.setdefault(change.key, _CellRow())
        if change.kind in (IMAGE, DELETE):
            row.barrier(change.seq, change.kind, change.present, self.columns)
        else:
            row.set_cells(change.seq, change.present)
        row.touch(change.seq, change.commit_ts)

    def _truncate(self, seq: str) -> None:
        if self.truncated_at is not None and seq <= self.truncated_at:
            return
        self.truncated_at = seq
        for key, row in list(self.rows.items()):
            if row.sequence < seq:
                del self.rows[key]
            else:
                row.barrier(seq, DELETE, {}, self.columns)

    def _rebuild_linked(self) -> None:
        """Linked keys (a primary-key change touched them) are the fold of their component's log."""
        edges = {(c.old_key, c.key) for c in self.log.values() if c.old_key and c.old_key != c.key}
        for key in edges_closure(set(self.linked), edges):
            self.linked.setdefault(key, None)
            self.rows.pop(key, None)
        keys = set(self.linked)
        component_log = [
            c for c in self.log.values() if c.key in keys or c.old_key in keys or c.kind == TRUNCATE
        ]
        rebuilt = fold_in_source_order(component_log, self.columns)
        for key in keys:
            self.linked[key] = rebuilt.get(key)

    def live_rows(self) -> dict[str, LiveRow]:
        columns = sorted(self.columns)
        result = {key: row for key, row in self.linked.items() if row is not None}
        for key, row in self.rows.items():
            if row.deleted:
                continue
            values = {c: row.values.get(c) for c in columns}
            incomplete = () if row.image_op == IMAGE else tuple(c for c in columns if c not in row.col_seq)
            result[key] = LiveRow(values, incomplete, row.sequence, row.commit_ts)
        return result


def edges_closure(seeds: set[str], edges: set[tuple[str, str]]) -> set[str]:
    """Every key connected to a seed through primary-key changes."""
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen, todo = set(seeds), list(seeds)
    while todo:
        for other in neighbours.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


# ---------------------------------------------------------------------------------------------------
# Random source histories and deliveries.

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC).replace(tzinfo=None)
VALUES = st.sampled_from(["a", "b", "c", "", None])


def sequence_at(position: int) -> str:
    return encode_sequence((position, position))


def time_at(position: int) -> datetime:
    return BASE_TIME + timedelta(seconds=position)


@st.composite
def source_histories(
    draw,
    keys: int = 4,
    columns: tuple[str, ...] = ("A", "B", "C"),
    late_column: str = "D",
    max_changes: int = 14,
    allow_truncate: bool = True,
    allow_pk_change: bool = True,
) -> list[Change]:
    """A valid history of a source table keyed by column `ID`: what the database really did."""
    ids = [str(i) for i in range(1, keys + 1)]
    alive: dict[str, bool] = {}
    pre_capture = set(draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)))
    current_columns = list(columns)
    history: list[Change] = []
    steps = draw(st.integers(min_value=1, max_value=max_changes))
    for position in range(1, steps + 1):
        if late_column and late_column not in current_columns and draw(st.integers(0, 5)) == 0:
            current_columns.append(late_column)
        seq, ts = sequence_at(position), time_at(position)
        existing = [k for k in ids if alive.get(k) or (k in pre_capture and k not in alive)]
        free = [k for k in ids if k not in existing]
        choices = ["insert"] if free else []
        if free:
            choices.append("update_unseen")  # a partial update whose insert the capture never saw
        if existing:
            choices += ["update", "update", "full_update", "delete"]
            if allow_pk_change and free:
                choices.append("pk_change")
        if allow_truncate:
            choices.append("truncate")
        action = draw(st.sampled_from(choices))
        if action == "insert":
            key = draw(st.sampled_from(free))
            image = {c: draw(VALUES) for c in current_columns}
            history.append(Change(key_json({"ID": key}), seq, IMAGE, image, commit_ts=ts))
            alive[key] = True
        elif action in ("update", "full_update", "update_unseen"):
            key = draw(st.sampled_from(free if action == "update_unseen" else existing))
            if action == "full_update":
                cols = {c: draw(VALUES) for c in current_columns}
                history.append(Change(key_json({"ID": key}), seq, IMAGE, cols, commit_ts=ts))
            else:
                chosen = draw(st.lists(st.sampled_from(current_columns), unique=True))
                cols = {c: draw(VALUES) for c in chosen}
                history.append(Change(key_json({"ID": key}), seq, UPDATE, cols, commit_ts=ts))
            alive[key] = True
        elif action == "delete":
            key = draw(st.sampled_from(existing))
            history.append(Change(key_json({"ID": key}), seq, DELETE, commit_ts=ts))
            alive[key] = False
        elif action == "pk_change":
            old, new = draw(st.sampled_from(existing)), draw(st.sampled_from(free))
            chosen = draw(st.lists(st.sampled_from(current_columns), unique=True))
            cols = {c: draw(VALUES) for c in chosen}
            history.append(
                Change(key_json({"ID": new}), seq, UPDATE, cols, old_key=key_json({"ID": old}), commit_ts=ts)
            )
            alive[old], alive[new] = False, True
        else:
            history.append(Change(TRUNCATE_KEY, seq, TRUNCATE, commit_ts=ts))
            for key in ids:
                alive[key] = False
    return history


@st.composite
def deliveries(draw, history: list[Change], max_batches: int = 4) -> list[list[Change]]:
    """The history shuffled, split into batches, with duplicated changes and a replayed batch."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    shuffled = list(history)
    rng.shuffle(shuffled)
    count = draw(st.integers(1, max(1, min(max_batches, len(shuffled)))))
    cuts = sorted(rng.sample(range(1, len(shuffled)), count - 1)) if len(shuffled) > 1 and count > 1 else []
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    if draw(st.booleans()):
        batches[rng.randrange(len(batches))].extend(rng.sample(shuffled, k=min(2, len(shuffled))))
    if draw(st.booleans()):
        batches.append(list(rng.choice(batches)))
    return batches


def to_bronze_row(
    change: Change, *, key_columns: tuple[str, ...] = ("ID",), offset: int | None = None
) -> tuple:
    """The change as a BRONZE_SCHEMA row, as a decoder would write it (key columns also in `after`)."""
    key = json.loads(change.key)
    if change.kind == TRUNCATE:
        op, after, full = "truncate", None, False
    elif change.kind == DELETE:
        op, after, full = "delete", None, False
    elif change.kind == IMAGE and change.old_key is None:
        op, after, full = "insert", {**key, **change.present}, True
    else:
        op, after, full = "update", {**key, **change.present}, change.kind == IMAGE
    ts = change.commit_ts
    return (
        "SRC.T",
        op,
        change.key,
        change.old_key,
        None,
        json.dumps(after, sort_keys=True, separators=(",", ":")) if after is not None else None,
        full,
        change.seq,
        ts,
        None,
        "topic",
        0,
        offset if offset is not None else int(change.seq.rsplit(".", 1)[-1][2:]),
        ts,
        None,
        (ts or BASE_TIME).date(),
        ts or BASE_TIME,
    )
