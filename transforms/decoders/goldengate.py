"""Oracle GoldenGate for Big Data, JSON formatter, operation-modeled (`format=json`), op or tx mode.

One Kafka value holds one operation (op mode) or several concatenated ones (tx mode); each becomes
one ChangeRecord. What the decoder relies on (reference: docs/cdc-formats.md §1):

- `table`, `op_type` (I/U/D/T) and `pos` are required; key order does not matter; unknown top-level
  fields are ignored (they are metadata, not row data).
- `before` / `after` absent or null mean the same: no image. Inside an image a column that is absent
  is unknown (compressed update/delete), a column present with null is a real NULL. The
  `includeIsMissingFields` variant (`<COL>_isMissing: true|false` next to each column) is read: a
  missing column is left out of the image and the flags themselves are dropped.
- String values are kept exactly as sent; dates inside images are not reformatted here (a text column
  may look like a date). Only `op_ts` is parsed, into `commit_ts`. The columns a spec types are
  converted afterwards, by decode_for_spec (column_types.py: `1994-09-30:15:33:00` and the like).
- The key comes from the spec's `keys` (`primary_keys` in the message is not consulted): from `after`
  for I and U, from `before` for D. An update whose `before` key differs from its `after` key is a
  primary-key change: one UPDATE with `key` = new key and `old_key` = old key.
- Position: the fields named by `sequence_by` (default `["pos"]`, or e.g. `["csn", "pos"]` when the
  handler's metaColumnsTemplate adds `csn`), each an integer or a digit string.
- `extra` holds the trail tokens; `txid` is the `xid` field if templated, else token `6`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from transforms.changes import ChangeRecord, DecodeError, Image, KafkaMessage, Op, RecordContext
from transforms.decoders.fields import key_or_none, missing_key_column, position_number
from transforms.decoders.json_documents import a_kind_of, documents
from transforms.decoders.values import canonical_value, parse_source_timestamp

DEFAULT_SEQUENCE_BY = ["pos"]
OP_TYPES = {"I": Op.INSERT, "U": Op.UPDATE, "D": Op.DELETE, "T": Op.TRUNCATE}
MISSING_FLAG_SUFFIX = "_isMissing"


def decode_goldengate(
    message: KafkaMessage, keys: list[str], sequence_by: list[str] | None
) -> list[ChangeRecord]:
    if message.value is None:
        raise DecodeError("GoldenGate message: the Kafka value is null (GoldenGate sends no tombstones)")
    try:
        found = documents(message.value)
    except DecodeError as exc:
        raise DecodeError(f"GoldenGate message: {exc}") from None
    records = []
    for number, (offset, document) in enumerate(found, start=1):
        try:
            records.append(_record(document, message, keys, sequence_by or DEFAULT_SEQUENCE_BY))
        except DecodeError as exc:
            where = "GoldenGate message"
            if len(found) > 1:
                where += f" (document {number} of {len(found)}, at byte {offset})"
            raise DecodeError(f"{where}: {exc}") from None
    return records


def _record(document: Any, message: KafkaMessage, keys: list[str], sequence_by: list[str]) -> ChangeRecord:
    if not isinstance(document, dict):
        raise DecodeError(f"the JSON document is {a_kind_of(document)}, not an object")
    table = _required_string(document, "table")
    op_type = _required_string(document, "op_type")
    if op_type not in OP_TYPES:
        raise DecodeError(f"unknown op_type {op_type!r} (expected I, U, D or T)")
    op = OP_TYPES[op_type]
    tokens = _tokens(document)
    common = RecordContext(
        table=table,
        position=tuple(position_number(document.get(field), field) for field in sequence_by),
        kafka=message.coordinates,
        commit_ts=_commit_ts(document),
        txid=_txid(document, tokens),
        extra=tokens,
    )
    if op is Op.TRUNCATE:
        return ChangeRecord(op=op, key={}, before=None, after=None, full_image=False, **common)

    before, _ = _image(document, "before")
    after, after_has_missing = _image(document, "after")
    if op is Op.DELETE:
        key = _key(before, "before", op_type, keys)
        return ChangeRecord(op=op, key=key, before=before, after=after, full_image=False, **common)

    key = _key(after, "after", op_type, keys)
    if op is Op.INSERT:
        full_image = not after_has_missing
        return ChangeRecord(op=op, key=key, before=before, after=after, full_image=full_image, **common)

    old_key = key_or_none(before, keys, "`before` image")
    if old_key == key:
        old_key = None
    return ChangeRecord(
        op=op, key=key, before=before, after=after, full_image=False, old_key=old_key, **common
    )


def _required_string(document: dict, field: str) -> str:
    value = document.get(field)
    if value is None:
        raise DecodeError(f"no `{field}` field")
    if not isinstance(value, str) or not value:
        raise DecodeError(f"`{field}` is {value!r}, not a non-empty string")
    return value


def _commit_ts(document: dict) -> datetime | None:
    if document.get("op_ts") is None:
        return None
    try:
        return parse_source_timestamp(document["op_ts"])
    except DecodeError as exc:
        raise DecodeError(f"`op_ts`: {exc}") from None


def _tokens(document: dict) -> dict[str, str]:
    tokens = document.get("tokens")
    if tokens is None:
        return {}
    if not isinstance(tokens, dict):
        raise DecodeError(f"`tokens` is {a_kind_of(tokens)}, not an object")
    return {name: value if isinstance(value, str) else _json_token(value) for name, value in tokens.items()}


def _json_token(value: Any) -> str:
    text = canonical_value(value)
    return "null" if text is None else text


def _txid(document: dict, tokens: dict[str, str]) -> str | None:
    xid = document.get("xid")
    if xid is not None:
        return canonical_value(xid)
    return tokens.get("6")


def _image(document: dict, name: str) -> tuple[Image | None, bool]:
    """The image's present columns, and whether any column was flagged `<COL>_isMissing: true`."""
    raw = document.get(name)
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise DecodeError(f"`{name}` is {a_kind_of(raw)}, not an object or null")
    flags = {
        column[: -len(MISSING_FLAG_SUFFIX)]: value
        for column, value in raw.items()
        if column.endswith(MISSING_FLAG_SUFFIX) and isinstance(value, bool)
    }
    image: Image = {}
    for column, value in raw.items():
        if column.endswith(MISSING_FLAG_SUFFIX) and column[: -len(MISSING_FLAG_SUFFIX)] in flags:
            continue
        if flags.get(column) is True:
            if value is not None:
                raise DecodeError(
                    f"`{name}` column {column} is flagged missing but carries the value {value!r}"
                )
            continue
        try:
            image[column] = canonical_value(value)
        except DecodeError as exc:
            raise DecodeError(f"`{name}` column {column}: {exc}") from None
    for column, missing in flags.items():
        if not missing and column not in raw:
            raise DecodeError(f"`{name}` has {column}{MISSING_FLAG_SUFFIX}: false but no column {column}")
    return image, any(flags.values())


def _key(image: Image | None, name: str, op_type: str, keys: list[str]) -> dict[str, str]:
    key = key_or_none(image, keys, f"`{name}` image")
    if key is None:
        if image is None:
            raise DecodeError(f"op_type {op_type} has no `{name}` image to take the key from")
        raise DecodeError(f"`{name}` image lacks key column {missing_key_column(image, keys)}")
    return key
