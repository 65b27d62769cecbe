"""The Debezium Postgres connector (2.7.3.Final, pgoutput) turning the committed transactions of the
simulated order service's database into Kafka records (reference: docs/cdc-formats.md §2).

The connector as it is set up for that database:

- `topic.prefix=orders`, database `orders`, schema `public`: the topic of a table comes from the
  caller's template (`orders.public.{table}` by default).
- `provide.transaction.metadata=true`: a streamed event carries `transaction` = {"id":
  "<txId>:<lsn of the transaction's first change>", "total_order": its place in the transaction,
  "data_collection_order": its place among the transaction's events of its table}; a snapshot read
  carries null. The transaction topic itself (BEGIN/END records) is not simulated.
- `tombstones.on.delete=true`: a delete is followed by a tombstone (same key, null value).
- Per table (TableSetup): REPLICA IDENTITY (DEFAULT: an update has no `before`, a delete's `before`
  holds the key and nulls; FULL: the whole old row), the JsonConverter's `schemas.enable` (key and
  value alike) and `decimal.handling.mode` (string: "12.50"; precise: a Connect Decimal, base64).
- timestamptz is io.debezium.time.ZonedTimestamp: UTC text with the column's six fraction digits,
  `2026-12-05T10:00:00.123456Z`.
- TOAST: pgoutput leaves an unchanged out-of-line value out of an UPDATE's new tuple, and Debezium
  writes the placeholder `__debezium_unavailable_value` in its place.
- A primary-key UPDATE is one WAL record: a delete of the old key, its tombstone and a create of the
  new key, all at that record's lsn (the records carry no `__debezium.oldkey` headers here).
- `source.lsn` is the change's WAL position, `source.sequence` the JSON text
  `["<lsn of the last commit>","<lsn>"]`, `source.ts_ms` the commit time; the envelope's `ts_ms` is
  when the connector processed the event, a little later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from devtools.workload import json_text
from devtools.workload.capture import WorkloadMessage
from devtools.workload.debezium import CONNECTOR_VERSION, decimal_base64
from devtools.workload.source_db import Row, RowChange

TOPIC_PREFIX = "orders"
DATABASE = "orders"
SCHEMA = "public"
UNAVAILABLE_VALUE = "__debezium_unavailable_value"
SOURCE_FIELDS = [
    ("version", "string", False),
    ("connector", "string", False),
    ("name", "string", False),
    ("ts_ms", "int64", False),
    ("snapshot", "string", True),
    ("db", "string", False),
    ("sequence", "string", True),
    ("schema", "string", False),
    ("table", "string", False),
    ("txId", "int64", True),
    ("lsn", "int64", True),
    ("xmin", "int64", True),
]
TRANSACTION_FIELDS = [
    ("id", "string", False),
    ("total_order", "int64", False),
    ("data_collection_order", "int64", False),
]
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class TableSetup:
    """One captured table: its columns with their Postgres types (bigint, integer, text, char(n),
    numeric(p,s), timestamptz, uuid, jsonb), in table order, and how the connector writes it."""

    name: str
    columns: tuple[tuple[str, str], ...]
    replica_identity: str = "DEFAULT"  # or FULL
    schemas: bool = False  # JsonConverter schemas.enable
    decimal_handling: str = "string"  # or precise
    toasted: tuple[str, ...] = ()  # columns stored out of line (TOAST)
    key: str = "id"


def columns(ddl: str) -> tuple[tuple[str, str], ...]:
    """The (column, type) pairs of a column list like `id bigint, total numeric(12,2)`."""
    return tuple((name, pg_type) for name, pg_type in (c.split(" ", 1) for c in ddl.split(", ")))


class CommittedTransaction(NamedTuple):
    """A committed transaction as logical decoding delivers it: its changes with their WAL lsn."""

    tx_id: int
    changes: list[tuple[int, RowChange]]
    commit_lsn: int
    commit_time: datetime


class Sent(NamedTuple):
    """A record the connector sent, and the row change it carries (None for a tombstone)."""

    message: WorkloadMessage
    change: RowChange | None


class Event(NamedTuple):
    """One change event before encoding; op None is the tombstone after a delete."""

    op: str | None
    before: Row | None
    after: Row | None
    key: Any
    effect: RowChange | None


def epoch_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def zoned_timestamp(moment: datetime) -> str:
    """io.debezium.time.ZonedTimestamp of a naive UTC time: ISO-8601 in UTC, six fraction digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _numeric(pg_type: str) -> tuple[int, int]:
    precision, scale = pg_type.removeprefix("numeric(").rstrip(")").split(",")
    return int(precision), int(scale)


def column_value(value: Any, pg_type: str, setup: TableSetup) -> Any:
    """A column value as the JsonConverter writes it."""
    if value is None or value == UNAVAILABLE_VALUE:
        return value
    if pg_type == "timestamptz":
        return zoned_timestamp(value)
    if pg_type.startswith("numeric"):
        exact = Decimal(value).quantize(Decimal(1).scaleb(-_numeric(pg_type)[1]))
        if setup.decimal_handling == "precise":
            return decimal_base64(exact, _numeric(pg_type)[1])
        return format(exact, "f")
    return value


def column_schema(column: str, pg_type: str, setup: TableSetup) -> dict[str, Any]:
    """The Connect schema of one column (a field of the Value struct)."""
    kind: dict[str, Any] = {"type": "string"}
    if pg_type == "bigint":
        kind = {"type": "int64"}
    elif pg_type == "integer":
        kind = {"type": "int32"}
    elif pg_type == "timestamptz":
        kind = {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1}
    elif pg_type == "uuid":
        kind = {"type": "string", "name": "io.debezium.data.Uuid", "version": 1}
    elif pg_type == "jsonb":
        kind = {"type": "string", "name": "io.debezium.data.Json", "version": 1}
    elif pg_type.startswith("numeric") and setup.decimal_handling == "precise":
        precision, scale = _numeric(pg_type)
        parameters = {"scale": str(scale), "connect.decimal.precision": str(precision)}
        kind = {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": parameters,
        }
    return {**kind, "optional": column != setup.key, "field": column}


def _fields(fields: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
    return [{"type": kind, "optional": optional, "field": name} for name, kind, optional in fields]


@cache
def envelope_schema(setup: TableSetup) -> dict[str, Any]:
    """The value schema: the Envelope struct of the table's Value structs, source and transaction."""
    prefix = f"{TOPIC_PREFIX}.{SCHEMA}.{setup.name}"
    value = [column_schema(name, pg_type, setup) for name, pg_type in setup.columns]
    row = {"type": "struct", "fields": value, "optional": True, "name": f"{prefix}.Value"}
    source = {"type": "struct", "fields": _fields(SOURCE_FIELDS), "optional": False}
    source["name"] = "io.debezium.connector.postgresql.Source"
    transaction = {"type": "struct", "fields": _fields(TRANSACTION_FIELDS), "optional": True}
    transaction.update(name="event.block", version=1)
    return {
        "type": "struct",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {**source, "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            {**transaction, "field": "transaction"},
        ],
        "optional": False,
        "name": f"{prefix}.Envelope",
        "version": 2,
    }


@cache
def key_schema(setup: TableSetup) -> dict[str, Any]:
    key_type = dict(setup.columns)[setup.key]
    field = column_schema(setup.key, key_type, setup)
    name = f"{TOPIC_PREFIX}.{SCHEMA}.{setup.name}.Key"
    return {"type": "struct", "fields": [field], "optional": False, "name": name}


def image(row: Row | None, setup: TableSetup) -> dict[str, Any] | None:
    if row is None:
        return None
    return {name: column_value(row.get(name), pg_type, setup) for name, pg_type in setup.columns}


def row_events(change: RowChange, setup: TableSetup, snapshot: bool = False) -> list[Event]:
    """The connector's events for one row change (an insert is a snapshot read when `snapshot`)."""
    key = setup.key
    if change.op == "I":
        assert change.new_row is not None
        return [Event("r" if snapshot else "c", None, change.new_row, change.new_row[key], change)]
    assert change.old_row is not None
    old_key = change.old_row[key]
    if setup.replica_identity == "FULL":
        old_image: Row = change.old_row
    else:  # DEFAULT: the old tuple holds the key only
        old_image = {name: (old_key if name == key else None) for name, _ in setup.columns}
    deleted = [Event("d", old_image, None, old_key, change), Event(None, None, None, old_key, None)]
    if change.op == "D":
        return deleted
    assert change.new_row is not None
    if change.new_row[key] != old_key:
        deleted[0] = deleted[0]._replace(effect=RowChange(change.table, "D", old_row=change.old_row))
        created = RowChange(change.table, "I", new_row=change.new_row)
        return [*deleted, Event("c", None, change.new_row, change.new_row[key], created)]
    after = {**change.new_row}
    for column in setup.toasted:
        if column not in change.changed:
            after[column] = UNAVAILABLE_VALUE
    before = change.old_row if setup.replica_identity == "FULL" else None
    return [Event("u", before, after, old_key, change)]


class PostgresConnector:
    """The connector task: snapshot first, then the stream; `sent` is every record in sending order."""

    def __init__(
        self, tables: dict[str, TableSetup], topic_template: str, rng: random.Random, started: datetime
    ) -> None:
        self.tables, self.topic_template, self.rng = tables, topic_template, rng
        self.sent: list[Sent] = []
        self._last_commit_lsn: int | None = None
        self._processed_at = started

    def snapshot(self, rows: dict[str, list[Row]], lsn: int, tx_id: int, at: datetime) -> None:
        """Every row as a read (op r) at the snapshot's lsn; the very last one is flagged "last"."""
        reads = [(table, row) for table, table_rows in rows.items() for row in table_rows]
        for number, (table, row) in enumerate(reads, start=1):
            flag = "last" if number == len(reads) else "true"
            source = self._source(table, epoch_ms(at), flag, tx_id, lsn)
            (event,) = row_events(RowChange(table, "I", new_row=row), self.tables[table], snapshot=True)
            self._send(table, event, source, None, at)
        self._last_commit_lsn = lsn  # the snapshot holds everything committed up to its lsn

    def stream(self, transaction: CommittedTransaction) -> None:
        """The events of one committed transaction, in WAL order."""
        first_lsn = transaction.changes[0][0]
        total, per_table = 0, dict.fromkeys(self.tables, 0)
        for lsn, change in transaction.changes:
            commit_ms = epoch_ms(transaction.commit_time)
            source = self._source(change.table, commit_ms, "false", transaction.tx_id, lsn)
            for event in row_events(change, self.tables[change.table]):
                block = None
                if event.op is not None:
                    total, per_table[change.table] = total + 1, per_table[change.table] + 1
                    block = {"id": f"{transaction.tx_id}:{first_lsn}", "total_order": total}
                    block["data_collection_order"] = per_table[change.table]
                self._send(change.table, event, source, block, transaction.commit_time)
        self._last_commit_lsn = transaction.commit_lsn

    def redeliver(self, count: int) -> list[Sent]:
        """A restart from an older committed offset: the last `count` records again, as they were."""
        again = self.sent[len(self.sent) - count :] if count else []
        self.sent.extend(again)
        return again

    def _source(self, table: str, ts_ms: int, snapshot: str, tx_id: int, lsn: int) -> dict[str, Any]:
        last = None if self._last_commit_lsn is None else str(self._last_commit_lsn)
        return {
            "version": CONNECTOR_VERSION,
            "connector": "postgresql",
            "name": TOPIC_PREFIX,
            "ts_ms": ts_ms,
            "snapshot": snapshot,
            "db": DATABASE,
            "sequence": json_text.dumps([last, str(lsn)]),
            "schema": SCHEMA,
            "table": table,
            "txId": tx_id,
            "lsn": lsn,
            "xmin": None,
        }

    def _send(self, table: str, event: Event, source: dict, block: dict | None, at: datetime) -> None:
        setup = self.tables[table]
        key_payload = {setup.key: event.key}
        key = {"schema": key_schema(setup), "payload": key_payload} if setup.schemas else key_payload
        value = None
        if event.op is not None:
            payload = {
                "before": image(event.before, setup),
                "after": image(event.after, setup),
                "source": source,
                "op": event.op,
                "ts_ms": epoch_ms(self._processing_time(at)),
                "transaction": block,
            }
            document = {"schema": envelope_schema(setup), "payload": payload} if setup.schemas else payload
            value = json_text.dump_bytes(document)
        topic = self.topic_template.format(table=table)
        self.sent.append(Sent(WorkloadMessage(topic, json_text.dump_bytes(key), value), event.effect))

    def _processing_time(self, committed: datetime) -> datetime:
        """When the connector processed an event: a little after the commit, never going back."""
        lag = timedelta(milliseconds=self.rng.randint(40, 700))
        step = timedelta(microseconds=self.rng.randint(20, 900))
        self._processed_at = max(self._processed_at + step, committed + lag)
        return self._processed_at
