"""The local Kafka server does what the bronze layer relies on: keyed partitioning and committed offsets."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

PARTITIONS = 3
KEYS = [f"key-{n}" for n in range(6)]
MESSAGES_PER_KEY = 5


def _create_topic(bootstrap: str, partitions: int) -> str:
    topic = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)
    return topic


def _produce_keyed(bootstrap: str, topic: str) -> list[tuple[str, str]]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    sent = []
    for sequence in range(MESSAGES_PER_KEY):
        for key in KEYS:
            value = f"{key}:{sequence}"
            producer.produce(topic, key=key, value=value)
            sent.append((key, value))
    assert producer.flush(30) == 0
    return sent


def _consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    return consumer


def _consume(consumer: Consumer, count: int, max_polls: int = 120) -> list:
    """Up to `count` messages (fewer if the topic runs dry within max_polls polls of 0.5 s)."""
    received = []
    for _ in range(max_polls):
        if len(received) >= count:
            break
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received.append(message)
    return received


def test_messages_with_one_key_land_in_one_partition_in_order(kafka_bootstrap):
    topic = _create_topic(kafka_bootstrap, PARTITIONS)
    sent = _produce_keyed(kafka_bootstrap, topic)
    consumer = _consumer(kafka_bootstrap, f"group-{uuid.uuid4().hex[:8]}", topic)
    try:
        received = _consume(consumer, len(sent))
    finally:
        consumer.close()

    partitions_of_key = defaultdict(set)
    values_of_key = defaultdict(list)
    for message in received:
        key = message.key().decode()
        partitions_of_key[key].add(message.partition())
        values_of_key[key].append(message.value().decode())
    assert len(received) == len(sent)
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    assert len(set().union(*partitions_of_key.values())) > 1, "keys should spread over partitions"
    for key in KEYS:
        assert values_of_key[key] == [f"{key}:{sequence}" for sequence in range(MESSAGES_PER_KEY)]


def test_consumer_group_resumes_from_committed_offsets(kafka_bootstrap):
    topic = _create_topic(kafka_bootstrap, PARTITIONS)
    sent = _produce_keyed(kafka_bootstrap, topic)
    group = f"group-{uuid.uuid4().hex[:8]}"

    first = _consumer(kafka_bootstrap, group, topic)
    try:
        processed = _consume(first, 12)
        # Commit exactly what was processed (the consumer may have fetched more than that).
        next_offsets = {}
        for message in processed:
            next_offsets[message.partition()] = message.offset() + 1
        first.commit(
            offsets=[TopicPartition(topic, partition, offset) for partition, offset in next_offsets.items()],
            asynchronous=False,
        )
    finally:
        first.close()

    second = _consumer(kafka_bootstrap, group, topic)
    try:
        rest = _consume(second, len(sent) - len(processed))
        extra = _consume(second, 1, max_polls=4)
        committed = second.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        second.close()

    def positions(messages):
        return {(message.partition(), message.offset()) for message in messages}

    assert len(processed) == 12
    assert extra == []
    assert positions(processed).isdisjoint(positions(rest))
    assert len(positions(processed) | positions(rest)) == len(sent)
    assert {tp.partition: tp.offset for tp in committed if tp.partition in next_offsets} == next_offsets
