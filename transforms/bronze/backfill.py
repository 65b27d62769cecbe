"""Bronze date backfill: re-read one event date from Kafka and rewrite only that date's bronze partition.

Bronze is partitioned by `event_date`: the UTC date of the change's source commit time (`commit_ts`),
else of the Kafka record's timestamp. A backfill of date D:

1. Finds, per Kafka partition, the offsets whose records may hold changes of D. Kafka indexes records
   by THEIR timestamp, not by the source commit time, so the window read is wider than the day:
   `offsets_for_times(D 00:00 - read_before)` to `offsets_for_times(D+1 00:00 + read_after)` (the high
   watermark when no later record exists), widened further to cover every offset bronze (and the
   quarantine) already holds for D.
2. Reads that fixed range, decodes it with the regular decoders (transforms.bronze.ingest), keeps the
   changes whose event_date is D, and puts records that cannot be decoded in the quarantine exactly as
   the regular path does.
3. Rewrites the quarantine's rows of D, then bronze's rows of D, each in ONE Delta commit
   (`replaceWhere`), so running it again gives the same rows: idempotent, no duplicate.

It never touches the offsets that drive the regular micro-batches, and never competes with them:
- Everything at or beyond the offsets recorded in bronze's newest batch commit belongs to the regular
  micro-batches, so a backfill reads and replaces only records BELOW them. A date that bronze has not
  reached yet is left to the regular path (the result says how many offsets that left out).
- Its commits are tagged with the stage `bronze_date_backfill` and set no Delta transaction id, so
  `latest_progress(..., "bronze")`, which plans the next regular batch, never mistakes them for a
  batch commit. The consumer group's offsets are not committed.
- The caller must keep regular batches of the table from running at the same time (the Dagster job
  holds the table's pool, orchestration/backfills.py).
Silver reads bronze's change feed: the rewritten rows come back as inserts, and the merge makes
re-applied changes no-ops. A backfill that CHANGES rows (a decoder fix) does not change silver
values at the same source sequence: rebuild silver afterwards (orchestration/backfills.py).

Assumptions (say so if they do not hold for a topic, and widen the window):
- A record's Kafka timestamp lies within [commit_ts - read_before, commit_ts + read_after] (capture
  lag and clock skew; defaults 1 h before, 24 h after), and Kafka timestamps are non-decreasing within
  a partition up to that margin. A change of D whose record falls outside the window and that bronze
  does not already hold is not restored.
- Every record has a Kafka timestamp (Kafka always sets CreateTime or LogAppendTime); a row whose date
  came from the ingestion clock (neither timestamp) cannot be placed back on its date.

Kafka retention. When records the date needs are gone, the backfill FAILS (BackfillRangeAgedOut,
naming topic, partition and date) before writing anything; it never loads part of a date. "Gone"
means: an offset bronze holds for D is below the partition's low watermark, or the window starts at
the low watermark itself after retention removed records (low > 0), unless the last removed record is
known (from bronze or the quarantine) to be older than the window. Restore the topic from a copy, or
accept what bronze holds, which the failed backfill left unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import overload

from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.bronze.ingest import _decode_for, stored_offsets
from transforms.bronze.kafka_reader import KafkaReadError, read_ranges, watermarks
from transforms.bronze.offsets import OffsetRange
from transforms.bronze_rows import (
    BRONZE_SCHEMA,
    QUARANTINE_SCHEMA,
    rows_frame,
    to_bronze_row,
    to_quarantine_row,
)
from transforms.changes import DecodeError
from transforms.delta_commits import progress_metadata, table_exists
from transforms.specs.table import TableSpec

STAGE = "bronze_date_backfill"
DEFAULT_READ_BEFORE = timedelta(hours=1)
DEFAULT_READ_AFTER = timedelta(hours=24)
_NO_OFFSET = -1  # offsets_for_times: no record at or after the time
_BRONZE_DATE = BRONZE_SCHEMA.fieldNames().index("event_date")
_QUARANTINE_DATE = QUARANTINE_SCHEMA.fieldNames().index("event_date")


class BackfillRangeAgedOut(RuntimeError):
    """Kafka retention deleted records a date backfill needs: nothing was written."""


@dataclass
class DateBackfill:
    event_date: date
    topic: str
    ranges: list[OffsetRange]  # what was read per partition
    regular_offsets: dict[int, int]  # the regular micro-batches' next offsets (the upper bound here)
    records_read: int = 0
    rows_written: int = 0
    rows_replaced: int = 0  # rows of the date bronze held before
    quarantined: int = 0
    skipped_other_tables: int = 0
    left_to_regular_batches: int = 0  # records of the window at or beyond the regular offsets
    quarantine_reasons: Counter = field(default_factory=Counter)

    def metadata(self) -> dict:
        return {
            "event_date": self.event_date.isoformat(),
            "topic": self.topic,
            "offsets_read": {str(r.partition): [r.start, r.end] for r in self.ranges},
            "records_read": self.records_read,
            "rows_written": self.rows_written,
            "rows_replaced": self.rows_replaced,
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "left_to_regular_batches": self.left_to_regular_batches,
        }


def day_window(event_date: date, read_before: timedelta, read_after: timedelta) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the Kafka timestamps read for `event_date`."""
    start = datetime.combine(event_date, time(), tzinfo=UTC)
    return start - read_before, start + timedelta(days=1) + read_after


def backfill_date(
    spark: SparkSession,
    spec: TableSpec,
    consumer: Consumer,
    bronze_path: str,
    quarantine_path: str,
    event_date: date,
    *,
    other_tables_on_topic: frozenset[str] = frozenset(),
    read_before: timedelta = DEFAULT_READ_BEFORE,
    read_after: timedelta = DEFAULT_READ_AFTER,
    now: datetime | None = None,
) -> DateBackfill:
    """Rewrite bronze's (and the quarantine's) rows of `event_date` from Kafka; see the module docstring."""
    now = now or datetime.now(UTC)
    _, regular = stored_offsets(spark, bronze_path)
    result = DateBackfill(event_date, spec.topic, [], regular)
    if not regular:  # bronze has never ingested: everything belongs to the regular micro-batches
        return result
    window = day_window(event_date, read_before, read_after)
    marks = watermarks(consumer, spec.topic)
    held = _offsets_held(spark, bronze_path, spec.topic, event_date)
    for partition, extent in _offsets_held(spark, quarantine_path, spec.topic, event_date).items():
        held[partition] = _union(held.get(partition), extent)
    for partition, (low, high) in marks.items():
        by_time = (
            _offset_at(consumer, spec.topic, partition, window[0], high),
            _offset_at(consumer, spec.topic, partition, window[1], high),
        )
        start, end = _union(by_time, held.get(partition))
        bound = regular.get(partition, low)  # a partition bronze has not read yet is all regular
        result.left_to_regular_batches += max(0, end - max(start, bound))
        end = min(end, bound)
        start = min(start, end)
        _refuse_aged_out(
            spark,
            spec.topic,
            partition,
            event_date,
            window[0],
            start,
            by_time[0],
            low,
            [bronze_path, quarantine_path],
        )
        result.ranges.append(OffsetRange(spec.topic, partition, start, end))
    if not any(r.size for r in result.ranges):
        return result

    rows: list[tuple] = []
    quarantine_rows: list[tuple] = []
    for message in read_ranges(consumer, [r for r in result.ranges if r.size]):
        result.records_read += 1
        try:
            changes = _decode_for(spec, message, other_tables_on_topic, result)
        except DecodeError as exc:
            row = to_quarantine_row(spec.table, message, str(exc), now)
            if row[_QUARANTINE_DATE] == event_date:
                quarantine_rows.append(row)
                result.quarantine_reasons[str(exc).split(":")[0]] += 1
            continue
        rows.extend(
            row
            for row in (to_bronze_row(change, now) for change in changes)
            if row[_BRONZE_DATE] == event_date
        )

    predicate = _replaced_rows(spec.topic, event_date, result.ranges)
    metadata = progress_metadata(
        STAGE,
        event_date=event_date.isoformat(),
        topic=spec.topic,
        ranges={str(r.partition): [r.start, r.end] for r in result.ranges},
    )
    if quarantine_rows or table_exists(spark, quarantine_path):
        _replace(rows_frame(spark, quarantine_rows, QUARANTINE_SCHEMA), quarantine_path, predicate, metadata)
    result.rows_replaced = spark.read.format("delta").load(bronze_path).where(predicate).count()
    _replace(rows_frame(spark, rows, BRONZE_SCHEMA), bronze_path, predicate, metadata)
    result.rows_written, result.quarantined = len(rows), len(quarantine_rows)
    return result


def _offset_at(consumer: Consumer, topic: str, partition: int, moment: datetime, high: int) -> int:
    """The first offset whose Kafka timestamp is at or after `moment`; `high` when there is none."""
    wanted = TopicPartition(topic, partition, int(moment.timestamp() * 1000))
    (found,) = consumer.offsets_for_times([wanted], timeout=15)
    if found.error is not None:
        raise KafkaReadError(
            f"offsets_for_times on {topic}[{partition}] at {moment.isoformat()}: {found.error}"
        )
    return high if found.offset == _NO_OFFSET else found.offset


def _offsets_held(spark: SparkSession, path: str, topic: str, event_date: date) -> dict[int, tuple[int, int]]:
    """partition -> [first, last + 1) offsets of the table's rows of that date and topic."""
    if not table_exists(spark, path):
        return {}
    extents = (
        spark.read.format("delta")
        .load(path)
        .where((F.col("event_date") == F.lit(event_date)) & (F.col("topic") == topic))
        .groupBy("partition")
        .agg(F.min("offset").alias("first"), F.max("offset").alias("last"))
        .collect()
    )
    return {row["partition"]: (row["first"], row["last"] + 1) for row in extents}


@overload
def _union(a: tuple[int, int], b: tuple[int, int] | None) -> tuple[int, int]: ...
@overload
def _union(a: tuple[int, int] | None, b: tuple[int, int]) -> tuple[int, int]: ...
def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _refuse_aged_out(
    spark: SparkSession,
    topic: str,
    partition: int,
    event_date: date,
    window_start: datetime,
    start: int,
    start_by_time: int,
    low: int,
    paths: list[str],
) -> None:
    """Raise BackfillRangeAgedOut when records of the date may have been deleted by retention."""
    where = f"{topic}[{partition}] for event date {event_date.isoformat()}"
    if start < low:
        raise BackfillRangeAgedOut(
            f"{where}: the date needs offsets from {start}, but Kafka retention has deleted everything "
            f"before offset {low}. Nothing was written; bronze keeps the rows it holds for that date."
        )
    if low == 0 or start_by_time > low:  # nothing deleted, or the record before the window is still there
        return
    last_removed = _kafka_time_of(spark, paths, topic, partition, low - 1)
    if last_removed is None or last_removed >= window_start:
        raise BackfillRangeAgedOut(
            f"{where}: Kafka retention has deleted offsets before {low}, and the window of the date "
            f"(Kafka time from {window_start.isoformat()}) starts at the oldest record left, so records "
            "of that date may be gone. Nothing was written; bronze keeps the rows it holds for that date."
        )


def _kafka_time_of(
    spark: SparkSession, paths: list[str], topic: str, partition: int, offset: int
) -> datetime | None:
    """The Kafka timestamp of one record, as bronze or the quarantine recorded it (None: not found)."""
    for path in paths:
        if not table_exists(spark, path):
            continue
        found = (
            spark.read.format("delta")
            .load(path)
            .where(
                (F.col("topic") == topic) & (F.col("partition") == partition) & (F.col("offset") == offset)
            )
            .select("kafka_ts")
            .limit(1)
            .collect()
        )
        if found and found[0]["kafka_ts"] is not None:
            return found[0]["kafka_ts"].replace(tzinfo=UTC)
    return None


def _replaced_rows(topic: str, event_date: date, ranges: list[OffsetRange]) -> str:
    """The rows a backfill replaces: the date's rows of the topic below the regular offsets."""
    below = " OR ".join(f"(`partition` = {r.partition} AND `offset` < {r.end})" for r in ranges if r.end > 0)
    topic_sql = topic.replace("\\", "\\\\").replace("'", "\\'")
    return f"event_date = DATE'{event_date.isoformat()}' AND topic = '{topic_sql}' AND ({below or 'FALSE'})"


def _replace(frame: DataFrame, path: str, predicate: str, metadata: str) -> None:
    """One Delta commit: the rows matching `predicate` become `frame` (which must match it too)."""
    (
        frame.write.format("delta")
        .mode("overwrite")
        .partitionBy("event_date")
        .option("replaceWhere", predicate)
        .option("userMetadata", metadata)
        .save(path)
    )
