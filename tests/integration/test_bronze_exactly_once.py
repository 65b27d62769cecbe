"""Bronze ingestion against real Kafka and real Delta: exactly once, quarantine, no-op reruns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import make_consumer
from transforms.delta_commits import current_version
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(__file__).resolve().parents[2]
POISON = [
    b"{not json",
    b'{"table":"SIEBEL.S_OTHER","op_type":"I","op_ts":"2024-01-01 00:00:00.000000","pos":"1","after":{"ROW_ID":"x"}}',
    b'{"table":"SIEBEL.S_TEST","op_type":"I","op_ts":"2024-01-01 00:00:00.000000","pos":"2","after":{"NAME":"no key"}}',
    b'{"table":"SIEBEL.S_TEST","op_type":"I","op_ts":"2024-01-01 00:00:00.000000","pos":"3","after":{"ROW_ID":null,"NAME":"null key"}}',
]


def _gg_insert(row_id: str, pos: int) -> bytes:
    return json.dumps(
        {
            "table": "SIEBEL.S_TEST",
            "op_type": "I",
            "op_ts": "2024-03-05 14:02:11.000000",
            "current_ts": "2024-03-05T14:02:13.482000",
            "pos": f"{pos:020d}",
            "after": {"ROW_ID": row_id, "NAME": f"name {row_id}", "AMOUNT": 1250.50},
        }
    ).encode()


class Topic:
    def __init__(self, bootstrap: str, partitions: int = 3):
        self.bootstrap = bootstrap
        self.name = f"crm.test.{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(self.name, partitions, 1)])[self.name].result(timeout=30)
        self.next_pos = 1
        self.good = 0
        self.poison = 0

    def _produce(self, messages: list[tuple[bytes, bytes]]) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all"})
        for key, value in messages:
            producer.produce(self.name, key=key, value=value)
        assert producer.flush(30) == 0

    def produce_good(self, count: int) -> None:
        messages = []
        for _ in range(count):
            row_id = f"1-{self.next_pos}"
            messages.append((row_id.encode(), _gg_insert(row_id, self.next_pos)))
            self.next_pos += 1
        self._produce(messages)
        self.good += count

    def produce_poison(self) -> None:
        self._produce([(f"p{i}".encode(), value) for i, value in enumerate(POISON)])
        self.poison += len(POISON)

    def spec(self) -> TableSpec:
        return TableSpec(table="SIEBEL.S_TEST", topic=self.name, format="goldengate_json", keys=["ROW_ID"])


def _ingest(spark, topic: Topic, lake: Path, **kwargs):
    consumer = make_consumer({"bootstrap.servers": topic.bootstrap}, group_id="test-bronze")
    try:
        return ingest_batch(
            spark, topic.spec(), consumer, str(lake / "bronze"), str(lake / "quarantine"), **kwargs
        )
    finally:
        consumer.close()


def _assert_exact(spark, topic: Topic, lake: Path) -> None:
    bronze = spark.read.format("delta").load(str(lake / "bronze"))
    assert bronze.count() == topic.good
    assert bronze.select("topic", "partition", "offset").distinct().count() == topic.good
    if topic.poison:
        quarantine = spark.read.format("delta").load(str(lake / "quarantine"))
        assert quarantine.count() == topic.poison
        assert quarantine.select("partition", "offset").distinct().count() == topic.poison
    else:
        assert current_version(spark, str(lake / "quarantine")) is None


def test_n_messages_in_n_rows_out_and_rerun_without_new_messages_is_a_no_op(spark, kafka_bootstrap, tmp_lake):
    topic = Topic(kafka_bootstrap)
    topic.produce_good(250)
    first = _ingest(spark, topic, tmp_lake)
    assert (first.batch, first.records_read, first.rows_written, first.quarantined) == (1, 250, 250, 0)
    assert sum(first.offsets_after().values()) == 250
    version = current_version(spark, str(tmp_lake / "bronze"))

    again = _ingest(spark, topic, tmp_lake)
    assert again.batch is None and again.records_read == 0
    assert current_version(spark, str(tmp_lake / "bronze")) == version
    assert spark.read.format("delta").load(str(tmp_lake / "bronze")).count() == 250

    topic.produce_good(40)
    third = _ingest(spark, topic, tmp_lake)
    assert (third.batch, third.rows_written) == (2, 40)
    assert third.offsets_before() == first.offsets_after()


def test_poison_messages_go_to_quarantine_with_reason_and_offset_and_good_ones_land(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=1)
    topic.produce_good(5)
    topic.produce_poison()
    topic.produce_good(5)
    batch = _ingest(spark, topic, tmp_lake)
    assert (batch.rows_written, batch.quarantined) == (10, 4)
    quarantine = spark.read.format("delta").load(str(tmp_lake / "quarantine")).orderBy("offset").collect()
    assert [row["offset"] for row in quarantine] == [5, 6, 7, 8]
    assert [bytes(row["raw_value"]) for row in quarantine] == POISON
    assert "JSON" in quarantine[0]["error"] or "json" in quarantine[0]["error"]
    assert "unknown table" in quarantine[1]["error"] and "SIEBEL.S_OTHER" in quarantine[1]["error"]
    assert "lacks key column ROW_ID" in quarantine[2]["error"]
    assert "key column ROW_ID is null" in quarantine[3]["error"]
    _assert_exact(spark, topic, tmp_lake)


def test_cap_per_partition_splits_a_backlog_into_batches_without_gap(spark, kafka_bootstrap, tmp_lake):
    topic = Topic(kafka_bootstrap, partitions=1)
    topic.produce_good(25)
    sizes = []
    while (batch := _ingest(spark, topic, tmp_lake, max_records_per_partition=10)).batch is not None:
        sizes.append(batch.rows_written)
    assert sizes == [10, 10, 5]
    _assert_exact(spark, topic, tmp_lake)


def _crash_run(topic: Topic, lake: Path, point: str) -> None:
    script = Path(__file__).with_name("bronze_crash_runner.py")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            topic.spec().model_dump_json(),
            topic.bootstrap,
            str(lake / "bronze"),
            str(lake / "quarantine"),
            point,
        ],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == -9, (
        f"the run was not killed at {point}: rc={result.returncode}\n{result.stderr[-3000:]!r}"
    )


def test_sigkill_before_the_bronze_commit_rereads_the_recorded_range_exactly(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=2)
    topic.produce_good(60)
    topic.produce_poison()
    _crash_run(topic, tmp_lake, "before_bronze_commit")
    assert current_version(spark, str(tmp_lake / "bronze")) is None  # nothing of bronze was committed
    assert spark.read.format("delta").load(str(tmp_lake / "quarantine")).count() == topic.poison

    topic.produce_good(30)  # arrives after the crash: must wait for the batch after the repaired one
    repaired = _ingest(spark, topic, tmp_lake)
    assert repaired.resumed and repaired.batch == 1 and repaired.rows_written == 60
    following = _ingest(spark, topic, tmp_lake)
    assert following.batch == 2 and following.rows_written == 30
    _assert_exact(spark, topic, tmp_lake)


def test_sigkill_right_after_the_bronze_commit_loses_and_duplicates_nothing(spark, kafka_bootstrap, tmp_lake):
    topic = Topic(kafka_bootstrap, partitions=2)
    topic.produce_good(50)
    topic.produce_poison()
    _crash_run(topic, tmp_lake, "after_bronze_commit")
    assert spark.read.format("delta").load(str(tmp_lake / "bronze")).count() == 50

    topic.produce_good(20)
    nxt = _ingest(spark, topic, tmp_lake)
    assert not nxt.resumed and nxt.batch == 2 and nxt.rows_written == 20
    _assert_exact(spark, topic, tmp_lake)
