"""Debezium Oracle connector (LogMiner) change events, Kafka Connect JsonConverter with schemas.

Shapes as in docs/cdc-formats.md §2. Assumed connector setup: supplemental logging (ALL)
COLUMNS (full `before` and `after`), `message.key.columns=<table>:<key column>`, value converter with
`schemas.enable=true` (each value is `{"schema", "payload"}`, so typed columns round-trip exactly),
key converter with `schemas.enable=false` (key `{<key column>: value}`), default type mappings: DATE as
io.debezium.time.Timestamp (epoch ms), NUMBER(p,s) as org.apache.kafka.connect.data.Decimal
(base64 unscaled value, the column's scale in the schema), integers as int64.
`skipped.operations=none` (truncates kept), `tombstones.on.delete=true`. A key change is a delete,
a tombstone and a create (without the `__debezium.oldkey` headers: messages carry no headers).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from devtools.workload import json_text
from devtools.workload.catalogue import Column, Table
from devtools.workload.source_db import Row, RowChange
from devtools.workload.values import ORACLE_DATE

CONNECTOR_VERSION = "2.7.3.Final"
DATE_KINDS = ("now", "date")
INTEGER_KINDS = ("version", "number", "line_number")
SOURCE_FIELDS = [
    ("version", "string"),
    ("connector", "string"),
    ("name", "string"),
    ("ts_ms", "int64"),
    ("snapshot", "string"),
    ("db", "string"),
    ("sequence", "string"),
    ("schema", "string"),
    ("table", "string"),
    ("txId", "string"),
    ("scn", "string"),
    ("commit_scn", "string"),
    ("commit_ts_ms", "int64"),
    ("ssn", "int64"),
    ("redo_thread", "int32"),
]
TRANSACTION_FIELDS = [("id", "string"), ("total_order", "int64"), ("data_collection_order", "int64")]


def epoch_ms(text: str) -> int:
    """An Oracle DATE 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD:HH:MM:SS' (a table's date_format; wall
    clock, UTC in Siebel) as Debezium's epoch ms."""
    moment = datetime.strptime(f"{text[:10]} {text[11:]}", ORACLE_DATE)
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def decimal_base64(value: Decimal, scale: int) -> str:
    """Kafka Connect Decimal: big-endian two's-complement unscaled value, base64."""
    unscaled = int(value.scaleb(scale))
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode("ascii")


def column_schema(column: Column, key_column: str) -> dict[str, Any]:
    field = {"field": column.name, "optional": column.name != key_column}
    if column.kind in DATE_KINDS:
        return {"type": "int64", "name": "io.debezium.time.Timestamp", "version": 1, **field}
    if column.kind == "decimal":
        parameters = {"scale": str(column.scale), "connect.decimal.precision": "22"}
        return {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": parameters,
            **field,
        }
    if column.kind in INTEGER_KINDS or (column.kind == "constant" and isinstance(column.value, int)):
        return {"type": "int64", **field}
    return {"type": "string", **field}


def _struct(name: str, field: str, fields: list[tuple[str, str]] | list[dict], optional: bool) -> dict:
    entries = [f if isinstance(f, dict) else {"type": f[1], "optional": True, "field": f[0]} for f in fields]
    return {"type": "struct", "fields": entries, "optional": optional, "name": name, "field": field}


def envelope_schema(table: Table, topic_prefix: str = "crm") -> dict[str, Any]:
    columns = [column_schema(c, table.key) for c in table.columns]
    row_name = f"{topic_prefix}.{table.source}.Value"
    return {
        "type": "struct",
        "fields": [
            _struct(row_name, "before", columns, True),
            _struct(row_name, "after", columns, True),
            _struct("io.debezium.connector.oracle.Source", "source", SOURCE_FIELDS, False),
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            _struct("event.block", "transaction", TRANSACTION_FIELDS, True),
        ],
        "optional": False,
        "name": f"{topic_prefix}.{table.source}.Envelope",
        "version": 2,
    }


def _row(row: Row | None, table: Table) -> dict[str, Any] | None:
    if row is None:
        return None
    out: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if value is not None and column.kind in DATE_KINDS:
            value = epoch_ms(value)
        elif isinstance(value, Decimal):
            value = decimal_base64(value, column.scale)
        out[column.name] = value
    return out


def debezium_records(
    change: RowChange,
    *,
    table: Table,
    source: dict[str, Any],
    ts_ms: int,
    transaction: dict[str, Any] | None,
    snapshot: str | None = None,
    tombstones: bool = True,
) -> list[tuple[RowChange | None, bytes | None, bytes | None]]:
    """The Kafka records (effect on the source rows, key, value) for one row change.

    `source` holds the position fields (scn, commit_scn, txId, ...); `snapshot` is set for an
    initial-load read ("true", or "last" for the last one), which makes the op `r`.
    """
    schema_name, table_name = table.source.split(".", 1)
    schema = envelope_schema(table)

    def record(op: str, before: Row | None, after: Row | None) -> bytes:
        payload = {
            "before": _row(before, table),
            "after": _row(after, table),
            "source": {
                "version": CONNECTOR_VERSION,
                "connector": "oracle",
                "name": "crm",
                "ts_ms": source["commit_ts_ms"],
                "snapshot": snapshot or "false",
                "db": "CRMPDB",
                "sequence": None,
                "schema": schema_name,
                "table": table_name,
                **source,
            },
            "op": op,
            "ts_ms": ts_ms,
            "transaction": transaction,
        }
        return json_text.dump_bytes({"schema": schema, "payload": payload})

    def key_of(row: Row) -> bytes:
        return json_text.dump_bytes({table.key: row[table.key]})

    if change.op == "T":
        return [(change, None, record("t", None, None))]
    if change.op == "I":
        return [(change, key_of(change.new_row), record("r" if snapshot else "c", None, change.new_row))]
    old_key = key_of(change.old_row)
    tombstone = [(None, old_key, None)] if tombstones else []
    if change.op == "D":
        return [(change, old_key, record("d", change.old_row, None)), *tombstone]
    if change.old_row[table.key] == change.new_row[table.key]:
        return [(change, old_key, record("u", change.old_row, change.new_row))]
    deleted = RowChange(change.table, "D", old_row=change.old_row)
    created = RowChange(change.table, "I", new_row=change.new_row)
    return [
        (deleted, old_key, record("d", change.old_row, None)),
        *tombstone,
        (created, key_of(change.new_row), record("c", None, change.new_row)),
    ]
