"""Offset ranges: which Kafka records one bronze batch reads (pure logic, no I/O).

A batch reads, per partition, the half-open range [start, end): `start` is the next offset after what
the bronze table's last batch recorded (or the partition's low watermark for a new table), `end` is the
high watermark seen when the batch starts, capped at `start + max_records_per_partition`. Records that
arrive during the batch wait for the next one: the range is fixed before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class OffsetRange:
    topic: str
    partition: int
    start: int  # first offset to read
    end: int  # first offset NOT to read

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


class OffsetsAgedOut(RuntimeError):
    """The next offset to read is below the partition's low watermark: Kafka retention deleted records."""


def plan_ranges(
    topic: str,
    watermarks: dict[int, tuple[int, int]],
    stored_next: dict[int, int],
    max_records_per_partition: int | None = None,
    allow_gap: bool = False,
) -> list[OffsetRange]:
    """Ranges for every partition of `topic` given (low, high) watermarks and the stored next offsets.

    A partition whose stored next offset is below its low watermark has lost records to retention: that
    is an error (OffsetsAgedOut) unless `allow_gap` is set, in which case reading resumes at the low mark.
    """
    ranges = []
    for partition in sorted(watermarks):
        low, high = watermarks[partition]
        start = stored_next.get(partition, low)
        if start < low:
            if not allow_gap:
                raise OffsetsAgedOut(
                    f"{topic}[{partition}]: bronze stopped at offset {start} but Kafka now starts at {low}: "
                    f"{low - start} records were deleted by retention before they were ingested"
                )
            start = low
        end = high
        if max_records_per_partition is not None:
            end = min(end, start + max_records_per_partition)
        ranges.append(OffsetRange(topic, partition, start, max(start, end)))
    return ranges
