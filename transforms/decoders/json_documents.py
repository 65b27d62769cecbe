"""Reading JSON from Kafka bytes: exact numbers, no silent loss, errors that say where.

- Numbers with a fraction or exponent parse to Decimal (exact), integers to int; NaN and Infinity are
  rejected (they are not JSON).
- An object that repeats a field name is an error (plain json.loads would keep the last one silently).
- A value may hold several concatenated documents (GoldenGate tx mode), separated by JSON whitespace
  or by nothing at all.
- Error positions are byte offsets into the Kafka value.
- Nesting deeper than the parser's recursion allows (thousands of `[`) is a DecodeError, not a
  RecursionError; values.json_text refuses more than MAX_NESTING levels anyway.
- A leading UTF-8 byte order mark is refused by name (JSON text exchanged between systems has none).
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from typing import Any

from transforms.changes import DecodeError
from transforms.decoders.values import nesting_reason

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not a JSON number")


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DecodeError(f"a JSON object repeats the field {name!r}")
            seen.add(name)
    return result


def _decoder(strict: bool) -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_float=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_object_without_repeats,
        strict=strict,
    )


_STRICT = _decoder(strict=True)
_LENIENT = _decoder(strict=False)  # allows raw control characters inside strings


def utf8_text(raw: bytes | bytearray | memoryview, what: str = "value") -> str:
    """UTF-8 text of Kafka bytes (Spark hands binary columns over as bytearray)."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what} is not UTF-8 at byte {exc.start}: {exc.reason}") from None


def _skip_whitespace(text: str, index: int) -> int:
    """The index of the first non-whitespace character at or after `index` (or the text's length)."""
    match = _WHITESPACE.match(text, index)
    assert match is not None  # the pattern matches the empty string, so it matches at every index
    return match.end()


def documents(raw: bytes | bytearray | memoryview, *, strict: bool = True) -> list[tuple[int, Any]]:
    """Every JSON document in `raw`, each with the byte offset where it starts."""
    text = utf8_text(raw)
    if text.startswith("\ufeff"):
        raise DecodeError(
            "the value starts with a UTF-8 byte order mark (bytes EF BB BF), which JSON does not allow"
        )
    decoder = _STRICT if strict else _LENIENT
    found: list[tuple[int, Any]] = []
    index = _skip_whitespace(text, 0)
    while index < len(text):
        try:
            document, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON at byte {_byte_offset(text, exc.pos)}: {exc.msg}") from None
        except DecodeError as exc:
            raise DecodeError(
                f"invalid JSON in the document at byte {_byte_offset(text, index)}: {exc}"
            ) from None
        except ValueError as exc:  # an integer longer than Python's int() digit limit is the one known case
            reason = str(exc)
            if "integer string conversion" in reason:
                reason = f"a number has more than {sys.get_int_max_str_digits()} digits"
            raise DecodeError(
                f"invalid JSON in the document at byte {_byte_offset(text, index)}: {reason}"
            ) from None
        except RecursionError:  # the C scanner recurses once per `[` or `{`
            raise DecodeError(
                f"invalid JSON in the document at byte {_byte_offset(text, index)}: {nesting_reason()}"
            ) from None
        found.append((_byte_offset(text, index), document))
        index = _skip_whitespace(text, end)
    if not found:
        raise DecodeError("the value holds no JSON document (it is empty or only whitespace)")
    return found


def single_document(raw: bytes | bytearray | memoryview, *, strict: bool = True) -> Any:
    """The one JSON document in `raw`; anything after it is an error."""
    found = documents(raw, strict=strict)
    if len(found) > 1:
        raise DecodeError(f"invalid JSON at byte {found[1][0]}: extra data after the first document")
    return found[0][1]


def kind_of(value: Any) -> str:
    """The JSON kind of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def a_kind_of(value: Any) -> str:
    """kind_of with its article, for error messages: `an array`, `a number`, `null`."""
    kind = kind_of(value)
    return kind if kind == "null" else ("an " if kind[0] in "ao" else "a ") + kind


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))
