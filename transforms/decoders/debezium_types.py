"""Debezium column values (Kafka Connect JsonConverter) to canonical text.

With a schema (`value.converter.schemas.enable=true`) each column's logical type is known and decoded:

| logical type (schema `name`)                                    | JSON value           | canonical text            |
|-----------------------------------------------------------------|----------------------|---------------------------|
| org.apache.kafka.connect.data.Decimal (parameter `scale`)       | base64 unscaled      | exact decimal             |
| io.debezium.data.VariableScaleDecimal                           | {"scale","value"}    | exact decimal             |
| io.debezium.time.Timestamp, org.apache.kafka.connect.data.Timestamp | epoch ms         | YYYY-MM-DD HH:MM:SS[.f]   |
| io.debezium.time.MicroTimestamp / NanoTimestamp                 | epoch µs / ns        | YYYY-MM-DD HH:MM:SS[.f]   |
| io.debezium.time.Date, org.apache.kafka.connect.data.Date       | days since epoch     | YYYY-MM-DD                |
| io.debezium.time.Time, MicroTime, NanoTime, ...connect.data.Time | ms / µs / ns of day | HH:MM:SS[.f]              |
| anything else (ZonedTimestamp strings, Enum, Json, ...)         | as sent              | canonical_value           |

Without a schema the logical type is unknown, so an integer stays an integer (a DATE column arrives as
epoch milliseconds text, e.g. "1709647330000") and a Decimal stays its base64 text; only the
VariableScaleDecimal object shape (exactly the fields `scale` and `value`) is recognised, because it
cannot be mistaken for anything else. Configure schemas, or `decimal.handling.mode=string` and
`time.precision.mode=connect`/ISO strings upstream, to get typed text without a schema.

The unavailable-value placeholder (`__debezium_unavailable_value`, or its base64 form in a BYTES
column) means "not captured, keep the previous value": the column is left out of the image (absent).
"""

from __future__ import annotations

from typing import Any

from transforms.changes import DecodeError, Image
from transforms.decoders.json_documents import a_kind_of
from transforms.decoders.values import (
    canonical_value,
    date_text_from_days,
    decimal_text_from_base64,
    time_text_from_count,
    timestamp_text_from_epoch,
)

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
UNAVAILABLE_VALUE_BASE64 = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="

DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
TIMESTAMP_UNITS = {
    "io.debezium.time.Timestamp": "ms",
    "org.apache.kafka.connect.data.Timestamp": "ms",
    "io.debezium.time.MicroTimestamp": "us",
    "io.debezium.time.NanoTimestamp": "ns",
}
TIME_UNITS = {
    "io.debezium.time.Time": "ms",
    "org.apache.kafka.connect.data.Time": "ms",
    "io.debezium.time.MicroTime": "us",
    "io.debezium.time.NanoTime": "ns",
}
DATES = {"io.debezium.time.Date", "org.apache.kafka.connect.data.Date"}

FieldSchemas = dict[str, dict]


def struct_fields(schema: Any, what: str) -> FieldSchemas:
    """The field schemas of a Connect struct schema, by field name."""
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        raise DecodeError(f"{what} schema is not a struct with a `fields` list")
    fields: FieldSchemas = {}
    for field in schema["fields"]:
        if not isinstance(field, dict) or not isinstance(field.get("field"), str):
            raise DecodeError(f"{what} schema has a field entry without a `field` name: {field!r}")
        fields[field["field"]] = field
    return fields


def decode_image(raw: dict, schemas: FieldSchemas | None, what: str) -> Image:
    """The present columns of a before/after/key struct; placeholder columns are left out."""
    image: Image = {}
    for column, value in raw.items():
        if value == UNAVAILABLE_VALUE or value == UNAVAILABLE_VALUE_BASE64:
            continue
        try:
            if schemas is None:
                image[column] = _schemaless_value(value)
            elif column not in schemas:
                raise DecodeError("the message schema has no field for this column")
            else:
                image[column] = _typed_value(value, schemas[column])
        except DecodeError as exc:
            raise DecodeError(f"{what} column {column}: {exc}") from None
    return image


def _schemaless_value(value: Any) -> str | None:
    if isinstance(value, dict) and value.keys() == {"scale", "value"}:
        return _variable_scale_decimal(value)
    return canonical_value(value)


def _typed_value(value: Any, schema: dict) -> str | None:
    if value is None:
        return None
    name = schema.get("name")
    if name == DECIMAL:
        return decimal_text_from_base64(value, _decimal_scale(schema))
    if name == VARIABLE_SCALE_DECIMAL:
        return _variable_scale_decimal(value)
    if name in TIMESTAMP_UNITS:
        return timestamp_text_from_epoch(value, TIMESTAMP_UNITS[name])
    if name in TIME_UNITS:
        return time_text_from_count(value, TIME_UNITS[name])
    if name in DATES:
        return date_text_from_days(value)
    return canonical_value(value)


def _decimal_scale(schema: dict) -> int:
    scale: Any = (schema.get("parameters") or {}).get("scale")  # int() refuses None with a TypeError
    try:
        return int(scale)
    except (TypeError, ValueError):
        raise DecodeError(f"Decimal schema has no integer `scale` parameter (got {scale!r})") from None


def _variable_scale_decimal(value: Any) -> str:
    if not isinstance(value, dict) or value.keys() != {"scale", "value"}:
        raise DecodeError(
            f"VariableScaleDecimal is {a_kind_of(value)}, not an object with `scale` and `value`"
        )
    scale = value["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise DecodeError(f"VariableScaleDecimal scale {scale!r} is not an integer")
    return decimal_text_from_base64(value["value"], scale)
