"""Fault matrix, the Kafka rows, on a private broker this module stops and starts again (same data):

- stopped when a bronze run starts: the run fails naming the broker and commits nothing;
- stopped in the middle of a bronze read (some records of the batch already consumed): the run fails
  within seconds naming the broker, commits nothing, quarantines nothing;
- after either restart the next run reads exactly the records the failed one could not, offsets
  continue, and bronze holds each record once;
- stopped while the Kafka lag sensor polls: the tick fails naming the broker within topic_lag's
  timeout, requests no run and leaves the cursor; after the restart the next tick requests the run.

A private Kafka (its own ports and folder), so the suite's shared broker stays up for the other tests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.stack.stack import Stack
from orchestration.automation import RECORDS_WAITING_TAG, build_lag_sensor
from resources.connections import KafkaResource
from tests.conftest import _private_server
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import BronzeConsumer, KafkaReadError, consumer_config, make_consumer
from transforms.delta_commits import current_version
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def _kafka_of_this_module() -> Iterator[Stack]:
    """A Kafka of this module's own, the way conftest starts private servers."""
    yield from _private_server("kafka")


@pytest.fixture
def private_kafka(_kafka_of_this_module: Stack) -> Stack:
    """The module's Kafka, up (a test that failed with it stopped does not leave the next one without)."""
    _kafka_of_this_module.up()
    return _kafka_of_this_module


def _new_topic(bootstrap: str, partitions: int = 2) -> str:
    topic = f"faults.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    return topic


def _produce(bootstrap: str, topic: str, first: int, count: int, one_per_batch: bool = False) -> list[str]:
    """Records `1-<first>` ... of SIEBEL.S_TEST. `one_per_batch`: each record a record batch of its own,
    so a consumer that fetches one batch at a time holds one record, not hundreds."""
    config = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"}
    if one_per_batch:
        config.update({"linger.ms": 0, "batch.num.messages": 1})
    producer = Producer(config)
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


def _spec(topic: str) -> TableSpec:
    return TableSpec(table="SIEBEL.S_TEST", topic=topic, format="goldengate_json", keys=["ROW_ID"])


def _ingest(spark, bootstrap: str, topic: str, lake: Path, consumer: BronzeConsumer | None = None):
    consumer = consumer or make_consumer({"bootstrap.servers": bootstrap}, group_id="test-faults")
    try:
        return ingest_batch(spark, _spec(topic), consumer, str(lake / "bronze"), str(lake / "quarantine"))
    finally:
        consumer.close()


class _StopsTheBrokerMidRead(BronzeConsumer):
    """The bronze consumer (make_consumer's settings), fetching one record batch at a time, that stops
    the broker once it has handed out `after` records, before it returns the last of them."""

    def __init__(self, bootstrap: str, stack: Stack, after: int):
        small_fetches = {
            "bootstrap.servers": bootstrap,
            "message.max.bytes": 1000,  # librdkafka's least; fetch.max.bytes may not be below it
            "fetch.max.bytes": 1024,
            "max.partition.fetch.bytes": 1,  # the broker still sends one whole record batch
            "queued.min.messages": 1,
            "queued.max.messages.kbytes": 1,
            "fetch.queue.backoff.ms": 10,  # fetch again soon after the queue drains (default 1 s)
        }
        super().__init__(consumer_config(small_fetches, group_id="test-faults"))
        self.stack, self.after = stack, after
        self.records = 0  # records handed out
        self.stopped_at: float | None = None  # time.monotonic() of the stop

    def poll(self, timeout: float | None = None):
        message = super().poll(timeout) if timeout is not None else super().poll()
        if message is not None and message.error() is None:
            self.records += 1
            if self.records == self.after:
                self.stack.down()
                self.stopped_at = time.monotonic()
        return message


def _assert_nothing_committed(spark, lake: Path, version: int | None) -> None:
    assert current_version(spark, str(lake / "bronze")) == version  # no partial commit
    assert current_version(spark, str(lake / "quarantine")) is None


def _assert_the_next_run_catches_up(
    spark, bootstrap, topic, lake: Path, first, produced: list[str], rows: int
):
    """The next run reads the `rows` records the failed one could not, from where `first` ended, once;
    bronze then holds every produced record once."""
    second = _ingest(spark, bootstrap, topic, lake)
    assert (second.batch, second.rows_written) == (2, rows)
    assert second.offsets_before() == first.offsets_after()  # offsets continue where the first run ended
    assert _ingest(spark, bootstrap, topic, lake).batch is None  # nothing read twice
    bronze = spark.read.format("delta").load(str(lake / "bronze"))
    assert bronze.count() == len(produced)
    assert bronze.select("partition", "offset").distinct().count() == len(produced)
    assert sorted(json.loads(r["key"])["ROW_ID"] for r in bronze.select("key").collect()) == sorted(produced)


def test_a_stopped_broker_fails_the_run_by_name_and_the_restarted_broker_continues_exactly(
    spark, private_kafka, tmp_lake
):
    bootstrap = private_kafka.kafka_bootstrap
    topic = _new_topic(bootstrap)
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
    _assert_nothing_committed(spark, tmp_lake, version)

    private_kafka.up()  # the same broker, its data kept
    _assert_the_next_run_catches_up(spark, bootstrap, topic, tmp_lake, first, produced, rows=25)


def test_a_broker_stopped_mid_read_fails_the_run_by_name_commits_nothing_and_the_next_run_catches_up(
    spark, private_kafka, tmp_lake
):
    bootstrap = private_kafka.kafka_bootstrap
    topic = _new_topic(bootstrap)
    produced = _produce(bootstrap, topic, 1, 20)
    first = _ingest(spark, bootstrap, topic, tmp_lake)
    assert (first.batch, first.rows_written) == (1, 20)
    version = current_version(spark, str(tmp_lake / "bronze"))
    produced += _produce(bootstrap, topic, 21, 200, one_per_batch=True)

    consumer = _StopsTheBrokerMidRead(bootstrap, private_kafka, after=10)
    with pytest.raises(KafkaReadError) as failure:
        _ingest(spark, bootstrap, topic, tmp_lake, consumer)
    failed_at = time.monotonic()
    # the broker went away in the middle of the batch: 10 of its 200 records were read (plus at most
    # the few fetched before the stop), the rest never arrived
    assert consumer.stopped_at is not None
    assert 10 <= consumer.records < 30, consumer.records
    message = str(failure.value)
    assert message.startswith(f"Kafka at {bootstrap}: reading {topic}["), message
    assert "every broker went down mid-read" in message, message
    assert failed_at - consumer.stopped_at < 15  # the reader's 1 s poll + 5 s metadata probe, not a hang
    _assert_nothing_committed(spark, tmp_lake, version)

    private_kafka.up()  # the same broker, its data kept
    _assert_the_next_run_catches_up(spark, bootstrap, topic, tmp_lake, first, produced, rows=200)


def test_the_lag_sensor_fails_its_tick_naming_a_stopped_broker_and_requests_the_run_once_it_is_back(
    private_kafka,
):
    bootstrap = private_kafka.kafka_bootstrap
    topic = _new_topic(bootstrap)
    sensor = build_lag_sensor([_spec(topic)])
    with dg.instance_for_test() as instance:

        def context(cursor: str | None) -> dg.SensorEvaluationContext:
            kafka = KafkaResource(bootstrap_servers=bootstrap)
            return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": kafka})

        _produce(bootstrap, topic, 1, 5)
        first = sensor.evaluate_tick(context(None))
        [request] = first.run_requests
        assert request.tags[RECORDS_WAITING_TAG] == "5"
        cursor = first.cursor
        assert cursor is not None
        _produce(bootstrap, topic, 6, 7)

        private_kafka.down()
        stopped = context(cursor)
        started = time.monotonic()
        with pytest.raises(KafkaReadError) as failure:
            sensor.evaluate_tick(stopped)  # the daemon records this as the tick's error; no run requested
        assert time.monotonic() - started < 20  # topic_lag's 10 s metadata timeout, not a hang
        message = str(failure.value)
        assert message.startswith(f"Kafka at {bootstrap}: reading the metadata of topic {topic!r} failed"), (
            message
        )
        assert stopped.cursor == cursor  # unchanged: these watermarks still get their run

        private_kafka.up()
        after = sensor.evaluate_tick(context(cursor))
        [request] = after.run_requests
        assert (
            request.tags[RECORDS_WAITING_TAG] == "12"
        )  # the records waiting, both before and during the stop
        assert after.cursor is not None and after.cursor != cursor
        assert sum(json.loads(after.cursor)[_spec(topic).asset_name].values()) == 12
