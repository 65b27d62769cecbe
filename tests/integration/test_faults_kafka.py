"""Fault matrix, the Kafka rows: the broker is stopped when a bronze run starts, then restarted with the
same data. The run fails naming the broker and commits nothing; after the restart the next run reads
exactly the records the failed one could not, offsets continue, and bronze holds each record once.

A private Kafka (its own ports and folder) is stopped and started again: the suite's shared broker
stays up for the other tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.stack.stack import Stack
from tests.conftest import _private_server
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import KafkaReadError, make_consumer
from transforms.delta_commits import current_version
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration


@pytest.fixture
def private_kafka() -> Iterator[Stack]:
    """A Kafka of this test's own (stopped and restarted by it), the way conftest starts private servers."""
    yield from _private_server("kafka")


def _produce(bootstrap: str, topic: str, first: int, count: int) -> list[str]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    row_ids = [f"1-{n}" for n in range(first, first + count)]
    for n, row_id in zip(range(first, first + count), row_ids, strict=True):
        value = {
            "table": "SIEBEL.S_TEST",
            "op_type": "I",
            "op_ts": "2024-03-05 14:02:11.000000",
            "pos": f"{n:020d}",
            "after": {"ROW_ID": row_id, "NAME": f"name {n}"},
        }
        producer.produce(topic, key=row_id.encode(), value=json.dumps(value).encode())
    assert producer.flush(30) == 0
    return row_ids


def _ingest(spark, bootstrap: str, topic: str, lake: Path):
    spec = TableSpec(table="SIEBEL.S_TEST", topic=topic, format="goldengate_json", keys=["ROW_ID"])
    consumer = make_consumer({"bootstrap.servers": bootstrap}, group_id="test-faults")
    try:
        return ingest_batch(spark, spec, consumer, str(lake / "bronze"), str(lake / "quarantine"))
    finally:
        consumer.close()


def test_a_stopped_broker_fails_the_run_by_name_and_the_restarted_broker_continues_exactly(
    spark, private_kafka, tmp_lake
):
    bootstrap, topic = private_kafka.kafka_bootstrap, f"faults.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    produced = _produce(bootstrap, topic, 1, 40)
    first = _ingest(spark, bootstrap, topic, tmp_lake)
    assert (first.batch, first.rows_written) == (1, 40)
    version = current_version(spark, str(tmp_lake / "bronze"))
    produced += _produce(bootstrap, topic, 41, 25)

    private_kafka.down()
    with pytest.raises(KafkaReadError) as failure:
        _ingest(spark, bootstrap, topic, tmp_lake)
    # the message names the broker it could not reach
    assert f"Kafka at {bootstrap}" in str(failure.value), str(failure.value)
    assert current_version(spark, str(tmp_lake / "bronze")) == version  # no partial commit
    assert current_version(spark, str(tmp_lake / "quarantine")) is None

    private_kafka.up()  # the same broker, its data kept
    second = _ingest(spark, bootstrap, topic, tmp_lake)
    assert (second.batch, second.rows_written) == (2, 25)
    assert second.offsets_before() == first.offsets_after()  # offsets continue where the first run ended
    assert _ingest(spark, bootstrap, topic, tmp_lake).batch is None  # nothing read twice
    bronze = spark.read.format("delta").load(str(tmp_lake / "bronze"))
    assert bronze.count() == len(produced) == 65
    assert bronze.select("partition", "offset").distinct().count() == 65
    assert sorted(json.loads(r["key"])["ROW_ID"] for r in bronze.select("key").collect()) == sorted(produced)
