"""The simulated source database: the TRUE current rows of every table, and the row changes it made.

Every mutation returns a RowChange (full images before and after, and which columns the statement
set); the capture side turns those into CDC messages. A RowChange is format independent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class RowChange:
    """One row operation (or a truncate) as the database performed it.

    op: "I" insert, "U" update (possibly of the key), "D" delete, "T" truncate.
    old_row / new_row: full rows before / after (None where the op has none).
    changed: the columns the UPDATE statement set, in order (includes the key on a key change).
    """

    table: str
    op: str
    old_row: Row | None = None
    new_row: Row | None = None
    changed: tuple[str, ...] = ()


class TableRows:
    """One table's rows by key, with O(1) uniform random choice of an existing key."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self._keys: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, key: str, row: Row) -> None:
        if key in self.rows:
            raise KeyError(f"duplicate key {key}")
        self.rows[key] = row
        self._index[key] = len(self._keys)
        self._keys.append(key)

    def remove(self, key: str) -> Row:
        row = self.rows.pop(key)
        position = self._index.pop(key)
        last = self._keys.pop()
        if last != key:
            self._keys[position] = last
            self._index[last] = position
        return row

    def choice(self, rng: random.Random) -> str | None:
        return rng.choice(self._keys) if self._keys else None


class SourceDatabase:
    def __init__(self, tables: dict[str, str]) -> None:
        """tables: table name -> its key column."""
        self.key_columns = dict(tables)
        self.tables = {name: TableRows() for name in tables}

    def get(self, table: str, key: str) -> Row:
        return self.tables[table].rows[key]

    def insert(self, table: str, row: Row) -> RowChange:
        self.tables[table].add(row[self.key_columns[table]], dict(row))
        return RowChange(table, "I", new_row=dict(row))

    def update(self, table: str, key: str, changes: Row) -> RowChange:
        """Set the given columns; a change of the key column moves the row to the new key."""
        rows = self.tables[table]
        old = rows.remove(key)
        new = {**old, **changes}
        rows.add(new[self.key_columns[table]], new)
        return RowChange(table, "U", old_row=dict(old), new_row=dict(new), changed=tuple(changes))

    def delete(self, table: str, key: str) -> RowChange:
        old = self.tables[table].remove(key)
        return RowChange(table, "D", old_row=dict(old))

    def truncate(self, table: str) -> tuple[RowChange, list[Row]]:
        """Empty the table; also returns the rows it held (in insertion order of their keys)."""
        rows = list(self.tables[table].rows.values())
        self.tables[table] = TableRows()
        return RowChange(table, "T"), rows

    def state(self) -> dict[str, dict[str, Row]]:
        return {
            name: {key: dict(row) for key, row in rows.rows.items()} for name, rows in self.tables.items()
        }


def apply_change(state: dict[str, dict[str, Row]], change: RowChange, key_columns: dict[str, str]) -> None:
    """Apply a RowChange's full images to a {table: {key: row}} state (used to rebuild past states)."""
    rows = state.setdefault(change.table, {})
    key = key_columns[change.table]
    if change.op == "T":
        rows.clear()
    elif change.op == "D":
        rows.pop(change.old_row[key], None)
    else:
        if change.old_row is not None:
            rows.pop(change.old_row[key], None)
        rows[change.new_row[key]] = dict(change.new_row)
