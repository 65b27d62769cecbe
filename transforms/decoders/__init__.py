"""CDC message decoders: one Kafka message in, the ChangeRecords it holds out.

    decode(message, format="goldengate_json", keys=["ROW_ID"])            # -> list[ChangeRecord]
    decode(message, format="debezium_json", keys=["ROW_ID"], sequence_by=["commit_scn", "scn", "ssn"])

Returns one record per operation: several for a GoldenGate tx-mode value, none for a Debezium tombstone,
`m` message or transaction-metadata record. Raises DecodeError, with what was wrong and where, for
anything it cannot decode (the caller quarantines the message); nothing is dropped silently.
Format details: goldengate.py, debezium.py, debezium_types.py; value canonicalization: values.py.
"""

from __future__ import annotations

from transforms.changes import ChangeRecord, KafkaMessage
from transforms.decoders.debezium import decode_debezium
from transforms.decoders.goldengate import decode_goldengate

DECODERS = {
    "goldengate_json": decode_goldengate,
    "debezium_json": decode_debezium,
}


def decode(
    message: KafkaMessage, *, format: str, keys: list[str], sequence_by: list[str] | None = None
) -> list[ChangeRecord]:
    """The change records in one Kafka message (see the module doc). Bad arguments raise ValueError."""
    if format not in DECODERS:
        raise ValueError(f"unknown format {format!r}; expected one of {sorted(DECODERS)}")
    if not keys:
        raise ValueError("keys must name at least one column")
    return DECODERS[format](message, list(keys), list(sequence_by) if sequence_by else None)
