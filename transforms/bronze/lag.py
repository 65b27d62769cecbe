"""How far bronze is behind Kafka, without Spark: high watermarks against the bronze consumer group.

Bronze commits its group's offsets after every batch (for monitoring only; the truth is in the Delta
commit), so `high watermark - committed offset` per partition is the number of records waiting.
"""

from __future__ import annotations

from confluent_kafka import TopicPartition

from transforms.bronze.kafka_reader import BronzeConsumer, watermarks


def bronze_group_id(asset_name: str) -> str:
    return f"cdc-lakehouse.bronze.{asset_name}"


def topic_lag(
    client_config: dict, topic: str, group_id: str, timeout_s: float = 10.0
) -> dict[int, tuple[int, int]]:
    """partition -> (high watermark, records waiting). A group with no commit yet waits for everything.

    A cluster that does not answer within `timeout_s` raises KafkaReadError naming its servers
    (`Kafka at host:port: ...`)."""
    consumer = BronzeConsumer({**client_config, "group.id": group_id, "enable.auto.commit": False})
    try:
        marks = watermarks(consumer, topic, timeout_s)
        committed = consumer.committed([TopicPartition(topic, p) for p in marks], timeout=timeout_s)
        lag = {}
        for tp in committed:
            low, high = marks[tp.partition]
            start = tp.offset if tp.offset >= 0 else low
            lag[tp.partition] = (high, max(0, high - start))
        return lag
    finally:
        consumer.close()
