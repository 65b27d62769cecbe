"""Benchmark: bronze ingestion (events/s) beside the raw read rate of the same Kafka topic.

    .venv/bin/python bench/bench_bronze_ingest.py [--messages 100000] [--partitions 3] [--table S_CONTACT]
        [--bootstrap host:port | --stack-dir .stack]

Messages: realistic GoldenGate JSON of one CRM table from the project's workload generator
(devtools/workload: inserts, compressed updates with before images, deletes, key changes), produced
to a fresh topic. The generator runs once for a few thousand business transactions; its messages for the
table are repeated in order until there are --messages of them (the decoder's work per message is the
same; positions repeat, which bronze does not care about).

Measured, one after the other, on the same topic:
1. raw read:   confluent-kafka alone: a consumer assigned to every partition from the beginning,
               `consume()` in batches until every partition's high watermark; messages/s and MB/s
               (key + value bytes).
2. decode:     the bronze reader (transforms.bronze.kafka_reader.read_ranges) and the decoder of the
               spec, no Spark: where the Python time goes.
3. bronze:     the real bronze code path, transforms.bronze.ingest.ingest_batch: plan the offset range,
               read, decode, quarantine check, one Delta commit recording the offsets, into a fresh
               table of a local lake (the Spark session is started and warmed up first, not timed).
The last line is one JSON object: the figures of each, and `raw_over_bronze` (raw read rate / bronze rate)
beside its target `raw_over_bronze_target`.

Without --bootstrap or --stack-dir a private Kafka is started on free ports and stopped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from assets.factory import load_specs
from devtools.stack.stack import Stack, StackPorts
from devtools.workload import WorkloadConfig, generate_workload
from devtools.workload.producer import create_topics
from resources.spark_session import build_spark_session
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import make_consumer, read_ranges, watermarks
from transforms.bronze.offsets import plan_ranges
from transforms.changes import DecodeError
from transforms.decoders import decode

TARGET_RAW_OVER_BRONZE = 2.0


def table_messages(table: str, count: int, changes: int) -> list[tuple[bytes | None, bytes]]:
    """`count` (key, value) messages of `table` (short name, e.g. S_CONTACT), the generator's repeated."""
    workload = generate_workload(WorkloadConfig(initial_rows=changes // 10, changes=changes))
    topic = WorkloadConfig().topic_template.format(table=table)
    own = [(m.key, m.value) for m in workload.messages if m.topic == topic and m.value is not None]
    if not own:
        raise SystemExit(f"the workload has no messages for table {table}")
    return list(itertools.islice(itertools.cycle(own), count))


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> float:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "none",
        }
    )
    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(300):
        raise SystemExit("messages left unacknowledged")
    return time.perf_counter() - started


def raw_read(bootstrap: str, topic: str) -> dict:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        marks = watermarks(consumer, topic)
        pending = {p for p, (low, high) in marks.items() if high > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in marks])
        count = size = 0
        started = time.perf_counter()
        while pending:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                if message.error() is not None:
                    pending.discard(message.partition())  # end of partition
                    continue
                count += 1
                size += len(message.value() or b"") + len(message.key() or b"")
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "messages": count,
        "seconds": round(seconds, 2),
        "messages_per_s": round(count / seconds),
        "mb_per_s": round(size / seconds / 1e6, 1),
    }


def decode_only(bootstrap: str, spec) -> dict:
    consumer = make_consumer(
        {"bootstrap.servers": bootstrap}, group_id=f"bench-decode-{uuid.uuid4().hex[:6]}"
    )
    try:
        ranges = plan_ranges(spec.topic, watermarks(consumer, spec.topic), {})
        count = changes = failed = 0
        started = time.perf_counter()
        for message in read_ranges(consumer, ranges):
            count += 1
            try:
                changes += len(
                    decode(message, format=spec.format, keys=spec.keys, sequence_by=spec.sequence_by)
                )
            except DecodeError:
                failed += 1
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "records": count,
        "changes": changes,
        "undecodable": failed,
        "seconds": round(seconds, 2),
        "records_per_s": round(count / seconds),
    }


def bronze(bootstrap: str, spec, lake: Path, count: int) -> dict:
    spark = build_spark_session()
    warm = str(lake / "warm-up")
    spark.range(1000).write.format("delta").save(warm)  # JVM, Delta and Python workers warm (not timed)
    spark.read.format("delta").load(warm).count()
    consumer = make_consumer(
        {"bootstrap.servers": bootstrap}, group_id=f"bench-bronze-{uuid.uuid4().hex[:6]}"
    )
    try:
        started = time.perf_counter()
        batch = ingest_batch(
            spark,
            spec,
            consumer,
            str(lake / "bronze"),
            str(lake / "quarantine"),
            max_records_per_partition=count,
        )
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "records_read": batch.records_read,
        "rows_written": batch.rows_written,
        "quarantined": batch.quarantined,
        "seconds": round(seconds, 2),
        "events_per_s": round(batch.rows_written / seconds),
        "records_per_s": round(batch.records_read / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--table", default="S_CONTACT", help="CRM table whose messages are produced")
    parser.add_argument(
        "--generator-changes",
        type=int,
        default=6000,
        help="business transactions the workload generator runs (its messages are repeated)",
    )
    parser.add_argument("--bootstrap", help="a running Kafka (host:port)")
    parser.add_argument("--stack-dir", help="use (or start) the project stack of this state directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-bronze-"))
    stack = None
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        stack = (
            Stack(args.stack_dir)
            if args.stack_dir
            else Stack(work / "stack", StackPorts.free(), servers=("kafka",), die_with_parent=True)
        )
        stack.up()
        bootstrap = stack.kafka_bootstrap
    try:
        base = next(s for s in load_specs() if s.table.split(".")[-1] == args.table)
        spec = base.model_copy(update={"topic": f"bench.bronze.{args.table}.{uuid.uuid4().hex[:8]}"})
        messages = table_messages(args.table, args.messages, args.generator_changes)
        create_topics(bootstrap, [spec.topic], args.partitions)
        produce_seconds = produce(bootstrap, spec.topic, messages)
        raw = raw_read(bootstrap, spec.topic)
        decoded = decode_only(bootstrap, spec)
        ingested = bronze(bootstrap, spec, work / "lake", args.messages)
        report = {
            "topic": spec.topic,
            "table": spec.table,
            "format": spec.format,
            "partitions": args.partitions,
            "messages": len(messages),
            "mean_value_bytes": round(sum(len(v) for _, v in messages) / len(messages)),
            "produce_seconds": round(produce_seconds, 2),
            "raw_read": raw,
            "read_and_decode_no_spark": decoded,
            "bronze_ingest": ingested,
            "raw_over_bronze": round(raw["messages_per_s"] / ingested["records_per_s"], 2),
            "raw_over_bronze_target": TARGET_RAW_OVER_BRONZE,
        }
        print(json.dumps(report))
    finally:
        if stack is not None and not args.stack_dir:
            stack.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
