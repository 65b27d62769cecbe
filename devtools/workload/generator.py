"""The CRM workload: business transactions against the simulated source database, captured as CDC.

What a run does (all table knowledge comes from crm_schema.yaml):
1. loads the list of values, then inserts rows (the catalogue's insert transactions) until the
   database holds `initial_rows` rows;
2. runs `changes` business transactions, each chosen by WorkloadConfig.operation_weights:
   - insert: one of the catalogue's insert transactions (e.g. a contact, its extension row, an
     address, an order referencing them and its lines); a PR_*_ID left on the No-Match sentinel is
     set when its target is inserted later in the same transaction;
   - update: 1-3 business columns of a row (explicit NULLs included) plus the row's touch columns
     (LAST_UPD & co.); updating an extension row also touches its parent row in the same transaction;
   - delete: a row and, children first, the rows that cascade from it; other references to it are set
     to NULL (PR_*_ID: back to the No-Match sentinel), all in one transaction;
   - key_change: a new ROW_ID for a row (references follow);
   - truncate_reload: a truncate of the table, then a transaction re-inserting its rows.
With initial_load the capture starts after step 1 (see WorkloadConfig.overlap).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devtools.workload.capture import Capture
from devtools.workload.catalogue import Catalogue, Column, Table, load_catalogue
from devtools.workload.config import WorkloadConfig
from devtools.workload.result import Workload
from devtools.workload.source_db import RowChange, SourceDatabase
from devtools.workload.values import char_padded, plain_value, siebel_row_id

FIRST_ROW_NUMBER = 5 * 36**4  # ROW_IDs start at 1-50000


@dataclass
class _Transaction:
    time: datetime
    changes: list[RowChange] = field(default_factory=list)
    inserted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    deleting: set[tuple[str, str]] = field(default_factory=set)


def generate_workload(config: WorkloadConfig | None = None) -> Workload:
    return WorkloadGenerator(config or WorkloadConfig()).run()


class WorkloadGenerator:
    def __init__(self, config: WorkloadConfig, catalogue: Catalogue | None = None) -> None:
        self.config = config
        self.catalogue = catalogue or load_catalogue(config.catalogue_path)
        self.rng = random.Random(config.seed)
        self.db = SourceDatabase({name: table.key for name, table in self.catalogue.tables.items()})
        self.capture = Capture(self.catalogue, config, self.rng)
        self.clock = config.start_time
        self._row_number = FIRST_ROW_NUMBER
        self._counters: dict[tuple[str, str], int] = defaultdict(int)
        self._line_numbers: dict[tuple[str, Any], int] = defaultdict(int)
        self._sentinel = self.catalogue.no_match_sentinel
        self._referencing = {name: self.catalogue.referencing(name) for name in self.catalogue.tables}
        self._extensions = {name: self.catalogue.extensions(name) for name in self.catalogue.tables}

    # ---- the run -------------------------------------------------------------------------------

    def run(self) -> Workload:
        self.capture.capturing = not self.config.initial_load
        self._load_list_of_values()
        while sum(len(rows) for rows in self.db.tables.values()) < self.config.initial_rows:
            self._insert_transaction()
        self.capture.capturing = True
        changes = self.config.changes
        if self.config.initial_load:
            for _ in range(self.config.overlap):
                self._change_transaction()
            self.clock += timedelta(milliseconds=self.rng.randint(100, 2000))
            self.capture.initial_load(self.db.state(), self.clock)
            changes -= self.config.overlap
        for _ in range(changes):
            self._change_transaction()
        return Workload.from_capture(self.catalogue, self.capture, self.db.state(), ended_at=self.clock)

    def _change_transaction(self) -> None:
        weights = self.config.operation_weights
        operation = self.rng.choices(list(weights), list(weights.values()))[0]
        handlers = {
            "insert": self._insert_transaction,
            "update": self._update_transaction,
            "delete": self._delete_transaction,
            "key_change": self._key_change_transaction,
            "truncate_reload": self._truncate_reload,
        }
        if not handlers[operation]():
            self._insert_transaction()  # nothing to update/delete yet

    def _begin(self) -> _Transaction:
        self.clock += timedelta(milliseconds=self.rng.randint(50, 4000))
        return _Transaction(time=self.clock)

    def _commit(self, tx: _Transaction) -> None:
        self.capture.commit(tx.changes, tx.time)

    # ---- transactions --------------------------------------------------------------------------

    def _load_list_of_values(self) -> None:
        tx = self._begin()
        for entry in self.catalogue.list_of_values.entries():
            self._insert(tx, self.catalogue.list_of_values.table, entry)
        self._commit(tx)

    def _insert_transaction(self) -> bool:
        templates = self.catalogue.workload.inserts
        template = self.rng.choices(templates, [t.weight for t in templates])[0]
        tx = self._begin()
        for table, low, high in template.steps():
            for _ in range(self.rng.randint(low, high)):
                self._insert(tx, table)
        self._commit(tx)
        return True

    def _update_transaction(self) -> bool:
        table, key = self._pick_row(self.catalogue.workload.updates)
        if table is None:
            return False
        row = self.db.get(table.name, key)
        columns = self.rng.sample(
            table.updatable_columns, min(len(table.updatable_columns), self.rng.randint(1, 3))
        )
        tx = self._begin()
        changes = {}
        for column in columns:
            value = self._update_value(table, column)
            if value != row[column.name]:
                changes[column.name] = value
        if not changes:
            return False
        self._update(tx, table.name, key, changes)
        self._commit(tx)
        return True

    def _delete_transaction(self) -> bool:
        table, key = self._pick_row(self.catalogue.workload.deletes)
        if table is None:
            return False
        tx = self._begin()
        self._delete(tx, table.name, key)
        self._commit(tx)
        return True

    def _key_change_transaction(self) -> bool:
        table, key = self._pick_row(self.catalogue.workload.key_changes)
        if table is None:
            return False
        tx = self._begin()
        new_key = self._new_row_id()
        changes = {table.key: new_key}
        changes |= {c.name: new_key for c in table.columns if c.kind == "same_as" and c.column == table.key}
        self._update(tx, table.name, key, changes)
        for other, column in self._referencing[table.name]:
            for child_key in self._rows_referencing(other.name, column.name, key):
                self._update(tx, other.name, child_key, {column.name: new_key})
        self._commit(tx)
        return True

    def _truncate_reload(self) -> bool:
        table, _ = self._pick_row(self.catalogue.workload.truncate_reloads)
        if table is None:
            return False
        tx = self._begin()
        change, rows = self.db.truncate(table.name)
        tx.changes.append(change)
        self._commit(tx)
        tx = self._begin()
        for row in rows:
            tx.changes.append(self.db.insert(table.name, row))
        self._commit(tx)
        return True

    # ---- row operations ------------------------------------------------------------------------

    def _insert(self, tx: _Transaction, table_name: str, preset: dict[str, Any] | None = None) -> str:
        table = self.catalogue.table(table_name)
        row: dict[str, Any] = {}
        for column in table.columns:
            if preset and column.name in preset:
                row[column.name] = preset[column.name]
            else:
                row[column.name] = self._insert_value(tx, table, column, row)
        key = row[table.key]
        tx.changes.append(self.db.insert(table_name, row))
        tx.inserted[table_name].append(key)
        for extension in self._extensions[table_name]:
            self._insert(tx, extension.name)
        self._set_primaries_to(tx, table_name, key)
        return key

    def _set_primaries_to(self, tx: _Transaction, target: str, key: str) -> None:
        """Rows inserted earlier in this transaction whose PR_* column to `target` is still No-Match."""
        for table, column in self._referencing[target]:
            if column.kind != "primary_ref":
                continue
            for other_key in tx.inserted[table.name]:
                rows = self.db.tables[table.name]
                if other_key in rows and rows.rows[other_key][column.name] == self._sentinel:
                    self._update(tx, table.name, other_key, {column.name: key})

    def _update(self, tx: _Transaction, table_name: str, key: str, changes: dict[str, Any]) -> None:
        table = self.catalogue.table(table_name)
        row = self.db.get(table_name, key)
        touched = {c.name: self._touch_value(tx, table, c, row) for c in table.touch_columns}
        tx.changes.append(self.db.update(table_name, key, {**changes, **touched}))
        parent = table.parent
        if parent is not None:
            parent_key = row[parent.name]
            if parent_key in self.db.tables[parent.table] and (parent.table, parent_key) not in tx.deleting:
                self._update(tx, parent.table, parent_key, {})

    def _delete(self, tx: _Transaction, table_name: str, key: str) -> None:
        """Delete a row; children that cascade go first, other references are cleared first."""
        tx.deleting.add((table_name, key))
        for table, column in self._referencing[table_name]:
            for child_key in self._rows_referencing(table.name, column.name, key):
                if child_key not in self.db.tables[table.name] or (table.name, child_key) in tx.deleting:
                    continue
                if column.cascades:
                    self._delete(tx, table.name, child_key)
                else:
                    cleared = self._sentinel if column.kind == "primary_ref" else None
                    self._update(tx, table.name, child_key, {column.name: cleared})
        tx.changes.append(self.db.delete(table_name, key))

    # ---- values ----------------------------------------------------------------------------------

    def _insert_value(self, tx: _Transaction, table: Table, column: Column, row: dict[str, Any]) -> Any:
        kind = column.kind
        if kind in ("row_id", "same_as", "parent", "line_number", "now", "user", "version", "lov_entry"):
            return self._structural_value(tx, table, column, row)
        if column.null_rate and self.rng.random() < column.null_rate:
            return None
        if kind in ("ref", "primary_ref") and tx.inserted[column.table]:
            return tx.inserted[column.table][-1]
        return self._business_value(table, column)

    def _update_value(self, table: Table, column: Column) -> Any:
        if column.null_rate and self.rng.random() < column.null_rate:
            return None
        return self._business_value(table, column)

    def _structural_value(self, tx: _Transaction, table: Table, column: Column, row: dict[str, Any]) -> Any:
        kind = column.kind
        if kind == "row_id":
            return self._new_row_id()
        if kind == "same_as":
            return row[column.column]
        if kind == "parent":
            return tx.inserted[column.table][-1]
        if kind == "line_number":
            self._line_numbers[(table.name, row[column.of])] += 1
            return self._line_numbers[(table.name, row[column.of])]
        if kind == "now":
            return tx.time.strftime(table.date_format)
        if kind == "user":
            return self.rng.choice(self.catalogue.users)
        if kind == "version":
            return 0
        raise ValueError(f"{table.name}.{column.name}: {kind} values come from the list of values")

    def _business_value(self, table: Table, column: Column) -> Any:
        kind = column.kind
        if kind == "lov":
            value = self.rng.choice(self.catalogue.list_of_values.codes(column.type))
        elif kind in ("ref", "primary_ref"):
            no_match = kind == "primary_ref" and self.rng.random() < column.no_match_rate
            target = None if no_match else self.db.tables[column.table].choice(self.rng)
            value = target if target is not None else (self._sentinel if kind == "primary_ref" else None)
        elif kind == "counter":
            self._counters[(table.name, column.name)] += 1
            value = f"{column.prefix}{self._counters[(table.name, column.name)]:0{column.width}d}"
        else:
            value = plain_value(column, self.rng, self.clock, table.date_format)
        return char_padded(value, column.pad)

    def _touch_value(self, tx: _Transaction, table: Table, column: Column, row: dict[str, Any]) -> Any:
        if column.kind == "version":
            return row[column.name] + 1
        if column.kind in ("now", "user"):
            return self._structural_value(tx, table, column, row)
        return self._business_value(table, column)

    # ---- helpers ---------------------------------------------------------------------------------

    def _new_row_id(self) -> str:
        self._row_number += self.rng.randint(1, 7)
        return siebel_row_id(self._row_number)

    def _pick_row(self, weights: dict[str, float]) -> tuple[Table | None, str | None]:
        candidates = [(name, w) for name, w in weights.items() if len(self.db.tables[name])]
        if not candidates:
            return None, None
        name = self.rng.choices([n for n, _ in candidates], [w for _, w in candidates])[0]
        return self.catalogue.table(name), self.db.tables[name].choice(self.rng)

    def _rows_referencing(self, table: str, column: str, key: str) -> list[str]:
        return [k for k, row in self.db.tables[table].rows.items() if row[column] == key]
