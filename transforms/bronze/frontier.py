"""What bronze holds of each Kafka partition, for transaction-consistent cuts (transforms.cut)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from transforms.bronze.ingest import STAGE
from transforms.cut import PartitionFrontier
from transforms.delta_commits import latest_progress


def bronze_frontiers(
    spark: SparkSession, bronze_path: str, topic: str, marks: dict[int, tuple[int, int]]
) -> list[PartitionFrontier]:
    """One frontier per partition of `topic` (marks: partition -> (low, high) watermark, read now).

    A partition bronze never read is caught up only when it holds no record."""
    progress = latest_progress(spark, bronze_path, STAGE) or {}
    next_offsets = {int(p): end for p, (_, end) in progress.get("ranges", {}).items()}
    stored = progress.get("frontier", {})
    frontiers = []
    for partition, (low, high) in sorted(marks.items()):
        sequence, kafka_ms = stored.get(str(partition), [None, None])
        caught_up = next_offsets.get(partition, low) >= high
        frontiers.append(PartitionFrontier(topic, partition, sequence, kafka_ms, caught_up))
    return frontiers
