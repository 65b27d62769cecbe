"""Progress recorded inside Delta commits.

Every stage that consumes something (Kafka offsets, an upstream Delta version) records what it
consumed in the `userMetadata` of the same commit that writes its output, as JSON with a `stage` key.
Reading it back means finding the newest commit of that stage in the table's history. Because the
record and the data land in one atomic commit, a crash either keeps both or neither.
"""

from __future__ import annotations

import json

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

RECENT_COMMITS = 50


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def latest_progress(spark: SparkSession, path: str, stage: str, at_or_before: int | None = None) -> dict | None:
    """The userMetadata of the newest commit written by `stage`, or None (no table, or no such commit).

    `at_or_before`: only commits up to that table version (what the table held as of that version).

    Looks at the last RECENT_COMMITS commits first (the common case: the stage wrote the last commit,
    maintenance such as OPTIMIZE may have added a few), then the whole retained history.
    """
    if not table_exists(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)
    marker = f'"stage":"{stage}"'
    for history in (table.history(RECENT_COMMITS), table.history()):
        if at_or_before is not None:
            history = history.where(F.col("version") <= at_or_before)
        rows = (
            history.where(F.col("userMetadata").contains(marker))
            .orderBy(F.col("version").desc())
            .select("userMetadata")
            .limit(1)
            .collect()
        )
        if rows:
            return json.loads(rows[0]["userMetadata"])
    return None


def progress_metadata(stage: str, **fields) -> str:
    """The userMetadata text for a commit of `stage` (compact JSON, the marker first)."""
    return json.dumps({"stage": stage, **fields}, separators=(",", ":"), sort_keys=False)


def current_version(spark: SparkSession, path: str) -> int | None:
    if not table_exists(spark, path):
        return None
    return DeltaTable.forPath(spark, path).history(1).select("version").collect()[0]["version"]
