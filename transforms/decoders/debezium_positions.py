"""Debezium positions: per connector, the fields that order its changes and how each becomes an integer.

A position is a tuple of non-negative integers, most significant first; ChangeRecord.sequence appends
the Kafka offset as the last tiebreak. Its first component is the commit position the consistent cut
uses (transforms.cut). The connector is `source.connector` of each message.

| connector        | default position (no `sequence_by`)         | first component: shared by a transaction? |
|------------------|---------------------------------------------|-------------------------------------------|
| oracle           | commit_scn (scn if null), scn, ssn          | commit_scn: yes                           |
| postgresql       | lsn                                         | the change's own lsn: no                  |
| mysql, mariadb   | binlog file number, pos, row                | the binlog file number: yes, but coarse   |
| sqlserver        | commit_lsn, change_lsn, event_serial_no     | commit_lsn: yes                           |
| db2              | commit_lsn, change_lsn                      | commit_lsn: yes                           |

How values become integers:
- SCNs, Postgres `lsn`, `pos`, `row`, `ssn`, `event_serial_no`, `total_order`: a JSON integer or a
  string of decimal digits, read as a number (so SCN "10000000" is above "9999999").
- MySQL/MariaDB `file`: the number after the last dot (`mysql-bin.000003` -> 3; `mysql-bin.1000000`
  is above `mysql-bin.999999`); the empty name some snapshot rows carry is 0.
- SQL Server LSNs are three hex groups `xxxxxxxx:xxxxxxxx:xxxx` (4, 4 and 2 bytes), ordered group by
  group; the position holds them as one integer, (g1 << 48) | (g2 << 16) | g3, which orders them the
  same way. Db2 LSNs are written the same way, with a last group of 4 hex digits (10-byte LSNs) or 16
  (16-byte LSNs); their hex digits are read as one number. Upper- or lower-case hex.
- `change_lsn`, `event_serial_no`, `ssn` and `row` are null in some events (SQL Server and Db2
  snapshot rows carry only `commit_lsn`): null is 0, so a snapshot row sorts before the changes
  committed at the same LSN. Every other field must be present.
- `total_order` is read from the `transaction` block (transaction metadata), the others from `source`.

`sequence_by` names fields of the connector's own list (POSITION_FIELDS); a name the connector does
not have is a DecodeError naming the connector and its fields. A connector not listed here has no
default; with `sequence_by` its named fields are read as decimal integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transforms.changes import DecodeError
from transforms.decoders.fields import position_number

Reader = Callable[[Any, str], int]

_HEX = "[0-9a-fA-F]"
_SQLSERVER_LSN = re.compile(f"{_HEX}{{8}}:{_HEX}{{8}}:{_HEX}{{4}}")
_DB2_LSN = re.compile(f"{_HEX}{{8}}:{_HEX}{{8}}:(?:{_HEX}{{4}}|{_HEX}{{16}})")


def binlog_file_number(value: Any, field: str) -> int:
    """3 for `mysql-bin.000003`; 0 for the empty name some snapshot records carry."""
    if value == "":
        return 0
    if not isinstance(value, str) or "." not in value:
        raise DecodeError(f"`{field}` is {value!r}, not a binlog file name like mysql-bin.000003")
    return position_number(value.rsplit(".", 1)[1], f"{field} (number suffix)")


def _lsn_reader(shape: re.Pattern[str], description: str) -> Reader:
    def read_lsn(value: Any, field: str) -> int:
        if isinstance(value, str) and shape.fullmatch(value):
            return int(value.replace(":", ""), 16)
        if value is None:
            raise DecodeError(f"`{field}` is null or missing; the position needs it")
        raise DecodeError(f"`{field}` is {value!r}, not {description}; the position needs one")

    return read_lsn


sqlserver_lsn = _lsn_reader(_SQLSERVER_LSN, "a SQL Server LSN (hex groups xxxxxxxx:xxxxxxxx:xxxx)")
db2_lsn = _lsn_reader(_DB2_LSN, "a Db2 LSN (hex groups xxxxxxxx:xxxxxxxx: then 4 or 16 hex digits)")


@dataclass(frozen=True)
class PositionField:
    read: Reader
    null_is_zero: bool = False  # null or absent in some events, and then first in order
    block: str = "source"  # or "transaction"


_NUMBER = PositionField(position_number)
_NUMBER_OR_ZERO = PositionField(position_number, null_is_zero=True)
_TOTAL_ORDER = PositionField(position_number, block="transaction")
_BINLOG = {
    "file": PositionField(binlog_file_number),
    "pos": _NUMBER,
    "row": _NUMBER_OR_ZERO,
    "total_order": _TOTAL_ORDER,
}

POSITION_FIELDS: dict[str, dict[str, PositionField]] = {
    "oracle": {"commit_scn": _NUMBER, "scn": _NUMBER, "ssn": _NUMBER_OR_ZERO, "total_order": _TOTAL_ORDER},
    "postgresql": {"lsn": _NUMBER, "total_order": _TOTAL_ORDER},
    "mysql": _BINLOG,
    "mariadb": _BINLOG,
    "sqlserver": {
        "commit_lsn": PositionField(sqlserver_lsn),
        "change_lsn": PositionField(sqlserver_lsn, null_is_zero=True),
        "event_serial_no": _NUMBER_OR_ZERO,
        "total_order": _TOTAL_ORDER,
    },
    "db2": {
        "commit_lsn": PositionField(db2_lsn),
        "change_lsn": PositionField(db2_lsn, null_is_zero=True),
        "total_order": _TOTAL_ORDER,
    },
}
"""Per connector (`source.connector`), the fields `sequence_by` may name."""

DEFAULT_SEQUENCE_BY: dict[str, list[str]] = {
    "oracle": ["commit_scn", "scn", "ssn"],  # commit_scn falls back to scn (_oracle_default)
    "postgresql": ["lsn"],
    "mysql": ["file", "pos", "row"],
    "mariadb": ["file", "pos", "row"],
    "sqlserver": ["commit_lsn", "change_lsn", "event_serial_no"],
    "db2": ["commit_lsn", "change_lsn"],
}
"""Per connector, the position without `sequence_by`: a total order of its changes."""


def every_position_field() -> set[str]:
    """The fields some connector has: what a spec's `sequence_by` may name before any message is seen."""
    return {name for fields in POSITION_FIELDS.values() for name in fields}


def describe_position_fields() -> str:
    """`oracle: commit_scn, scn, ssn, total_order; postgresql: lsn, total_order; ...`"""
    return "; ".join(f"{connector}: {', '.join(fields)}" for connector, fields in POSITION_FIELDS.items())


def position(source: dict, transaction: dict | None, sequence_by: list[str] | None) -> tuple[int, ...]:
    """The position of one change event (see the module doc)."""
    connector = source.get("connector")
    if connector not in POSITION_FIELDS:
        if sequence_by:
            return tuple(_plain_number(name, source, transaction) for name in sequence_by)
        raise DecodeError(
            f"no default position for connector {connector!r} (there is one for {', '.join(DEFAULT_SEQUENCE_BY)});"
            " name the fields in the spec's sequence_by"
        )
    if sequence_by:
        return tuple(_field_value(connector, name, source, transaction) for name in sequence_by)
    if connector == "oracle":
        return _oracle_default(source, transaction)
    return tuple(
        _field_value(connector, name, source, transaction) for name in DEFAULT_SEQUENCE_BY[connector]
    )


def _field_value(connector: str, name: str, source: dict, transaction: dict | None) -> int:
    fields = POSITION_FIELDS[connector]
    if name not in fields:
        raise DecodeError(
            f"sequence_by names {name!r}, which connector {connector!r} does not have;"
            f" its position fields are {', '.join(fields)}"
        )
    spec = fields[name]
    block = source if spec.block == "source" else (transaction or {})
    value = block.get(name)
    if value is None and spec.null_is_zero:
        return 0
    return spec.read(value, f"{spec.block}.{name}")


def _oracle_default(source: dict, transaction: dict | None) -> tuple[int, ...]:
    """commit_scn, scn, ssn; an event without commit_scn (a snapshot row, XStream) is committed at its scn."""
    scn = _field_value("oracle", "scn", source, transaction)
    ssn = _field_value("oracle", "ssn", source, transaction)
    if source.get("commit_scn") is None:
        return (scn, scn, ssn)
    return (_field_value("oracle", "commit_scn", source, transaction), scn, ssn)


def _plain_number(name: str, source: dict, transaction: dict | None) -> int:
    if name not in source and transaction is not None and name in transaction:
        return position_number(transaction[name], f"transaction.{name}")
    return position_number(source.get(name), f"source.{name}")
