"""Small helpers both decoders share: key columns out of an image, and position numbers."""

from __future__ import annotations

import re
from typing import Any

from transforms.changes import DecodeError, Image

_DIGITS = re.compile(r"[0-9]+")


def key_or_none(image: Image | None, keys: list[str], name: str) -> dict[str, str] | None:
    """The key columns of `image` (called `name` in errors), or None when the image is missing or lacks
    one of them. A key column that is present but null is an error: a source row always has its key,
    and silver cannot store a row under a null key (the record goes to the quarantine instead)."""
    if image is None or any(column not in image for column in keys):
        return None
    key: dict[str, str] = {}
    for column in keys:
        value = image[column]
        if value is None:
            raise DecodeError(f"{name}: key column {column} is null; a row needs every key column set")
        key[column] = value
    return key


def missing_key_column(image: Image | None, keys: list[str]) -> str:
    """The first key column `image` lacks (call only when key_or_none returned None)."""
    return next(column for column in keys if image is None or column not in image)


def position_number(value: Any, field: str) -> int:
    """A non-negative integer from a JSON integer or a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if value is None:
        raise DecodeError(f"`{field}` is null or missing; the position needs it")
    raise DecodeError(f"`{field}` is {value!r}, not a non-negative integer; the position needs one")
