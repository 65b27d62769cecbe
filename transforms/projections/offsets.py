"""What a projection reflects, and the write-timestamp rule that keeps it from regressing.

Every projection keeps one partition of `<keyspace>.projection_offsets`:

    projection text, topic text, partition int, next_offset bigint   -- one row per Kafka topic-partition
    as_of_us, write_timestamp, gold_versions, spec, committed_at     -- static: the state last committed
    attempts                                                          -- static: batches begun, not committed

A batch's SOURCE POSITION is (as_of_us, gold versions, Kafka offsets): `as_of_us` is the newest source
commit time, in microseconds since the epoch, reflected by the gold versions being projected (the
caller computes it), the gold versions are the Delta versions read, the Kafka offsets (topic ->
partition -> next offset to consume) are those the gold versions reflect.

The rule (decide()):

1. A batch behind the committed position in ANY part (an older as_of_us, an older gold version, a
   smaller Kafka offset), or behind a batch that was begun and not committed, is REFUSED: nothing is
   written. Replays and late batches cannot overwrite newer data.
2. A batch at exactly the committed position, with the same spec, is a REPLAY: there is nothing to
   write (its rows are already there, at the recorded write timestamp).
3. Any other batch is NEWER and writes every row and delete `USING TIMESTAMP T` with
   T = max(as_of_us, highest T recorded (committed or begun) + 1).
   So T follows the source's commit time, and two different states with the same as_of_us (two
   transactions committed in the same microsecond, or a gold SQL change that rewrites rows without a
   new source change) still get strictly increasing timestamps: the later state wins. T can run
   ahead of as_of_us by one microsecond per such tie.

Consequence for anyone else writing to a projection table: Cassandra keeps the cell with the highest
write timestamp, and these are microseconds of SOURCE commit time. A write with the default
timestamp (now) is newer than every projection write of older source changes, so it would mask
them until the source clock passes it; a write with a small timestamp is silently ignored. Do not
write to projection tables; if you must, use `USING TIMESTAMP <write_timestamp recorded here>` so
the next projection batch overrides it.

Offsets are changed with lightweight transactions on the `attempts` column, so two runs of one
projection at once fail clearly (ConcurrentProjectionRunError) instead of interleaving.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

OFFSETS_TABLE = "projection_offsets"
KafkaOffsets = dict[str, dict[int, int]]  # topic -> partition -> next offset to consume


class ConcurrentProjectionRunError(RuntimeError):
    """Another run changed the projection's offsets while this one was running."""


@dataclass(frozen=True)
class SourcePosition:
    as_of_us: int
    gold_versions: dict[str, int]
    kafka_offsets: KafkaOffsets = field(default_factory=dict)

    def behind(self, other: SourcePosition) -> list[str]:
        """Every part of this position that is older than `other`'s (parts `other` lacks are not compared)."""
        reasons = []
        if self.as_of_us < other.as_of_us:
            reasons.append(f"as_of_us {self.as_of_us} < {other.as_of_us}")
        for entity, version in sorted(self.gold_versions.items()):
            if version < other.gold_versions.get(entity, version):
                reasons.append(f"gold {entity} version {version} < {other.gold_versions[entity]}")
        for topic, partitions in sorted(self.kafka_offsets.items()):
            for partition, offset in sorted(partitions.items()):
                recorded = other.kafka_offsets.get(topic, {}).get(partition, offset)
                if offset < recorded:
                    reasons.append(f"{topic}[{partition}] offset {offset} < {recorded}")
        return reasons

    def same_as(self, other: SourcePosition) -> bool:
        """Nothing behind `other` and nothing ahead of it (Kafka partitions it lacks count as ahead)."""
        if self.behind(other) or other.behind(self) or self.as_of_us != other.as_of_us:
            return False
        if set(self.gold_versions) - set(other.gold_versions):
            return False
        return all(
            partition in other.kafka_offsets.get(topic, {})
            for topic, partitions in self.kafka_offsets.items()
            for partition in partitions
        )

    def to_json(self) -> dict:
        return {
            "as_of_us": self.as_of_us,
            "gold_versions": dict(sorted(self.gold_versions.items())),
            "kafka_offsets": {
                t: {str(p): o for p, o in sorted(ps.items())} for t, ps in sorted(self.kafka_offsets.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping) -> SourcePosition:
        return cls(
            as_of_us=int(data["as_of_us"]),
            gold_versions={e: int(v) for e, v in data["gold_versions"].items()},
            kafka_offsets={
                t: {int(p): int(o) for p, o in ps.items()} for t, ps in data.get("kafka_offsets", {}).items()
            },
        )


@dataclass(frozen=True)
class WrittenState:
    """A batch's position, the write timestamp it used and the spec (JSON) it was written with."""

    position: SourcePosition
    write_timestamp: int
    spec_json: str

    def to_json(self) -> dict:
        return {**self.position.to_json(), "write_timestamp": self.write_timestamp, "spec": self.spec_json}

    @classmethod
    def from_json(cls, data: Mapping) -> WrittenState:
        return cls(SourcePosition.from_json(data), int(data["write_timestamp"]), data["spec"])


@dataclass(frozen=True)
class ProjectionState:
    committed: WrittenState | None
    attempts: tuple[WrittenState, ...] = ()
    attempts_text: str | None = None  # as stored: the compare-and-set value for the next change
    committed_at: datetime | None = None

    @property
    def highest_write_timestamp(self) -> int | None:
        stamps = [s.write_timestamp for s in (self.committed, *self.attempts) if s is not None]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class Decision:
    action: Literal["write", "replay", "refuse"]
    write_timestamp: int | None
    reason: str


def decide(
    state: ProjectionState, position: SourcePosition, spec_fingerprint: str, fingerprint_of
) -> Decision:
    """Apply the rule of the module docstring. `fingerprint_of(spec_json)` gives a recorded spec's fingerprint."""
    recorded = [("the committed state", state.committed)] if state.committed else []
    recorded += [("a batch begun and not committed", attempt) for attempt in state.attempts]
    for label, written in recorded:
        reasons = position.behind(written.position)
        if reasons:
            return Decision("refuse", None, f"older than {label}: {'; '.join(reasons)}")
    committed = state.committed
    if (
        committed
        and position.same_as(committed.position)
        and fingerprint_of(committed.spec_json) == spec_fingerprint
    ):
        return Decision(
            "replay", committed.write_timestamp, "the committed state already reflects this position"
        )
    highest = state.highest_write_timestamp
    stamp = position.as_of_us if highest is None else max(position.as_of_us, highest + 1)
    return Decision("write", stamp, "newer than the committed state" if committed else "first batch")


# -- the table ------------------------------------------------------------------------------------


def offsets_table_cql(keyspace: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {keyspace}.{OFFSETS_TABLE} (\n"
        "    projection text,\n    topic text,\n    partition int,\n    next_offset bigint,\n"
        "    as_of_us bigint static,\n    write_timestamp bigint static,\n"
        "    gold_versions map<text, bigint> static,\n    spec text static,\n"
        "    committed_at timestamp static,\n    attempts text static,\n"
        "    PRIMARY KEY ((projection), topic, partition)\n"
        ") WITH comment = 'per projection: the Kafka offsets and gold Delta versions it reflects'"
    )


def read_state(session: Session, keyspace: str, projection: str) -> ProjectionState:
    rows = list(
        session.execute(
            f"SELECT topic, partition, next_offset, as_of_us, write_timestamp, gold_versions, spec, committed_at, "
            f"attempts FROM {keyspace}.{OFFSETS_TABLE} WHERE projection = %s",
            (projection,),
        )
    )
    if not rows:
        return ProjectionState(committed=None)
    first = rows[0]
    attempts = tuple(WrittenState.from_json(item) for item in json.loads(first.attempts or "[]"))
    committed = None
    if first.write_timestamp is not None:
        offsets: KafkaOffsets = {}
        for row in rows:
            if row.topic is not None:
                offsets.setdefault(row.topic, {})[row.partition] = row.next_offset
        position = SourcePosition(first.as_of_us, dict(first.gold_versions or {}), offsets)
        committed = WrittenState(position, first.write_timestamp, first.spec)
    return ProjectionState(committed, attempts, first.attempts, first.committed_at)


def record_attempt(
    session: Session, keyspace: str, projection: str, state: ProjectionState, attempt: WrittenState
) -> str:
    """Note a batch as begun before its first write; the new `attempts` text (for commit's compare-and-set)."""
    attempts_text = json.dumps([item.to_json() for item in (*state.attempts, attempt)], separators=(",", ":"))
    result = session.execute(
        f"UPDATE {keyspace}.{OFFSETS_TABLE} SET attempts = %s WHERE projection = %s IF attempts = %s",
        (attempts_text, projection, state.attempts_text),
    )
    _require_applied(result, projection)
    return attempts_text


def commit(
    session: Session, keyspace: str, projection: str, written: WrittenState, attempts_text: str
) -> None:
    """Record `written` as the committed state and forget the begun batches, in one conditional batch."""
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    position = written.position
    batch.add(
        f"UPDATE {keyspace}.{OFFSETS_TABLE} SET as_of_us = %s, write_timestamp = %s, gold_versions = %s, "
        f"spec = %s, committed_at = %s, attempts = null WHERE projection = %s IF attempts = %s",
        (
            position.as_of_us,
            written.write_timestamp,
            position.gold_versions,
            written.spec_json,
            datetime.now(UTC),
            projection,
            attempts_text,
        ),
    )
    for topic, partitions in sorted(position.kafka_offsets.items()):
        for partition, offset in sorted(partitions.items()):
            batch.add(
                f"UPDATE {keyspace}.{OFFSETS_TABLE} SET next_offset = %s "
                "WHERE projection = %s AND topic = %s AND partition = %s",
                (offset, projection, topic, partition),
            )
    _require_applied(session.execute(batch), projection)


def _require_applied(result, projection: str) -> None:
    if not result.was_applied:
        raise ConcurrentProjectionRunError(
            f"projection {projection}: its offsets changed while this run was going on (another run of the "
            "same projection?); nothing was committed by this run, rerun it when the other one is done"
        )
