"""delta-rs (the `deltalake` package, the Delta Lake project's Rust implementation) beside Spark, for
writes too small for Spark's fixed cost: silver's and gold's MERGEs of a few keys
(transforms.merge.scd1_small, transforms.gold.small_merge) and the change log's appends.

A Delta MERGE in Spark costs 2-5 s of planning, jobs and commit work on 2 cores whatever the batch;
delta-rs MERGEs the same few hundred rows in about 0.05 s. Both engines follow the Delta protocol, so a
table may take one commit from delta-rs and the next from Spark: Spark reads delta-rs's commits, its
change data feed and its `userMetadata` (where every stage records its progress) as its own.

Which tables: delta-rs does not write every table feature Spark's Delta does (deletion vectors above
all, which silver and gold turn on once a table is big: transforms.deletion_vectors). `open_writable`
opens a table only when its protocol holds no feature outside WRITABLE_FEATURES, the features this
project's tests have written with delta-rs; otherwise the caller writes with Spark.

Where: the table path as Spark names it (a plain path, `hdfs://`, `s3a://`) with storage options taken
from the Spark session's Hadoop settings (LakeResource.hadoop_settings puts the lake's there), so both
engines reach the lake with the same settings. On S3 delta-rs commits with a plain PUT, as Spark's
default S3 log store does: both rely on one writer per table at a time, which the platform's per-table
pools give.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.table import TableMerger
from pyspark.sql import SparkSession

# Table features of tables delta-rs may write here (reader version 1, writer features of Spark's
# silver and gold tables: a change data feed, and the two features Delta's writer version 7 lists for
# every table).
WRITABLE_FEATURES = frozenset({"appendOnly", "invariants", "changeDataFeed"})
# The most values (rows times columns) a MERGE or an append collects to the driver for delta-rs; a
# bigger one goes through Spark (500,000 values: 12,500 rows of 40 columns).
SMALL_MERGE_CELLS = 500_000
# Spark's Delta writes a checkpoint every `delta.checkpointInterval` versions, 10 unless the table says
# otherwise; delta-rs's own default is 100, which would leave readers (and transforms.delta_commits,
# which counts versions from the last checkpoint) replaying up to 99 commit files.
CHECKPOINT_INTERVAL = 10


def quote(name: str) -> str:
    """A column name as a delta-rs (DataFusion) SQL identifier: quoted, so case and spaces are kept."""
    return '"' + name.replace('"', '""') + '"'


def open_writable(spark: SparkSession, path: str) -> DeltaTable | None:
    """The table at `path`, opened by delta-rs, when delta-rs may write it (see the module docstring);
    None when its protocol holds a feature outside WRITABLE_FEATURES, or when delta-rs cannot open it
    (a file system or setting it does not support): then Spark writes, and fails clearly if the lake
    itself is unreachable."""
    try:
        table = _open(spark, path)
    except (DeltaError, OSError):
        return None
    return table if _writable(table) else None


def _writable(table: DeltaTable) -> bool:
    protocol = table.protocol()
    features = set(protocol.writer_features or ()) | set(protocol.reader_features or ())
    return protocol.min_reader_version == 1 and features <= WRITABLE_FEATURES


def append_in_one_commit(spark: SparkSession, path: str, rows: pa.Table) -> bool:
    """Append `rows` to the table at `path` in one commit, creating the table (every column nullable,
    as Spark would) when there is none. False when delta-rs may not write the table (see
    open_writable) or failed before it committed: the caller appends with Spark. An error after the
    commit is raised."""
    options = storage_options(path, spark.sparkContext._jsc.hadoopConfiguration().get)
    try:
        table: DeltaTable | None = DeltaTable(path, storage_options=options)
    except TableNotFoundError:
        table = None
    except (DeltaError, OSError):
        return False
    if table is not None and not _writable(table):
        return False
    nullable = rows.cast(pa.schema([field.with_nullable(True) for field in rows.schema]))
    before = None if table is None else table.version()
    try:
        if table is None:
            write_deltalake(path, nullable, mode="append", storage_options=options)
            table = DeltaTable(path, storage_options=options)
        else:
            write_deltalake(table, nullable, mode="append")  # moves `table` to the new version
    except (DeltaError, OSError):
        if _current_version(path, options) == before:
            return False
        raise
    _checkpoint_when_due(table)
    return True


def _current_version(path: str, options: dict[str, str]) -> int | None:
    """The table's newest version, None when there is no table (raises when the lake cannot be read)."""
    try:
        return DeltaTable(path, storage_options=options).version()
    except TableNotFoundError:
        return None


def merge_in_one_commit(
    table: DeltaTable,
    source: pa.Table,
    predicate: str,
    clauses: Callable[[TableMerger], TableMerger],
    metadata: str | None,
) -> dict | None:
    """MERGE `source` (alias `s`) into `table` (alias `t`) ON `predicate` with the `clauses` given, in
    one commit carrying `metadata` as its `userMetadata` (when not None), made even when no row changes
    (a stage's progress must be recorded); a checkpoint follows at Spark's versions. Returns delta-rs's
    MERGE metrics and the new `version`.

    None when delta-rs failed before it committed (say, HDFS DataNodes its own client cannot reach):
    the table is as it was, but for data files no version holds, and the caller writes with Spark. An
    error after the commit is raised: the batch is in the table."""
    before = table.version()
    properties = _with_user_metadata(metadata)
    try:
        merger = table.merge(
            source, predicate=predicate, source_alias="s", target_alias="t", commit_properties=properties
        )
        metrics = clauses(merger).execute()
    except (DeltaError, OSError):
        table.update_incremental()  # the log as it is now (raises if the lake cannot be read at all)
        if table.version() == before:
            return None
        raise
    if table.version() == before:  # nothing changed: delta-rs made no commit
        empty = pa.schema(table.schema().to_arrow()).empty_table()
        write_deltalake(table, empty, mode="append", commit_properties=properties)  # moves `table` on
    _checkpoint_when_due(table)
    return {**metrics, "version": table.version()}


def _with_user_metadata(metadata: str | None) -> CommitProperties | None:
    """delta-rs writes the commit's `userMetadata` from its custom metadata, where Spark's readers (and
    transforms.delta_commits) find it."""
    return None if metadata is None else CommitProperties(custom_metadata={"userMetadata": metadata})


def _checkpoint_when_due(table: DeltaTable) -> None:
    """A checkpoint at the versions Spark's Delta would write one (CHECKPOINT_INTERVAL)."""
    interval = int(table.metadata().configuration.get("delta.checkpointInterval", CHECKPOINT_INTERVAL))
    if table.version() > 0 and table.version() % interval == 0:  # a new table's version 0 needs none
        table.create_checkpoint()


def size_and_properties(spark: SparkSession, path: str) -> tuple[int, dict[str, str]] | None:
    """The bytes of data the table's current version holds and its table properties, read by delta-rs
    from the table's log (no Spark job); None when delta-rs cannot read that log."""
    try:
        table = _open(spark, path)
        sizes = table.get_add_actions(flatten=True).column("size_bytes").to_pylist()
    except (DeltaError, OSError):
        return None
    return sum(sizes), dict(table.metadata().configuration)


def _open(spark: SparkSession, path: str) -> DeltaTable:
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    return DeltaTable(path, storage_options=storage_options(path, hadoop.get))


def storage_options(path: str, hadoop_setting: Callable[[str], str | None]) -> dict[str, str]:
    """delta-rs's storage options for `path`, from the Hadoop settings `hadoop_setting` looks up (an
    s3a bucket's own settings first, then the general ones). A local path and HDFS need none: delta-rs
    reaches the NameNode the path names."""
    if not path.startswith("s3a://"):
        return {}
    bucket = path.split("://", 1)[1].split("/", 1)[0]

    def setting(key: str) -> str | None:
        return hadoop_setting(f"fs.s3a.bucket.{bucket}.{key}") or hadoop_setting(f"fs.s3a.{key}")

    options = {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    endpoint = setting("endpoint")
    if endpoint:
        secure = (setting("connection.ssl.enabled") or "true").lower() == "true"
        if "://" not in endpoint:
            endpoint = f"{'https' if secure else 'http'}://{endpoint}"
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = str(endpoint.startswith("http://")).lower()
    if (setting("path.style.access") or "false").lower() == "true":
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    for key, option in (
        ("endpoint.region", "AWS_REGION"),
        ("access.key", "AWS_ACCESS_KEY_ID"),
        ("secret.key", "AWS_SECRET_ACCESS_KEY"),
        ("session.token", "AWS_SESSION_TOKEN"),
    ):
        value = setting(key)
        if value:
            options[option] = value
    options.setdefault("AWS_REGION", "us-east-1")
    return options
