"""The seed recipe: load a projection, then follow Kafka from exactly the offsets it reflects.

A service that keeps its own copy of a projection (a cache, a search index) asks "which offset is this
table populated up to?". The answer is in the offsets table, committed only after every write of a
batch succeeded:

    snapshot = load_projection_with_offsets(session, spec, keyspace="cdc")
    cache = {row["customer_id"]: row for row in snapshot.rows}
    consumer = consumer_from_offsets(kafka.consumer_config(), snapshot.kafka_offsets)
    while True:
        message = consumer.poll(1.0)      # exactly the messages after the ones the rows reflect
        ...

No race: the offsets are read before and after the rows, and the rows are kept only if both reads
agree and no batch was in flight (begun, not committed), so the rows reflect exactly those offsets:
no message is both in the rows and consumed again, none is in neither.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cassandra.cluster import Session
from confluent_kafka import Consumer, TopicPartition

from transforms.projections.offsets import KafkaOffsets, ProjectionState, read_state
from transforms.projections.project import DEFAULT_KEYSPACE
from transforms.specs.projection import ProjectionSpec


class ProjectionNotSettledError(RuntimeError):
    """The projection kept changing, or a begun batch never committed, while it was being read."""


@dataclass(frozen=True)
class ProjectionSnapshot:
    rows: list[dict]
    kafka_offsets: KafkaOffsets  # topic -> partition -> next offset to consume
    gold_versions: dict[str, int]
    as_of_us: int
    write_timestamp: int


def load_projection_with_offsets(
    session: Session,
    spec: ProjectionSpec,
    *,
    keyspace: str | None = None,
    partition: Mapping[str, object] | None = None,
    tries: int = 5,
    wait_seconds: float = 1.0,
) -> ProjectionSnapshot:
    """Every row of the projection (or of one partition: `partition={"customer_id": "1-AB"}`) and the
    Kafka offsets and gold versions they reflect. Raises ProjectionNotSettledError if the projection
    has never committed a batch, or after `tries` reads during which a batch was in flight."""
    keyspace = keyspace or spec.keyspace or DEFAULT_KEYSPACE
    query = f"SELECT {', '.join(spec.columns)} FROM {keyspace}.{spec.table_name}"
    values: tuple = ()
    if partition is not None:
        if sorted(partition) != sorted(spec.partition_key):
            raise ValueError(f"partition must give exactly the partition key {spec.partition_key}")
        query += " WHERE " + " AND ".join(f"{name} = %s" for name in spec.partition_key)
        values = tuple(partition[name] for name in spec.partition_key)
    last_reason = ""
    for attempt in range(tries):
        if attempt:
            time.sleep(wait_seconds)
        before = read_state(session, keyspace, spec.projection)
        if before.committed is None:
            raise ProjectionNotSettledError(f"projection {spec.projection} has not committed any batch yet")
        rows = [row._asdict() for row in session.execute(query, values)]
        after = read_state(session, keyspace, spec.projection)
        last_reason = _unsettled(before, after)
        if not last_reason:
            committed = after.committed
            assert committed is not None  # settled: the same committed state as `before`, which has one
            return ProjectionSnapshot(
                rows=rows,
                kafka_offsets=committed.position.kafka_offsets,
                gold_versions=committed.position.gold_versions,
                as_of_us=committed.position.as_of_us,
                write_timestamp=committed.write_timestamp,
            )
    raise ProjectionNotSettledError(
        f"projection {spec.projection}: {last_reason} in each of {tries} reads; if no run is going on, a failed "
        "batch is waiting to be rerun: rerun the projection, then load it again"
    )


def consumer_from_offsets(
    kafka_config: Mapping[str, object], offsets: Mapping[str, Mapping[int, int]]
) -> Consumer:
    """A confluent-kafka Consumer assigned to exactly `offsets` (topic -> partition -> next offset).

    `kafka_config` is librdkafka settings (e.g. KafkaResource.consumer_config()). Without a `group.id`
    a private one is made up; offsets are never committed to the group unless the config says so.
    """
    config = {"group.id": f"projection-seed-{uuid.uuid4()}", "enable.auto.commit": False, **kafka_config}
    consumer = Consumer(config)
    consumer.assign(
        [
            TopicPartition(topic, partition, offset)
            for topic, partitions in sorted(offsets.items())
            for partition, offset in sorted(partitions.items())
        ]
    )
    return consumer


def _unsettled(before: ProjectionState, after: ProjectionState) -> str:
    if before.attempts or after.attempts:
        return "a batch was begun and not committed"
    if before.committed != after.committed or before.committed_at != after.committed_at:
        return "a batch committed while the rows were read"
    return ""
