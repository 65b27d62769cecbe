"""The normalized change record every decoder produces and every later stage consumes.

Column values are text or None. Decoders turn each source value into one canonical string (exact
decimals as written, timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]`, booleans `true`/`false`), so no
precision is lost on the way to the lake; for the columns a spec types, decode_for_spec writes the one
canonical text of the type (transforms/decoders/column_types.py), which silver casts exactly.

ABSENT versus NULL: an image holds only the columns the change carries. A column missing from the
dict is unknown/unchanged; a column present with value None is a real NULL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from transforms.sequence import encode_sequence

Image = dict[str, str | None]


class Op(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    TRUNCATE = "truncate"


@dataclass(frozen=True)
class KafkaCoordinates:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class ChangeRecord:
    """One operation on one source row (or, for TRUNCATE, on one table).

    - table: the source table as the CDC tool names it (GoldenGate `table`, Debezium `<schema>.<table>`).
    - key: the key columns and their values after the change (before it, for a delete); {} for truncate.
      A key value is never null (decoders refuse a null key column).
    - before / after: present columns only (see module doc); None when the message has no such image.
    - full_image: True when `after` carries every column of the row (insert, snapshot read).
    - old_key: set when the change moves the row to a new key (primary-key update); `key` is the new one.
    - position: the format's own commit position, most significant first (e.g. (pos,) for GoldenGate);
      `sequence` appends the Kafka offset as the last tiebreak and encodes it (transforms.sequence).
    """

    table: str
    op: Op
    key: dict[str, str]
    before: Image | None
    after: Image | None
    full_image: bool
    position: tuple[int, ...]
    kafka: KafkaCoordinates
    commit_ts: datetime | None = None
    txid: str | None = None
    old_key: dict[str, str] | None = None
    extra: dict[str, str] = field(default_factory=dict)  # e.g. GoldenGate tokens, Debezium snapshot flag

    @property
    def sequence(self) -> str:
        return encode_sequence((*self.position, self.kafka.offset))


class RecordContext(TypedDict):
    """The ChangeRecord fields one source message gives all its records (a decoder passes them as
    `**context`): everything but the op, the key and the images."""

    table: str
    position: tuple[int, ...]
    kafka: KafkaCoordinates
    commit_ts: datetime | None
    txid: str | None
    extra: dict[str, str]


def canonical_json(value: dict | None) -> str | None:
    """The one JSON text form used to store keys and images (sorted keys, no spaces)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class KafkaMessage:
    """A Kafka record as read, before decoding. `value` None is a tombstone (Debezium after a delete)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def coordinates(self) -> KafkaCoordinates:
        return KafkaCoordinates(self.topic, self.partition, self.offset, self.timestamp_ms)


class DecodeError(ValueError):
    """A message that cannot be turned into change records; the reason goes to the quarantine table."""
