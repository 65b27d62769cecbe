"""Progress recorded inside Delta commits.

Every stage that consumes something (Kafka offsets, an upstream Delta version) records what it
consumed in the `userMetadata` of the same commit that writes its output, as JSON with a `stage` key.
Reading it back means finding the newest commit of that stage in the table's history. Because the
record and the data land in one atomic commit, a crash either keeps both or neither.
"""

from __future__ import annotations

import json

from delta.tables import DeltaTable
from py4j.java_gateway import JavaClass
from pyspark.sql import SparkSession

from transforms import delta_rs
from transforms.sql_text import quote_identifier, sql_string

# Table properties Delta keeps itself and refuses from a user (a column-mapped table's column counter).
DELTA_MANAGED_PROPERTIES = frozenset({"delta.columnMapping.maxColumnId"})
SKIP_EMPTY_COMMITS = "spark.databricks.delta.skipRecordingEmptyCommits"


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def latest_progress(
    spark: SparkSession, path: str, stage: str, at_or_before: int | None = None
) -> dict | None:
    """The userMetadata of the newest commit written by `stage`, or None (no table, or no such commit).

    `at_or_before`: only commits up to that table version (what the table held as of that version).

    Reads the table's commit files (`_delta_log/<version>.json`) newest first, on the driver, and stops
    at the first commit of the stage (the common case, the stage wrote the last commit, reads one
    file) or at the oldest commit the log still holds (what Delta's own history covers). No Spark job:
    DeltaTable.history() runs one per call, and a micro-batch made dozens of these calls.
    """
    newest = current_version(spark, path)
    if newest is None:
        return None
    marker = f'"stage":"{stage}"'
    version = newest if at_or_before is None else min(newest, at_or_before)
    while version >= 0:
        info = commit_info(spark, path, version)
        if info is None:  # older commits were cleaned up
            return None
        metadata = info.get("userMetadata")
        if metadata and marker in metadata:
            return json.loads(metadata)
        version -= 1
    return None


def progress_metadata(stage: str, **fields) -> str:
    """The userMetadata text for a commit of `stage` (compact JSON, the marker first)."""
    return json.dumps({"stage": stage, **fields}, separators=(",", ":"), sort_keys=False)


def record_progress_only(spark: SparkSession, path: str, user_metadata: str) -> None:
    """A commit that adds no row and records `user_metadata`: a stage consumed input that changes
    nothing in its output (and must not read it again)."""
    empty = spark.read.format("delta").load(path).limit(0)
    previous = spark.conf.get(SKIP_EMPTY_COMMITS, None)
    spark.conf.set(SKIP_EMPTY_COMMITS, "false")  # Delta skips a commit that adds nothing, by default
    try:
        empty.write.format("delta").mode("append").option("userMetadata", user_metadata).save(path)
    finally:
        if previous is None:
            spark.conf.unset(SKIP_EMPTY_COMMITS)
        else:
            spark.conf.set(SKIP_EMPTY_COMMITS, previous)


def current_version(spark: SparkSession, path: str) -> int | None:
    """The table's newest version (None: no table), found in its log folder without a Spark job: from
    the last checkpoint Delta recorded (`_last_checkpoint`, a hint) up to the last commit file."""
    file_system, log = _file_system(spark, _log_folder(path))
    if not file_system.exists(log):
        return None
    version = _last_checkpoint_version(spark, path)
    if version is None:
        if not _commit_file_exists(spark, path, 0):
            return None
        version = 0
    while _commit_file_exists(spark, path, version + 1):
        version += 1
    return version


def commit_info(spark: SparkSession, path: str, version: int) -> dict | None:
    """The `commitInfo` action of one commit ({} when it has none; None when its file is gone)."""
    text = _read_text(spark, _commit_file(path, version))
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith('{"commitInfo"'):
            return json.loads(line)["commitInfo"]
    return {}


def table_size_and_properties(spark: SparkSession, path: str) -> tuple[int, dict[str, str]]:
    """The bytes of data the table's current version holds and its table properties.

    Read from the version's checksum file (`_delta_log/<version>.crc`, which Delta writes beside each
    commit) on the driver: no Spark job. A commit of delta-rs has no checksum file: then delta-rs
    reads the log (a few ms once the table is open). Where delta-rs cannot, `DESCRIBE DETAIL`
    answers, with a job."""
    version = current_version(spark, path)
    text = None if version is None else _read_text(spark, f"{_log_folder(path)}/{version:020d}.crc")
    if text:
        checksum = json.loads(text)
        if "tableSizeBytes" in checksum and "metadata" in checksum:
            return int(checksum["tableSizeBytes"]), dict(checksum["metadata"].get("configuration") or {})
    if version is not None:
        found = delta_rs.size_and_properties(spark, path)
        if found is not None:
            return found
    detail = DeltaTable.forPath(spark, path).detail().collect()[0]
    return int(detail["sizeInBytes"]), dict(detail["properties"] or {})


def last_commit_metrics(spark: SparkSession, path: str) -> tuple[int, dict[str, str]]:
    """The newest commit's version and its operation metrics (what DeltaTable.history(1) shows), read
    from the commit file: no Spark job. Call it right after the write, as the table's one writer."""
    version = current_version(spark, path)
    if version is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return version, dict((commit_info(spark, path, version) or {}).get("operationMetrics") or {})


def _commit_file(path: str, version: int) -> str:
    return f"{_log_folder(path)}/{version:020d}.json"


def _commit_file_exists(spark: SparkSession, path: str, version: int) -> bool:
    file_system, commit = _file_system(spark, _commit_file(path, version))
    return bool(file_system.exists(commit))


def _last_checkpoint_version(spark: SparkSession, path: str) -> int | None:
    text = _read_text(spark, f"{_log_folder(path)}/_last_checkpoint")
    try:
        return int(json.loads(text)["version"]) if text else None
    except (ValueError, KeyError, TypeError):
        return None  # a hint only: without it the commits are counted from 0


def _read_text(spark: SparkSession, file_path: str) -> str | None:
    """A (small) file's text, through the session's Hadoop file system; None when it does not exist."""
    file_system, hadoop_path = _file_system(spark, file_path)
    if not file_system.exists(hadoop_path):
        return None
    stream = file_system.open(hadoop_path)
    try:
        return _java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8")
    finally:
        stream.close()


def _log_folder(path: str) -> str:
    return path.rstrip("/") + "/_delta_log"


def replace_table(spark: SparkSession, source_path: str, target_path: str, user_metadata: str) -> int:
    """Make the target table hold exactly the source table's rows and columns, in ONE commit on the
    target that carries `user_metadata`; returns that commit's version.

    Readers of the target see its old content or the new one, never a mix or an empty table. The
    source's table properties are set on the target first (a commit without data, only when they
    differ); a missing target is created empty with them first.
    """
    source = spark.read.format("delta").load(source_path)
    detail = DeltaTable.forPath(spark, source_path).detail().collect()[0]
    properties = {k: v for k, v in (detail["properties"] or {}).items() if k not in DELTA_MANAGED_PROPERTIES}
    partition_columns = list(detail["partitionColumns"] or [])
    if not _has_own_log(spark, target_path):
        builder = DeltaTable.createIfNotExists(spark).location(target_path).addColumns(source.schema)
        builder = builder.partitionedBy(*partition_columns) if partition_columns else builder
        for name, value in properties.items():
            builder = builder.property(name, value)
        builder.execute()
    else:
        stored = dict(DeltaTable.forPath(spark, target_path).detail().collect()[0]["properties"] or {})
        changed = {name: value for name, value in properties.items() if stored.get(name) != value}
        if changed:
            assignments = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in sorted(changed.items()))
            spark.sql(f"ALTER TABLE delta.{quote_identifier(target_path)} SET TBLPROPERTIES ({assignments})")
    writer = source.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    writer = writer.partitionBy(*partition_columns) if partition_columns else writer
    writer.option("userMetadata", user_metadata).save(target_path)
    version = current_version(spark, target_path)
    assert version is not None, target_path  # the save above has just committed to the table
    return version


def remove_folder(spark: SparkSession, path: str) -> None:
    """Delete a folder and everything under it, on any file system the session reaches (local, HDFS, S3)."""
    file_system, hadoop_path = _file_system(spark, path)
    if file_system.exists(hadoop_path):
        file_system.delete(hadoop_path, True)


def _has_own_log(spark: SparkSession, path: str) -> bool:
    """A Delta table rooted exactly at `path` (DeltaTable.isDeltaTable also says yes for a folder INSIDE
    a table, such as silver's `_changes` before its first commit)."""
    file_system, log = _file_system(spark, path.rstrip("/") + "/_delta_log")
    return bool(file_system.exists(log))


def _jvm(spark: SparkSession):
    """The session's JVM gateway view (None only before a SparkContext starts, so never for a live session)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm


def _java_class(spark: SparkSession, name: str) -> JavaClass:
    """The Java class `name` (fully qualified) of the session's JVM. `jvm.org.apache.hadoop.fs.Path`
    asks the JVM about each dotted part in turn, a round trip each, and these helpers run for every
    commit file a version lookup probes (dozens per micro-batch step); a JavaClass made from the whole
    name asks nothing until it is used."""
    return JavaClass(name, _jvm(spark)._gateway_client)


def _file_system(spark: SparkSession, path: str):
    hadoop_path = _java_class(spark, "org.apache.hadoop.fs.Path")(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path
