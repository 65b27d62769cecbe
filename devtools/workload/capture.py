"""The capture side: GoldenGate Extract + Kafka handler (or Debezium, per table) turning committed
transactions of the source database into Kafka messages, in commit order.

Transaction identity: every transaction gets an increasing commit SCN (GoldenGate `csn`) and an
Oracle XID (`usn.slot.sqn`); each operation gets its own SCN below the commit SCN. The operations
of one transaction are consecutive in the trail, share op_ts, csn and xid.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import NamedTuple

from devtools.workload import json_text
from devtools.workload.catalogue import Catalogue
from devtools.workload.config import WorkloadConfig
from devtools.workload.debezium import debezium_records
from devtools.workload.goldengate import Trail, goldengate_key, goldengate_message, transaction_indicator
from devtools.workload.source_db import Row, RowChange

FIRST_SCN = 48_213_377


class WorkloadMessage(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None


class Capture:
    def __init__(self, catalogue: Catalogue, config: WorkloadConfig, rng: random.Random) -> None:
        self.catalogue, self.config, self.rng = catalogue, config, rng
        known = {name for t in catalogue.tables.values() for name in (t.name, t.source)}
        unknown = [t for t in config.debezium_tables if t not in known]
        if unknown:
            raise ValueError(f"debezium_tables: unknown tables {unknown}")
        self.debezium = {
            t.name
            for t in catalogue.tables.values()
            if t.name in config.debezium_tables or t.source in config.debezium_tables
        }
        self.capturing = True
        self.messages: list[WorkloadMessage] = []
        self.effects: list[RowChange | None] = []  # what each message does to the source rows
        self.transaction_ends: list[int] = []  # message counts at which a transaction is complete
        self.load_messages: list[WorkloadMessage] = []
        self.load_effects: list[RowChange | None] = []
        self._trail = Trail(seqno=1)
        self._scn = FIRST_SCN
        self._xid_sequence = 1000
        self._processed_at = config.start_time

    def topic(self, table: str) -> str:
        return self.config.topic_template.format(table=table)

    def commit(self, changes: list[RowChange], commit_time: datetime) -> None:
        """Record one committed transaction. Nothing is emitted before the capture starts."""
        op_scns = [self._next_scn(self.rng.randint(1, 3)) for _ in changes]
        commit_scn = self._next_scn(1)
        self._xid_sequence += self.rng.randint(1, 40)
        usn, slot = self.rng.randint(1, 12), self.rng.randint(0, 31)
        if not self.capturing or not changes:
            return
        xid = f"{usn}.{slot}.{self._xid_sequence}"
        xid_hex = f"{usn:04x}{slot:04x}{self._xid_sequence:08x}"
        per_table: dict[str, int] = {}
        for index, (change, scn) in enumerate(zip(changes, op_scns, strict=True)):
            per_table[change.table] = per_table.get(change.table, 0) + 1
            if change.table in self.debezium:
                transaction = {
                    "id": xid_hex,
                    "total_order": index + 1,
                    "data_collection_order": per_table[change.table],
                }
                source = {
                    "txId": xid_hex,
                    "scn": str(scn),
                    "commit_scn": str(commit_scn),
                    "commit_ts_ms": _ms(commit_time),
                    "ssn": 0,
                    "redo_thread": 1,
                }
                self._emit_debezium(
                    change, source, transaction, commit_time, None, self.messages, self.effects
                )
            else:
                fields = {
                    "xid": xid,
                    "csn": str(commit_scn),
                    "txind": transaction_indicator(index, len(changes)),
                }
                self._emit_goldengate(change, commit_time, self._trail, fields, self.messages, self.effects)
        self.transaction_ends.append(len(self.messages))

    def initial_load(self, state: dict[str, dict[str, Row]], snapshot_time: datetime) -> None:
        """GoldenGate initial load: every current row as an insert, from its own trail (seqno 0, so
        its positions sort below the change trail's); csn is the snapshot SCN."""
        snapshot_scn = self._next_scn(1)
        trail = Trail(seqno=0)
        rows = [(table, row) for table, table_rows in state.items() for row in table_rows.values()]
        debezium_reads = sum(table in self.debezium for table, _ in rows)
        for table, row in rows:
            change = RowChange(table, "I", new_row=dict(row))
            if table in self.debezium:
                source = {
                    "txId": None,
                    "scn": str(snapshot_scn),
                    "commit_scn": None,
                    "commit_ts_ms": _ms(snapshot_time),
                    "ssn": 0,
                    "redo_thread": 1,
                }
                debezium_reads -= 1
                snapshot = "true" if debezium_reads else "last"  # "last": the connector's last read
                self._emit_debezium(
                    change, source, None, snapshot_time, snapshot, self.load_messages, self.load_effects
                )
            else:
                fields = {"csn": str(snapshot_scn)}
                self._emit_goldengate(
                    change, snapshot_time, trail, fields, self.load_messages, self.load_effects
                )

    def _emit_goldengate(self, change, op_time, trail, fields, messages, effects) -> None:
        table = self.catalogue.table(change.table)
        message = goldengate_message(
            change,
            source_table=table.source,
            key_column=table.key,
            before_image=self.config.before_image,
            op_ts=op_time.strftime("%Y-%m-%d %H:%M:%S.%f"),
            current_ts=self._processing_time(op_time).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            pos=trail.position(),
            transaction=fields if self.config.transaction_fields else {},
        )
        value = json_text.dump_bytes(message)
        trail.advance(len(value))
        messages.append(WorkloadMessage(self.topic(table.name), goldengate_key(change, table.key), value))
        effects.append(change)

    def _emit_debezium(self, change, source, transaction, op_time, snapshot, messages, effects) -> None:
        table = self.catalogue.table(change.table)
        records = debezium_records(
            change,
            table=table,
            source=source,
            ts_ms=_ms(self._processing_time(op_time)),
            transaction=transaction if self.config.transaction_fields else None,
            snapshot=snapshot,
            tombstones=self.config.debezium_tombstones,
        )
        for effect, key, value in records:
            messages.append(WorkloadMessage(self.topic(table.name), key, value))
            effects.append(effect)

    def _next_scn(self, step: int) -> int:
        self._scn += step
        return self._scn

    def _processing_time(self, op_time: datetime) -> datetime:
        """current_ts: when the handler formatted the record, a little after the operation."""
        lag = timedelta(milliseconds=self.rng.randint(150, 900))
        self._processed_at = max(
            self._processed_at + timedelta(microseconds=self.rng.randint(5, 400)), op_time + lag
        )
        return self._processed_at


def _ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)
