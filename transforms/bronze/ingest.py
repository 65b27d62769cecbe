"""One bronze micro-batch: a fixed Kafka offset range -> one Delta commit that also records the range.

Exactly once:
1. The range is planned from the offsets recorded in bronze's newest batch commit (never from the
   consumer group), up to the high watermarks seen at the start, capped per partition.
2. Records that cannot be decoded go to the quarantine table FIRST, in a commit tagged with the batch
   number and the planned range (Delta idempotent writes: txnAppId + txnVersion).
3. The decoded change records go to bronze in ONE commit tagged with the batch number and the range.
If the process dies between 2 and 3, the next run finds a quarantine commit for a batch that bronze
does not have yet and re-reads exactly that recorded range; Delta skips the repeated quarantine write
(same txnVersion). If it dies after 3, the next run starts after the recorded range. Either way: no gap,
no duplicate. Consumer-group offsets are committed afterwards for lag monitoring only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import SparkSession

from transforms.bronze.kafka_reader import read_ranges, watermarks
from transforms.bronze.offsets import OffsetRange, plan_ranges
from transforms.bronze_rows import (
    BRONZE_SCHEMA,
    QUARANTINE_SCHEMA,
    rows_frame,
    to_bronze_row,
    to_quarantine_row,
)
from transforms.changes import ChangeRecord, DecodeError, KafkaMessage
from transforms.decoders import decode_for_spec
from transforms.delta_commits import latest_progress, progress_metadata
from transforms.lake_errors import writes_table
from transforms.specs.table import TableSpec

STAGE = "bronze"


@dataclass
class BronzeBatch:
    batch: int | None  # None when there was nothing to read
    ranges: list[OffsetRange]
    records_read: int = 0
    rows_written: int = 0
    quarantined: int = 0
    skipped_other_tables: int = 0
    resumed: bool = False  # re-read a range recorded by an interrupted earlier attempt
    quarantine_reasons: Counter = field(default_factory=Counter)
    lag_remaining: dict[int, int] = field(default_factory=dict)  # partition -> records beyond this batch

    def offsets_before(self) -> dict[int, int]:
        return {r.partition: r.start for r in self.ranges}

    def offsets_after(self) -> dict[int, int]:
        return {r.partition: r.end for r in self.ranges}


def stored_offsets(spark: SparkSession, bronze_path: str) -> tuple[int, dict[int, int]]:
    """(last batch number, next offset per partition) recorded in bronze; (0, {}) for a new table."""
    progress = latest_progress(spark, bronze_path, STAGE)
    if progress is None:
        return 0, {}
    return progress["batch"], {int(p): end for p, (_, end) in progress["ranges"].items()}


def stored_frontier(spark: SparkSession, bronze_path: str) -> dict[str, list]:
    """Per partition (as text): [sequence of the newest bronze row, Kafka ms of the newest record read].

    Recorded with every bronze commit, carried forward, so transaction-consistent cuts (transforms.cut)
    need no scan of bronze."""
    progress = latest_progress(spark, bronze_path, STAGE)
    return dict((progress or {}).get("frontier", {}))


@writes_table(STAGE, "bronze_path")
def ingest_batch(
    spark: SparkSession,
    spec: TableSpec,
    consumer: Consumer,
    bronze_path: str,
    quarantine_path: str,
    *,
    max_records_per_partition: int | None = None,
    other_tables_on_topic: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> BronzeBatch:
    now = now or datetime.now(UTC)
    last_batch, next_offsets = stored_offsets(spark, bronze_path)
    batch_no = last_batch + 1
    interrupted = latest_progress(spark, quarantine_path, STAGE)
    marks = watermarks(consumer, spec.topic)
    if interrupted is not None and interrupted["batch"] == batch_no:
        ranges = [
            OffsetRange(spec.topic, int(p), start, end) for p, (start, end) in interrupted["ranges"].items()
        ]
        resumed = True
    else:
        ranges = plan_ranges(spec.topic, marks, next_offsets, max_records_per_partition)
        resumed = False
    lag = {r.partition: max(0, marks[r.partition][1] - r.end) for r in ranges if r.partition in marks}
    if not any(r.size for r in ranges):
        return BronzeBatch(batch=None, ranges=ranges, lag_remaining=lag)

    result = BronzeBatch(batch=batch_no, ranges=ranges, resumed=resumed, lag_remaining=lag)
    rows: list[tuple] = []
    quarantine_rows: list[tuple] = []
    frontier = stored_frontier(spark, bronze_path)  # partition -> [newest row's sequence, newest Kafka ms]
    newest_offset: dict[int, int] = {}
    for message in read_ranges(consumer, ranges):
        result.records_read += 1
        part = str(message.partition)
        is_newest = message.offset > newest_offset.get(message.partition, -1)
        if is_newest:
            newest_offset[message.partition] = message.offset
            frontier[part] = [frontier.get(part, [None])[0], message.timestamp_ms]
        try:
            changes = _decode_for(spec, message, other_tables_on_topic, result)
            rows.extend(to_bronze_row(change, now) for change in changes)
            if is_newest and changes:
                frontier[part][0] = changes[-1].sequence
        except DecodeError as exc:
            reason = str(exc)
            quarantine_rows.append(to_quarantine_row(spec.table, message, reason, now))
            result.quarantine_reasons[reason.split(":")[0]] += 1

    metadata = progress_metadata(
        STAGE,
        batch=batch_no,
        topic=spec.topic,
        ranges={str(r.partition): [r.start, r.end] for r in ranges},
        frontier=frontier,
    )
    app_id = f"cdc-lakehouse.bronze.{spec.asset_name}"
    if quarantine_rows:
        _append_batch(
            rows_frame(spark, quarantine_rows, QUARANTINE_SCHEMA), quarantine_path, app_id, batch_no, metadata
        )
    _append_batch(rows_frame(spark, rows, BRONZE_SCHEMA), bronze_path, app_id, batch_no, metadata)
    result.rows_written = len(rows)
    result.quarantined = len(quarantine_rows)
    _report_lag_offsets(consumer, ranges)
    return result


@writes_table(STAGE, "path")  # names the table written, bronze or quarantine
def _append_batch(frame, path: str, app_id: str, batch_no: int, metadata: str) -> None:
    """One idempotent Delta append: a repeat of (app_id, batch_no) is skipped by Delta itself."""
    (
        frame.write.format("delta")
        .mode("append")
        .partitionBy("event_date")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_no)
        .option("userMetadata", metadata)
        .save(path)
    )


class _SkipCounter(Protocol):
    """Where _decode_for counts the changes of other tables it skips (BronzeBatch, DateBackfill)."""

    skipped_other_tables: int


def _decode_for(
    spec: TableSpec, message: KafkaMessage, other_tables: frozenset[str], result: _SkipCounter
) -> list[ChangeRecord]:
    changes = decode_for_spec(message, spec)
    kept = []
    for change in changes:
        if change.table != spec.table:
            if change.table in other_tables:
                result.skipped_other_tables += 1
                continue
            raise DecodeError(
                f"unknown table: {change.table!r} on topic {spec.topic} (this spec reads {spec.table!r})"
            )
        if change.op not in spec.allowed_operations:
            raise DecodeError(
                f"operation not allowed: {change.op} on {spec.table} (allowed: "
                f"{', '.join(spec.allowed_operations)})"
            )
        kept.append(change)
    return kept


def _report_lag_offsets(consumer: Consumer, ranges: list[OffsetRange]) -> None:
    """Commit the consumer group's offsets so standard Kafka lag tools see progress. Never read back."""
    offsets = [TopicPartition(r.topic, r.partition, r.end) for r in ranges if r.size]
    if offsets:
        consumer.commit(offsets=offsets, asynchronous=False)
