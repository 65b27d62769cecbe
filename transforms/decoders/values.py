"""Canonical column values: every source value becomes `str | None` without losing anything.

- JSON strings stay exactly as sent (unicode, CHAR padding, text that happens to look like a date).
- Numbers are exact decimals written in plain notation (`17520.00` stays `17520.00`, `1E+2` becomes
  `100`, 40-digit values keep every digit); no float is ever involved.
- Booleans are `true` / `false`; nested objects and arrays become canonical JSON text (sorted keys, no
  spaces, numbers exact), the same form as `transforms.changes.canonical_json`, up to MAX_NESTING
  levels deep (deeper is refused, not a RecursionError).
- Timestamps decoded from epoch numbers are written `YYYY-MM-DD HH:MM:SS[.ffffff]`, with nine fraction
  digits only when the nanoseconds are not a whole microsecond (so nothing is rounded away).

Every failure raises DecodeError with a short reason; callers add where it happened.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from transforms.changes import DecodeError

MAX_EXPONENT = 1000  # a plain-notation number longer than this many digits is not a column value
MAX_NESTING = 200  # levels of arrays and objects in one value; deeper is refused (json_text recurses)

_EPOCH = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)
_UNITS_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_SOURCE_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ :T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")


def canonical_value(value: Any) -> str | None:
    """The canonical text of one parsed JSON value (see the module doc)."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return checked_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict | list):
        return json_text(value)
    raise DecodeError(f"unsupported value type {type(value).__name__}")


def checked_text(text: str) -> str:
    """The text itself, unless it holds an unpaired surrogate (a `\\ud800` escape) that no UTF-8 store accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DecodeError(
            f"string holds an unpaired UTF-16 surrogate {text[exc.start]!r} at character {exc.start}"
        ) from None
    return text


def decimal_text(number: Decimal) -> str:
    """Exact plain notation of a decimal: digits and scale kept, exponent notation expanded."""
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N' or 'F': a NaN, a signalling NaN or an infinity
        raise DecodeError(f"{number} is not a finite number")
    if abs(exponent) > MAX_EXPONENT:
        raise DecodeError(f"number {number} has an exponent beyond ±{MAX_EXPONENT}")
    return format(number, "f")


def json_text(value: Any, depth: int = 0) -> str:
    """Canonical JSON text (sorted keys, no spaces, exact numbers) of a parsed JSON value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(checked_text(value), ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, list | dict) and depth >= MAX_NESTING:
        raise DecodeError(nesting_reason())
    if isinstance(value, list):
        return "[" + ",".join(json_text(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json_text(name)}:{json_text(item, depth + 1)}" for name, item in items) + "}"
    raise DecodeError(f"unsupported value type {type(value).__name__}")


def nesting_reason() -> str:
    return f"arrays and objects nested too deeply (more than {MAX_NESTING} levels)"


def parse_source_timestamp(text: Any) -> datetime:
    """A naive datetime from `YYYY-MM-DD[ :T]HH:MI:SS(.f{1,9})?` (GoldenGate `op_ts`).

    datetime holds microseconds: digits 7-9 of the fraction are truncated, never rounded up.
    """
    if not isinstance(text, str):
        raise DecodeError(f"timestamp {text!r} is not a string")
    match = _SOURCE_TIMESTAMP.fullmatch(text)
    if match is None:
        raise DecodeError(f"timestamp {text!r} does not match YYYY-MM-DD[ :T]HH:MI:SS[.fffffffff]")
    year, month, day, hour, minute, second, fraction = match.groups()
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond)
    except ValueError as exc:
        raise DecodeError(f"timestamp {text!r} is not a valid date and time: {exc}") from None


def datetime_from_epoch_ms(value: Any) -> datetime:
    """Naive UTC datetime of an epoch in milliseconds (Debezium `source.ts_ms`)."""
    seconds, nanos = _split_epoch(value, "ms")
    return _epoch_plus(seconds) + timedelta(microseconds=nanos // 1000)


def timestamp_text_from_epoch(value: Any, unit: str) -> str:
    """`YYYY-MM-DD HH:MM:SS[.ffffff]` of an epoch count of `unit` (ms, us or ns) as wall clock time."""
    seconds, nanos = _split_epoch(value, unit)
    return _epoch_plus(seconds).isoformat(sep=" ") + _fraction_text(nanos)


def time_text_from_count(value: Any, unit: str) -> str:
    """`HH:MM:SS[.ffffff]` of a time of day counted in `unit` (ms, us or ns) since midnight."""
    seconds, nanos = _split_epoch(value, unit)
    if not 0 <= seconds < 24 * 3600:
        raise DecodeError(f"time of day {value} {unit} is outside one day")
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}" + _fraction_text(nanos)


def date_text_from_days(value: Any) -> str:
    """`YYYY-MM-DD` of a count of days since 1970-01-01."""
    _require_int(value, "days")
    try:
        return (_EPOCH_DATE + timedelta(days=value)).isoformat()
    except OverflowError:
        raise DecodeError(f"date {value} days since 1970-01-01 is out of range") from None


def decimal_text_from_base64(encoded: Any, scale: int) -> str:
    """A Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value, with a scale."""
    if not isinstance(encoded, str):
        raise DecodeError(f"decimal value {encoded!r} is not a base64 string")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise DecodeError(f"decimal value {encoded!r} is not valid base64") from None
    if not raw:
        raise DecodeError("decimal value is empty")
    unscaled = int.from_bytes(raw, "big", signed=True)
    return decimal_text(Decimal(f"{unscaled}E{-scale}"))


def _require_int(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"{what} {value!r} is not an integer")


def _split_epoch(value: Any, unit: str) -> tuple[int, int]:
    _require_int(value, unit)
    per_second = _UNITS_PER_SECOND[unit]
    seconds, fraction = divmod(value, per_second)
    return seconds, fraction * (1_000_000_000 // per_second)


def _epoch_plus(seconds: int) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise DecodeError(f"epoch {seconds} s is out of the datetime range") from None


def _fraction_text(nanos: int) -> str:
    if nanos == 0:
        return ""
    if nanos % 1000 == 0:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"
