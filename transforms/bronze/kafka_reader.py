"""Read fixed offset ranges from Kafka with confluent-kafka, without consumer-group semantics.

The consumer is assigned explicit partitions and positions; nothing is committed here. Offsets are
tracked by the caller in the Delta commit (see transforms.bronze.ingest). Reading stops per partition
when its position reaches the range end. With `read_committed`, control records and aborted
transactions leave offset gaps, so progress is judged by the consumer position, not the last offset seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from transforms.bronze.offsets import OffsetRange
from transforms.changes import KafkaMessage


class KafkaReadError(RuntimeError):
    pass


class BronzeConsumer(Consumer):
    """A Consumer that knows its bootstrap servers and the last error librdkafka reported about the
    cluster (a refused connection, a failed SASL authentication), so a failure can say what and where."""

    def __init__(self, config: dict):
        self.bootstrap_servers = str(config.get("bootstrap.servers", "?"))
        self.last_error: KafkaError | None = None
        self.all_brokers_down_at: float | None = None  # time.monotonic() of librdkafka's last report
        super().__init__({**config, "error_cb": self._remember})

    def _remember(self, error: KafkaError) -> None:
        self.last_error = error
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_brokers_down_at = time.monotonic()


def consumer_config(client_config: dict, group_id: str) -> dict:
    """The settings of the consumers that read fixed offset ranges (make_consumer)."""
    return {
        **client_config,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    }


def make_consumer(client_config: dict, group_id: str) -> BronzeConsumer:
    return BronzeConsumer(consumer_config(client_config, group_id))


def watermarks(consumer: Consumer, topic: str, timeout_s: float = 15.0) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of a topic. Fails clearly if the topic does not exist or
    the cluster cannot be reached (naming the servers and librdkafka's reason, e.g. authentication)."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaReadError(_unreachable(consumer, f"reading the metadata of topic {topic!r}", exc)) from exc
    topic_meta = metadata.topics.get(topic)
    if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
        reason = topic_meta.error if topic_meta is not None else "no metadata"
        raise KafkaReadError(f"Kafka topic {topic!r} is not available: {reason}")
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s, cached=False)
        for p in sorted(topic_meta.partitions)
    }


def _unreachable(consumer: Consumer, action: str, exc: KafkaException) -> str:
    if not isinstance(consumer, BronzeConsumer):
        return f"Kafka: {action} failed: {exc}"
    consumer.poll(0)  # serves librdkafka's error callback: the cluster-level reason, if any
    reason = f"; last client error: {consumer.last_error.str()}" if consumer.last_error is not None else ""
    return f"Kafka at {consumer.bootstrap_servers}: {action} failed: {exc}{reason}"


def read_ranges(
    consumer: Consumer,
    ranges: list[OffsetRange],
    idle_timeout_s: float = 30.0,
    unreachable_timeout_s: float = 5.0,
) -> Iterator[KafkaMessage]:
    """Yield every record of the ranges (in offset order per partition).

    Raises KafkaReadError when a partition makes no progress for `idle_timeout_s` before its end,
    so a batch never silently records a shorter range than it planned; sooner when librdkafka reports
    every broker down mid-read (a BronzeConsumer) and no broker answers a metadata request within
    `unreachable_timeout_s`: the error then names the servers and the client's reason.
    """
    pending = {(r.topic, r.partition): r for r in ranges if r.size > 0}
    if not pending:
        return
    consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in pending.values()])
    last_progress = time.monotonic()
    try:
        while pending:
            message = consumer.poll(1.0)
            if message is None:
                _drop_finished(consumer, pending)
                if pending:
                    _fail_if_unreachable(consumer, pending, last_progress, unreachable_timeout_s)
                if pending and time.monotonic() - last_progress > idle_timeout_s:
                    raise KafkaReadError(
                        f"{_kafka(consumer)}: no progress for {idle_timeout_s:.0f}s while reading "
                        f"{_describe(pending)}"
                    )
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    _drop_finished(consumer, pending)
                    continue
                raise KafkaReadError(f"{_kafka(consumer)}: error while reading: {error}")
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            # Optional for error events only (handled above); a message always has all three.
            assert topic is not None and partition is not None and offset is not None
            tp = (topic, partition)
            selected = pending.get(tp)
            if selected is None or offset >= selected.end:
                _drop_finished(consumer, pending)
                continue
            last_progress = time.monotonic()
            yield KafkaMessage(
                topic=topic,
                partition=partition,
                offset=offset,
                key=message.key(),
                value=message.value(),
                timestamp_ms=message.timestamp()[1] if message.timestamp()[0] else None,
                # The stub's HeadersType also covers what a producer may pass (a dict, str values);
                # a consumed message's headers are a list of (name, bytes or None).
                headers=tuple(cast("list[tuple[str, bytes | None]]", message.headers() or ())),
            )
            if offset + 1 >= selected.end:
                del pending[tp]
                consumer.pause([TopicPartition(*tp)])
    except KafkaException as exc:
        raise KafkaReadError(f"{_kafka(consumer)}: error while reading: {exc}") from exc
    finally:
        consumer.unassign()


def _kafka(consumer: Consumer) -> str:
    """`Kafka at <servers>` when the consumer knows them, else `Kafka`."""
    return f"Kafka at {consumer.bootstrap_servers}" if isinstance(consumer, BronzeConsumer) else "Kafka"


def _describe(pending: dict[tuple[str, int], OffsetRange]) -> str:
    return ", ".join(f"{t}[{p}] end {r.end}" for (t, p), r in pending.items())


def _fail_if_unreachable(
    consumer: Consumer, pending: dict[tuple[str, int], OffsetRange], since: float, timeout_s: float
) -> None:
    """If librdkafka reported every broker down after `since` (the last record read), ask the cluster
    for the topic's metadata: no answer within `timeout_s` fails the read, naming the servers; an
    answer (the broker is back) lets it go on."""
    if not isinstance(consumer, BronzeConsumer):
        return
    down_at = consumer.all_brokers_down_at
    if down_at is None or down_at < since:
        return
    topic = next(iter(pending))[0]
    try:
        consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        action = f"reading {_describe(pending)} (every broker went down mid-read)"
        raise KafkaReadError(_unreachable(consumer, action, exc)) from exc
    consumer.all_brokers_down_at = None


def _drop_finished(consumer: Consumer, pending: dict[tuple[str, int], OffsetRange]) -> None:
    if not pending:
        return
    positions = consumer.position([TopicPartition(t, p) for t, p in pending])
    for position in positions:
        key = (position.topic, position.partition)
        if (
            position.offset not in (OFFSET_END,)
            and position.offset >= 0
            and position.offset >= pending[key].end
        ):
            del pending[key]
            consumer.pause([TopicPartition(*key)])
