"""The workload CLI sends every generated message to a real Kafka broker, byte for byte, into topics
created with the requested partitions, keeping each key's messages in source order."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from devtools.workload import WorkloadConfig, generate_workload
from devtools.workload.__main__ import main

pytestmark = pytest.mark.integration

PARTITIONS = 3
GIVE_UP_AFTER_S = 90  # a guard against hanging, not an assertion on speed


def consume_all(bootstrap: str, topics: list[str], expected: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"workload-test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    received = []
    deadline = time.monotonic() + GIVE_UP_AFTER_S
    try:
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append(message)
    finally:
        consumer.close()
    return received


def test_cli_produces_every_message_byte_for_byte_with_per_key_order(kafka_bootstrap):
    template = f"wl{uuid.uuid4().hex[:8]}.crm.{{table}}"
    settings = dict(seed=21, initial_rows=150, changes=400, debezium_tables=("S_PROD_INT",))
    assert (
        main(
            [
                "--bootstrap",
                kafka_bootstrap,
                "--seed",
                "21",
                "--initial-rows",
                "150",
                "--changes",
                "400",
                "--debezium-table",
                "S_PROD_INT",
                "--partitions",
                str(PARTITIONS),
                "--topic-template",
                template,
            ]
        )
        == 0
    )
    workload = generate_workload(WorkloadConfig(topic_template=template, **settings))
    topics = workload.topics()
    assert len(topics) == 8

    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=30)
    assert {t: len(metadata.topics[t].partitions) for t in topics} == {t: PARTITIONS for t in topics}

    received = consume_all(kafka_bootstrap, topics, len(workload.messages))
    got = Counter((m.topic(), m.key(), m.value()) for m in received)
    want = Counter((m.topic, m.key, m.value) for m in workload.messages)
    assert len(received) == len(workload.messages)
    for topic in topics:
        assert {k: n for k, n in got.items() if k[0] == topic} == {
            k: n for k, n in want.items() if k[0] == topic
        }

    sent_order: dict[tuple, list] = defaultdict(list)
    for topic, key, value in workload.messages:
        if key is not None:
            sent_order[(topic, key)].append(value)
    partition_of: dict[tuple, set] = defaultdict(set)
    read_order: dict[tuple, list] = defaultdict(list)
    for message in sorted(received, key=lambda m: (m.topic(), m.partition(), m.offset())):
        if message.key() is not None:
            partition_of[(message.topic(), message.key())].add(message.partition())
            read_order[(message.topic(), message.key())].append(message.value())
    assert read_order == sent_order
    assert all(len(partitions) == 1 for partitions in partition_of.values())
    assert len({p for parts in partition_of.values() for p in parts}) == PARTITIONS
