"""Send a workload's messages to a real Kafka cluster, in order, with an idempotent producer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.workload.capture import WorkloadMessage

# Idempotent, acknowledged by every replica, partitioned by key hash as Java clients do. librdkafka
# logs errors only (syslog level 3): its warnings are retries it handles itself (a broker just started
# answers "coordinator load in progress"), and a message that still fails raises below.
PRODUCER_CONFIG = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "log_level": 3,
}


def create_topics(
    bootstrap: str, topics: Iterable[str], partitions: int, replication_factor: int = 1
) -> None:
    """Create the topics with `partitions` partitions; topics that already exist are left as they are."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = [
        NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
        for t in sorted(set(topics))
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"creating topic {topic}: {exc}") from exc


def delete_topics(bootstrap: str, topics: Iterable[str], timeout_s: float = 30) -> None:
    """Delete those of the topics that exist and wait until the broker no longer lists them, so they
    can be created anew, empty. Raises naming the topics when Kafka does not delete them in time."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    doomed = sorted(set(topics) & set(admin.list_topics(timeout=15).topics))
    if not doomed:
        return
    for future in admin.delete_topics(doomed).values():
        future.result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while set(doomed) & set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka did not delete topics {doomed} within {timeout_s}s")
        time.sleep(0.5)


def produce_messages(
    bootstrap: str,
    messages: list[WorkloadMessage],
    partitions: int = 3,
    producer_config: dict | None = None,
    timestamp_ms: int | None = None,
) -> Counter[str]:
    """Create the topics, send every message (idempotent, acks=all, key-hash partitioning as Java
    clients do), wait for every acknowledgement. Returns messages per topic; raises if any failed.
    `timestamp_ms`: the Kafka timestamp of every message (default: the time of sending)."""
    create_topics(bootstrap, (m.topic for m in messages), partitions)
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG, **(producer_config or {})})
    failures: list[str] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")

    for message in messages:
        while True:
            try:
                producer.produce(
                    message.topic,
                    value=message.value,
                    key=message.key,
                    on_delivery=delivered,
                    timestamp=timestamp_ms or 0,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining or failures:
        raise RuntimeError(f"{remaining} messages unacknowledged, {len(failures)} failed: {failures[:5]}")
    return Counter(m.topic for m in messages)
