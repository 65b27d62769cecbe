"""CDC message decoders: one Kafka message in, the ChangeRecords it holds out.

    decode(message, format="goldengate_json", keys=["ROW_ID"])            # -> list[ChangeRecord]
    decode(message, format="debezium_json", keys=["ROW_ID"], sequence_by=["commit_scn", "scn", "ssn"])

Returns one record per operation: several for a GoldenGate tx-mode value, none for a Debezium tombstone,
`m` message or transaction-metadata record. Raises DecodeError, with what was wrong and where, for
anything it cannot decode (the caller quarantines the message); nothing is dropped silently.
Format details: goldengate.py, debezium.py, debezium_types.py; value canonicalization: values.py.

    decode_for_spec(message, spec)    # what bronze, the backfills and the CLI call

is decode() with a table spec's settings, plus its typed columns: the changes of the spec's table get
every typed value (key, old key, before, after) in the one canonical text its type has, or the message
is refused with the column, the value and the accepted shapes (column_types.py).
"""

from __future__ import annotations

from typing import Protocol

from transforms.changes import ChangeRecord, DecodeError, KafkaMessage
from transforms.decoders.column_types import TypedColumns
from transforms.decoders.debezium import decode_debezium
from transforms.decoders.goldengate import decode_goldengate

DECODERS = {
    "goldengate_json": decode_goldengate,
    "debezium_json": decode_debezium,
}
FORMAT_NAMES = {"goldengate_json": "GoldenGate", "debezium_json": "Debezium"}


class DecodingSpec(Protocol):
    """What decode_for_spec reads of a table spec (transforms.specs.table.TableSpec). Read-only
    properties: a spec's narrower types (its `format` is a Literal) satisfy them."""

    @property
    def table(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def keys(self) -> list[str]: ...
    @property
    def sequence_by(self) -> list[str] | None: ...
    @property
    def columns(self) -> dict[str, str]: ...
    @property
    def timestamp_format(self) -> str | None: ...


def decode(
    message: KafkaMessage, *, format: str, keys: list[str], sequence_by: list[str] | None = None
) -> list[ChangeRecord]:
    """The change records in one Kafka message (see the module doc). Bad arguments raise ValueError."""
    if format not in DECODERS:
        raise ValueError(f"unknown format {format!r}; expected one of {sorted(DECODERS)}")
    if not keys:
        raise ValueError("keys must name at least one column")
    return DECODERS[format](message, list(keys), list(sequence_by) if sequence_by else None)


def decode_for_spec(message: KafkaMessage, spec: DecodingSpec) -> list[ChangeRecord]:
    """decode() with the spec's format, keys and sequence; the changes of `spec.table` come back with
    their typed columns in canonical text (see the module doc). Changes of other tables sharing the
    topic come back untouched (the caller skips or refuses them)."""
    changes = decode(message, format=spec.format, keys=spec.keys, sequence_by=spec.sequence_by)
    typing = _typed_columns(spec)
    for number, change in enumerate(changes, start=1):
        if change.table != spec.table:
            continue
        try:
            typing.type_in_place(change)
        except DecodeError as exc:
            where = f"{FORMAT_NAMES[spec.format]} message"
            if len(changes) > 1:
                where += f" (change {number} of {len(changes)})"
            raise DecodeError(f"{where}: {exc}") from None
    return changes


_TYPINGS: dict[int, tuple[DecodingSpec, TypedColumns]] = {}


def _typed_columns(spec: DecodingSpec) -> TypedColumns:
    """One TypedColumns per spec object (specs are frozen; the entry keeps the spec, so its id is not
    reused while cached)."""
    cached = _TYPINGS.get(id(spec))
    if cached is None or cached[0] is not spec:
        if len(_TYPINGS) >= 1024:
            _TYPINGS.clear()
        cached = _TYPINGS[id(spec)] = (spec, TypedColumns(spec.columns, spec.keys, spec.timestamp_format))
    return cached[1]
