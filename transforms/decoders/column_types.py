"""Typed columns: every shape a CDC tool writes for a column the spec types, to ONE canonical text.

The decoders keep values as canonical text (values.py). For the columns a spec types (`columns:`),
this module converts that text, once, on the way into bronze (transforms.decoders.decode_for_spec),
into the exact form Spark's cast reads back, so silver's `try_cast` never meets a shape it cannot
read. A value that matches none of its type's accepted shapes, or that the type cannot hold without
changing it, raises DecodeError naming the column, the value and the accepted shapes: the record
goes to the quarantine with its raw bytes (never a silent NULL).

| type         | accepted                                                          | canonical text               |
|--------------|-------------------------------------------------------------------|------------------------------|
| timestamp    | YYYY-MM-DD[ T:]HH:MI:SS[.f{1,9}][zone], or YYYY-MM-DD (midnight)  | YYYY-MM-DD HH:MM:SS[.ffffff] |
| date         | YYYY-MM-DD, or a timestamp shape whose time is midnight           | YYYY-MM-DD                   |
| int, long    | JSON number or number text (exponent allowed), integral, in range | digits                       |
| decimal(p,s) | JSON number or number text (exponent allowed) that fits exactly   | plain, s fraction digits     |
| double       | JSON number or number text; NaN, Infinity, -Infinity              | shortest round-trip text     |
| boolean      | true/false, t/f, y/n, yes/no, 1/0 (any case)                      | true / false                 |
| string       | anything (untouched)                                              |                              |

Timestamps:
- Between date and time: a space, `T` or `:` (GoldenGate's default `1994-09-30:15:33:00`).
- Fraction: 0 to 9 digits. A Delta timestamp holds microseconds: digits 7-9 are TRUNCATED (never
  rounded up), except in a key column, where nonzero digits 7-9 are refused (two source keys could
  otherwise become one).
- zone (TIMESTAMP WITH TIME ZONE): optional, after the time or a space: `Z`, `UTC`, `GMT`, `+HH:MM`,
  `+HHMM`, `+HH` or a region name (`Europe/Berlin`). The value is converted to its UTC wall-clock
  time. Values without a zone (DATE, TIMESTAMP, TIMESTAMP WITH LOCAL TIME ZONE) are taken as they are:
  naive times are UTC in this project (Spark's session time zone is UTC).
- A site pattern (spec `timestamp_format`, GoldenGate's `gg.format.timestamp`) replaces these shapes
  for date and timestamp columns: values must then match the pattern exactly (see SitePattern).

Numbers never go through a float except for `double`: a value with more fraction digits than the
decimal's scale (nonzero ones), more integer digits than precision - scale, a fraction in an
integer column or an integer out of range is refused, where Spark's cast would round or give NULL.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from transforms.changes import ChangeRecord, DecodeError, Image
from transforms.decoders.values import MAX_EXPONENT

TIMESTAMP_SHAPES = (
    "YYYY-MM-DD[ T:]HH:MI:SS[.f{1,9}][zone] or YYYY-MM-DD "
    "(zone: Z, UTC, GMT, +HH:MM, +HHMM, +HH or a region like Europe/Berlin, after an optional space)"
)
DATE_SHAPES = "YYYY-MM-DD, or YYYY-MM-DD[ T:]HH:MI:SS[.f{1,9}][zone] at midnight"
INTEGER_SHAPES = "an integer: a JSON number or digit text, exponent allowed, no fraction"
DECIMAL_SHAPES = "a JSON number or decimal text (exponent allowed)"
DOUBLE_SHAPES = "a JSON number or decimal text (exponent allowed), NaN, Infinity or -Infinity"
BOOLEAN_SHAPES = "true/false, t/f, y/n, yes/no or 1/0 (any case)"

_ZONE = r"(?P<zone>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+)"
_DEFAULT_SHAPE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[ T:](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    rf"(?: ?{_ZONE})?)?"
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER_RANGES = {"int": 2**31, "long": 2**63}
_DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_TRUE = {"true", "t", "y", "yes", "1"}
_FALSE = {"false", "f", "n", "no", "0"}
_SPECIAL_DOUBLES = {"nan": "NaN", "infinity": "Infinity", "+infinity": "Infinity", "-infinity": "-Infinity"}
_MAX_DIGITS = 1000  # no column type holds a longer number
_VALUE_SHOWN = 80  # characters of a refused value quoted in the reason
_REMEMBERED = 4096  # texts each column's converter remembers


class Refused(ValueError):
    """A value its column type cannot hold; the message says why (no column name yet)."""


# --- timestamps and dates -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Moment:
    """A parsed date-time: naive UTC wall-clock time (microseconds) and the nanoseconds below them."""

    at: datetime
    nanos: int = 0  # digits 7-9 of the fraction, 0..999


def parse_moment(text: str, pattern: SitePattern | None = None) -> Moment:
    """The moment `text` names, in the default shapes or the site pattern; Refused if none matches."""
    match = (pattern.regex if pattern else _DEFAULT_SHAPE).fullmatch(text)
    if match is None:
        raise Refused("matches no accepted shape")
    fields = match.groupdict()
    fraction = fields.get("fraction") or ""
    hour = int(fields.get("hour") or 0)
    if fields.get("hour12") is not None:
        hour = int(fields["hour12"])
        if not 1 <= hour <= 12:
            raise Refused(f"hour {hour} is not 1-12")
        hour = hour % 12 + (12 if fields["ampm"].upper() == "PM" else 0)
    try:
        at = datetime(
            int(fields["year"]),
            int(fields["month"]),
            int(fields["day"]),
            hour,
            int(fields.get("minute") or 0),
            int(fields.get("second") or 0),
            int(fraction[:6].ljust(6, "0")),
        )
    except ValueError as exc:
        raise Refused(f"is not a valid date and time ({exc})") from None
    nanos = int(fraction[6:9].ljust(3, "0"))
    zone = fields.get("zone")
    if zone is not None:
        at = _to_utc(at, zone)
    return Moment(at, nanos)


def _to_utc(at: datetime, zone: str) -> datetime:
    if zone in ("Z", "UTC", "GMT"):
        return at
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 18 or minutes > 59:
            raise Refused(f"has a zone offset {zone} out of range")
        zone_info: tzinfo = timezone(timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1))
    else:
        try:
            zone_info = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Refused(f"names an unknown time zone {zone!r}") from None
    try:
        return at.replace(tzinfo=zone_info).astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise Refused("is out of range once converted to UTC") from None


def timestamp_text(text: str, pattern: SitePattern | None = None, *, key: bool = False) -> str:
    """`YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) of a timestamp value; see the module doc for the rules."""
    moment = parse_moment(text, pattern)
    if key and moment.nanos:
        raise Refused(
            "has nanoseconds (fraction digits 7-9) a Delta timestamp cannot hold, and in a key column "
            "truncating them could make two source keys one; declare the key column string"
        )
    return moment.at.isoformat(sep=" ")


def date_text(text: str, pattern: SitePattern | None = None) -> str:
    """`YYYY-MM-DD` of a date value: a date, or a date-time at midnight (Oracle DATE)."""
    moment = parse_moment(text, pattern)
    if moment.at.time() != datetime.min.time() or moment.nanos:
        raise Refused(
            f"has a time of day ({moment.at.time().isoformat()}) a date column cannot hold; "
            "declare the column timestamp"
        )
    return moment.at.date().isoformat()


# --- numbers and booleans -------------------------------------------------------------------------


def _number(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise Refused("is not a number")
    if len(text) > _MAX_DIGITS:
        raise Refused(f"has more than {_MAX_DIGITS} characters")
    number = Decimal(text)
    if abs(_exponent(number)) > MAX_EXPONENT:
        raise Refused(f"has an exponent beyond ±{MAX_EXPONENT}")
    return number


def _exponent(number: Decimal) -> int:
    """The exponent of a number _number() accepted: _NUMBER admits only finite numbers, and only NaN and
    infinity have a non-integer exponent ('n', 'N', 'F')."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int), number
    return exponent


def _unscaled(number: Decimal, scale: int) -> int | None:
    """number * 10**scale as an exact integer, or None when that needs rounding."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), number  # a number _number() accepted is finite (see _exponent)
    magnitude = int("".join(map(str, digits)) or "0")
    shift = exponent + scale
    if shift >= 0:
        unscaled = magnitude * 10**shift
    else:
        unscaled, rest = divmod(magnitude, 10**-shift)
        if rest:
            return None
    return -unscaled if sign else unscaled


def integer_text(text: str, type_name: str) -> str:
    value = _unscaled(_number(text), 0)
    if value is None:
        raise Refused(f"has a fraction; an integer column ({type_name}) cannot hold it")
    bound = _INTEGER_RANGES[type_name]
    if not -bound <= value < bound:
        raise Refused(f"is out of the {type_name} range [{-bound}, {bound - 1}]")
    return str(value)


def decimal_column_text(text: str, precision: int, scale: int) -> str:
    value = _unscaled(_number(text), scale)
    if value is None:
        raise Refused(f"has more than {scale} fraction digits; decimal({precision},{scale}) would round it")
    if abs(value) >= 10**precision:
        raise Refused(
            f"has more than {precision - scale} integer digits; decimal({precision},{scale}) cannot hold it"
        )
    digits = str(abs(value)).rjust(scale + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}" if scale else f"{sign}{digits}"


def double_text(text: str) -> str:
    special = _SPECIAL_DOUBLES.get(text.lower())
    if special is not None:
        return special
    number = float(_number(text))
    if number in (float("inf"), float("-inf")):
        raise Refused("is beyond the double range")
    return repr(number)


def boolean_text(text: str) -> str:
    lowered = text.lower()
    if lowered in _TRUE:
        return "true"
    if lowered in _FALSE:
        return "false"
    raise Refused("is not a boolean")


# --- one converter per column type ----------------------------------------------------------------

Converter = Callable[[str], str]


def converter(
    type_name: str, pattern: SitePattern | None = None, *, key: bool = False
) -> tuple[Converter, str] | None:
    """(text -> canonical text, the accepted shapes) for a spec column type; None for string."""
    site = f"the site pattern {pattern.pattern!r}" if pattern else None
    if type_name == "timestamp":
        return (lambda text: timestamp_text(text, pattern, key=key)), site or TIMESTAMP_SHAPES
    if type_name == "date":
        return (lambda text: date_text(text, pattern)), (f"{site} at midnight" if site else DATE_SHAPES)
    if type_name in _INTEGER_RANGES:
        return (lambda text: integer_text(text, type_name)), INTEGER_SHAPES
    if type_name == "double":
        return double_text, DOUBLE_SHAPES
    if type_name == "boolean":
        return boolean_text, BOOLEAN_SHAPES
    decimal = _DECIMAL_TYPE.fullmatch(type_name)
    if decimal:
        precision, scale = int(decimal[1]), int(decimal[2])
        return (
            lambda text: decimal_column_text(text, precision, scale)
        ), f"{DECIMAL_SHAPES} fitting {type_name}"
    if type_name == "string":
        return None
    raise ValueError(f"unknown column type {type_name!r}")


def typed_value(
    text: str | None, type_name: str, pattern: SitePattern | None = None, *, key: bool = False
) -> str | None:
    """The canonical text of one value of a `type_name` column (None stays None); Refused with the
    reason and the accepted shapes when the type cannot hold it."""
    found = converter(type_name, pattern, key=key)
    if text is None or found is None:
        return text
    convert, shapes = found
    try:
        return convert(text)
    except Refused as exc:
        raise Refused(_reason(text, exc, type_name, shapes)) from None


def _reason(text: str, refused: Refused, type_name: str, shapes: str) -> str:
    shown = repr(text if len(text) <= _VALUE_SHOWN else text[:_VALUE_SHOWN] + "...")
    return f"{shown} {refused}. Accepted for {type_name}: {shapes}"


class _Remembered:
    """A converter that remembers what it returned for recent texts: values repeat (the timestamps of
    one transaction, prices, dates), and a dict lookup is much cheaper than parsing again."""

    __slots__ = ("convert", "seen")

    def __init__(self, convert: Converter) -> None:
        self.convert = convert
        self.seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        found = self.seen.get(text)
        if found is None:
            found = self.convert(text)  # a refused text raises and is not remembered
            if len(self.seen) >= _REMEMBERED:
                self.seen.clear()
            self.seen[text] = found
        return found


class TypedColumns:
    """The spec's typed columns applied to change records: after and before images, key, old key."""

    def __init__(self, column_types: Mapping[str, str], keys: list[str], timestamp_format: str | None = None):
        pattern = site_pattern(timestamp_format) if timestamp_format else None
        self.columns: dict[str, tuple[str, Converter, str]] = {}
        for column, type_name in column_types.items():
            found = converter(type_name, pattern, key=column in keys)
            if found is not None:
                self.columns[column] = (type_name, _Remembered(found[0]), found[1])

    def type_in_place(self, change: ChangeRecord) -> None:
        """Replace the typed columns' values in the record's images and keys by their canonical text.
        For records decode() has just built (their dicts are the record's own); DecodeError names the
        image, the column, the value and the accepted shapes. Images first, so a refusal names the
        image the value came from."""
        for image, what in (
            (change.after, "`after`"),
            (change.before, "`before`"),
            (change.key, "key"),
            (change.old_key, "old key"),
        ):
            if image:
                self._image(image, what)

    def _image(self, image: Image | dict[str, str], what: str) -> None:
        for column, (type_name, convert, shapes) in self.columns.items():
            text = image.get(column)
            if text is None:
                continue
            try:
                image[column] = convert(text)
            except Refused as exc:
                raise DecodeError(
                    f"{what} column {column}: {_reason(text, exc, type_name, shapes)}"
                ) from None


# --- the site pattern (gg.format.timestamp) -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SitePattern:
    """A `gg.format.timestamp` pattern (Java DateTimeFormatter letters) compiled to a regex.

    Letters: yyyy/uuuu year; MM or M month; dd or d day; HH or H hour 0-23; hh or h hour 1-12 with a
    AM/PM; mm or m minute; ss or s second; S..S (1-9) exactly that many fraction digits;
    X, XX, XXX, x, xx, xxx, Z offsets (`Z` or +HH, +HHMM, +HH:MM); VV a region name. 'text' is a
    literal, '' a quote; other characters stand for themselves. Year, month and day are required.
    """

    pattern: str
    regex: re.Pattern


_LETTER_FIELDS = {
    "y": {4: r"(?P<year>\d{4})"},
    "u": {4: r"(?P<year>\d{4})"},
    "M": {1: r"(?P<month>\d{1,2})", 2: r"(?P<month>\d{2})"},
    "d": {1: r"(?P<day>\d{1,2})", 2: r"(?P<day>\d{2})"},
    "H": {1: r"(?P<hour>\d{1,2})", 2: r"(?P<hour>\d{2})"},
    "h": {1: r"(?P<hour12>\d{1,2})", 2: r"(?P<hour12>\d{2})"},
    "m": {1: r"(?P<minute>\d{1,2})", 2: r"(?P<minute>\d{2})"},
    "s": {1: r"(?P<second>\d{1,2})", 2: r"(?P<second>\d{2})"},
    "a": {1: r"(?P<ampm>[AaPp][Mm])"},
    "X": {
        1: r"(?P<zone>Z|[+-]\d{2}(?:\d{2})?)",
        2: r"(?P<zone>Z|[+-]\d{4})",
        3: r"(?P<zone>Z|[+-]\d{2}:\d{2})",
    },
    "x": {1: r"(?P<zone>[+-]\d{2}(?:\d{2})?)", 2: r"(?P<zone>[+-]\d{4})", 3: r"(?P<zone>[+-]\d{2}:\d{2})"},
    "Z": {1: r"(?P<zone>[+-]\d{4})", 2: r"(?P<zone>[+-]\d{4})", 3: r"(?P<zone>[+-]\d{4})"},
    "V": {2: r"(?P<zone>[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+|UTC|GMT|Z)"},
}


def _field_name(regex: str) -> str:
    """The group name a _LETTER_FIELDS regex starts with (each starts with one: `(?P<name>`)."""
    named = re.match(r"\(\?P<(\w+)>", regex)
    assert named is not None, regex
    return named[1]


@lru_cache(maxsize=64)
def site_pattern(pattern: str) -> SitePattern:
    """Compile a site pattern; ValueError names what is wrong with it."""
    parts, index, seen = [], 0, set()
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            end = pattern.find("'", index + 1)
            if end < 0:
                raise ValueError(f"pattern {pattern!r}: unclosed quote at character {index + 1}")
            literal = pattern[index + 1 : end]
            parts.append(re.escape(literal if literal else "'"))
            index = end + 1
            continue
        if not char.isalpha():
            parts.append(re.escape(char))
            index += 1
            continue
        run = len(pattern) - index - len(pattern[index:].lstrip(char))
        if char == "S":
            if run > 9:
                raise ValueError(f"pattern {pattern!r}: at most 9 fraction digits (S)")
            field, regex = "fraction", rf"(?P<fraction>\d{{{run}}})"
        else:
            forms = _LETTER_FIELDS.get(char)
            if forms is None or run not in forms:
                raise ValueError(
                    f"pattern {pattern!r}: {char * run!r} is not supported (use yyyy, MM, dd, HH, "
                    "hh with a, mm, ss, S..S, X/XX/XXX, x/xx/xxx, Z, VV or 'quoted text')"
                )
            regex = forms[run]
            field = _field_name(regex)
        if field in seen:
            raise ValueError(f"pattern {pattern!r}: {char * run!r} repeats a field")
        seen.add(field)
        parts.append(regex)
        index += run
    missing = [f for f in ("year", "month", "day") if f not in seen]
    if missing:
        raise ValueError(f"pattern {pattern!r}: needs the {', '.join(missing)} (yyyy, MM, dd)")
    if ("hour12" in seen) != ("ampm" in seen):
        raise ValueError(f"pattern {pattern!r}: hh (1-12) needs a (AM/PM), and a needs hh")
    if "hour" in seen and "hour12" in seen:
        raise ValueError(f"pattern {pattern!r}: use HH or hh, not both")
    return SitePattern(pattern, re.compile("".join(parts)))
