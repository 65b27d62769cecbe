"""Debezium change events (JSON converter), with or without the `{"schema", "payload"}` wrapper.

What the decoder relies on (reference: docs/cdc-formats.md §2):

- A null Kafka value is a tombstone (it follows a delete): no change, `[]`. So are `op: m`
  (logical decoding messages) and transaction metadata records (`status` BEGIN/END).
- `op` c/r -> INSERT with a full image, u -> UPDATE, d -> DELETE, t -> TRUNCATE (key {}).
- `table` is `<source.schema>.<source.table>` (`<source.db>.<source.table>` for MySQL, which has no schema).
- The key comes from the spec's `keys`: from `after` for c/r/u and from `before` for d; when the image
  lacks a key column (Postgres REPLICA IDENTITY NOTHING deletes carry no `before`), from the Kafka key.
- Primary-key change: Debezium sends d(old key) + tombstone + c(new key); the c carries the header
  `__debezium.oldkey`, which becomes `old_key`. The d stays a plain delete. A `u` whose `before` key
  differs from its `after` key also gets `old_key`.
- Columns holding the unavailable-value placeholder are absent from the image (debezium_types).
- Position (most significant first; debezium_positions.py): the `sequence_by` fields, which must be
  fields of the message's connector (`source.connector`); without `sequence_by`, per connector:
  Oracle (commit_scn or else scn, scn, ssn or 0), Postgres (lsn,), MySQL/MariaDB (binlog file number,
  pos, row or 0), SQL Server (commit_lsn, change_lsn or 0, event_serial_no or 0), Db2 (commit_lsn,
  change_lsn or 0). SQL Server and Db2 LSNs are hex groups (`0000002b:00000420:0003`), each LSN read
  as one integer in the database's order. Other connectors need `sequence_by`.
- `commit_ts` is `source.ts_ms`; `txid` is `source.txId`, else `transaction.id`; `extra` holds
  `snapshot`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from transforms.changes import ChangeRecord, DecodeError, Image, KafkaMessage, Op, RecordContext
from transforms.decoders.debezium_positions import position
from transforms.decoders.debezium_types import FieldSchemas, decode_image, struct_fields
from transforms.decoders.fields import key_or_none, missing_key_column
from transforms.decoders.json_documents import a_kind_of, single_document
from transforms.decoders.values import canonical_value, datetime_from_epoch_ms

OPS = {"c": Op.INSERT, "r": Op.INSERT, "u": Op.UPDATE, "d": Op.DELETE, "t": Op.TRUNCATE}
IGNORED_OPS = {"m"}
OLD_KEY_HEADER = "__debezium.oldkey"
TRANSACTION_STATUSES = {"BEGIN", "END"}


def decode_debezium(
    message: KafkaMessage, keys: list[str], sequence_by: list[str] | None
) -> list[ChangeRecord]:
    if message.value is None:
        return []
    try:
        return _decode(message, message.value, keys, sequence_by)
    except DecodeError as exc:
        raise DecodeError(f"Debezium message: {exc}") from None


def _decode(
    message: KafkaMessage, value: bytes, keys: list[str], sequence_by: list[str] | None
) -> list[ChangeRecord]:
    """`value` is the message's value, known not to be null."""
    schema, envelope = _unwrap(single_document(value))
    if not isinstance(envelope, dict):
        raise DecodeError(f"the change event is {a_kind_of(envelope)}, not an object")
    op_code = envelope.get("op")
    if op_code is None:
        if envelope.get("status") in TRANSACTION_STATUSES and "id" in envelope:
            return []
        raise DecodeError(
            "no `op` field (not a change event envelope; unwrapped/flattened records are not supported)"
        )
    if op_code in IGNORED_OPS:
        return []
    if op_code not in OPS:
        raise DecodeError(f"unknown op {op_code!r} (expected c, r, u, d, t or m)")
    op = OPS[op_code]
    source = envelope.get("source")
    if not isinstance(source, dict):
        raise DecodeError(f"`source` is {a_kind_of(source)}, not an object")
    transaction = envelope.get("transaction")
    if transaction is not None and not isinstance(transaction, dict):
        raise DecodeError(f"`transaction` is {a_kind_of(transaction)}, not an object or null")
    common = RecordContext(
        table=_table(source),
        position=position(source, transaction, sequence_by),
        kafka=message.coordinates,
        commit_ts=_commit_ts(source),
        txid=_txid(source, transaction),
        extra=_extra(source),
    )
    if op is Op.TRUNCATE:
        return [ChangeRecord(op=op, key={}, before=None, after=None, full_image=False, **common)]

    before = _image(envelope, "before", schema)
    after = _image(envelope, "after", schema)
    kafka_key = _lazy_kafka_key(message)
    if op is Op.DELETE:
        key = _key(before, "before", kafka_key, keys)
        return [ChangeRecord(op=op, key=key, before=before, after=after, full_image=False, **common)]
    if after is None:
        raise DecodeError(f"op {op_code} has no `after` image")
    key = _key(after, "after", kafka_key, keys)
    if op is Op.INSERT:
        old_key = _header_key(message, OLD_KEY_HEADER, keys)
        full_image = True
    else:
        old_key = key_or_none(before, keys, "`before` image")
        full_image = False
    if old_key == key:
        old_key = None
    return [
        ChangeRecord(
            op=op, key=key, before=before, after=after, full_image=full_image, old_key=old_key, **common
        )
    ]


def _unwrap(document: Any) -> tuple[Any, Any]:
    """(schema, payload) of a JsonConverter record with schemas enabled, else (None, document)."""
    if isinstance(document, dict) and document.keys() == {"schema", "payload"}:
        return document["schema"], document["payload"]
    return None, document


def _table(source: dict) -> str:
    namespace_field = "schema" if source.get("schema") is not None else "db"
    namespace, table = source.get(namespace_field), source.get("table")
    for field, value in ((namespace_field, namespace), ("table", table)):
        if not isinstance(value, str) or not value:
            raise DecodeError(f"`source.{field}` is {value!r}, not a non-empty string")
    return f"{namespace}.{table}"


def _commit_ts(source: dict) -> datetime | None:
    if source.get("ts_ms") is None:
        return None
    try:
        return datetime_from_epoch_ms(source["ts_ms"])
    except DecodeError as exc:
        raise DecodeError(f"`source.ts_ms`: {exc}") from None


def _txid(source: dict, transaction: dict | None) -> str | None:
    if source.get("txId") is not None:
        return canonical_value(source["txId"])
    if transaction is not None and transaction.get("id") is not None:
        return canonical_value(transaction["id"])
    return None


def _extra(source: dict) -> dict[str, str]:
    snapshot = canonical_value(source.get("snapshot"))  # None only for a missing or null flag
    return {} if snapshot is None else {"snapshot": snapshot}


def _image(envelope: dict, name: str, schema: Any) -> Image | None:
    raw = envelope.get(name)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DecodeError(f"`{name}` is {a_kind_of(raw)}, not an object or null")
    return decode_image(raw, _image_schemas(schema, name), f"`{name}`")


def _image_schemas(schema: Any, name: str) -> FieldSchemas | None:
    if schema is None:
        return None
    envelope_fields = struct_fields(schema, "message")
    if name not in envelope_fields:
        raise DecodeError(f"the message schema has no `{name}` field")
    return struct_fields(envelope_fields[name], f"`{name}`")


def _lazy_kafka_key(message: KafkaMessage) -> Callable[[], Image | None]:
    """The decoded Kafka key, parsed only if an image lacks a key column."""

    def decode_key() -> Image | None:
        if message.key is None:
            return None
        try:
            schema, payload = _unwrap(single_document(message.key))
            if not isinstance(payload, dict):
                raise DecodeError(f"it is {a_kind_of(payload)}, not an object")
            return decode_image(payload, None if schema is None else struct_fields(schema, "key"), "column")
        except DecodeError as exc:
            raise DecodeError(f"Kafka key: {exc}") from None

    return decode_key


def _key(
    image: Image | None, name: str, kafka_key: Callable[[], Image | None], keys: list[str]
) -> dict[str, str]:
    key = key_or_none(image, keys, f"`{name}` image")
    if key is not None:
        return key
    from_kafka_key = kafka_key()
    key = key_or_none(from_kafka_key, keys, "the Kafka key")
    if key is not None:
        return key
    lacking = (
        f"`{name}` is null"
        if image is None
        else f"`{name}` image lacks key column {missing_key_column(image, keys)}"
    )
    if from_kafka_key is None:
        raise DecodeError(f"{lacking} and the Kafka key is null")
    raise DecodeError(
        f"{lacking} and the Kafka key lacks key column {missing_key_column(from_kafka_key, keys)}"
    )


def _header_key(message: KafkaMessage, header: str, keys: list[str]) -> dict[str, str] | None:
    """Key columns from a key-valued header (JSON, with or without the schema wrapper), or None if absent."""
    values = [value for name, value in message.headers if name == header]
    if not values:
        return None
    try:
        if values[-1] is None:
            raise DecodeError("it is null")
        # Connect's default SimpleHeaderConverter writes a struct as JSON-like text that may hold raw
        # control characters, hence the lenient parser.
        schema, payload = _unwrap(single_document(values[-1], strict=False))
        if not isinstance(payload, dict):
            raise DecodeError(f"it is {a_kind_of(payload)}, not an object")
        image = decode_image(payload, None if schema is None else struct_fields(schema, "key"), "column")
    except DecodeError as exc:
        raise DecodeError(f"header {header}: {exc}") from None
    key = key_or_none(image, keys, f"header {header}")
    if key is None:
        raise DecodeError(f"header {header} lacks key column {missing_key_column(image, keys)}")
    return key
