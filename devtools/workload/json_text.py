"""Compact JSON text that keeps dict order and writes Decimal numbers exactly as they are (17520.00),
the way GoldenGate writes the trail's number text. The standard json module cannot write a Decimal."""

from __future__ import annotations

from decimal import Decimal
from json.encoder import encode_basestring  # JSON string literal, non-ASCII kept (ensure_ascii=False)
from typing import Any


def dumps(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        text = str(value)
        if "E" in text or "e" in text or not value.is_finite():
            raise ValueError(f"decimal {value!r} has no plain JSON number text")
        return text
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{encode_basestring(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dump_bytes(value: Any) -> bytes:
    return dumps(value).encode("utf-8")
