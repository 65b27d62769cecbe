"""The Spark side of a projection: its rows at given gold versions, and what changed between two states.

- `projection_rows`: the spec's SQL over the gold entity views read at the given Delta versions, cast
  to what the CQL types hold (timestamps cut to milliseconds, as Cassandra stores them), rows with a
  null key column set aside (Cassandra cannot store them), cut to the first `latest_n` rows of each
  partition in clustering order, each with a content hash.
- `affected_partitions`: the partitions a set of gold changes can alter, from the gold tables' change
  data feed (every image: inserted, deleted, before and after each update) mapped to the partition
  key as the spec's `affected_partitions` says.
- `change_plan`: the new rows of those partitions against the rows of every state the table may hold
  (recomputed from gold by Delta time travel, with the spec each state was written with), as one
  frame of decisions (upsert, delete, unchanged, rejected, duplicate) that the driver streams once.

Old states are read back from gold by version, so gold versions a projection may still compare
against must not be vacuumed away (Delta's default retention, 7 days, is far more than a batch).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from transforms.specs import CHANGED_VIEW
from transforms.specs.projection import ProjectionSpec, base_type
from transforms.sql_text import quote_identifier

HASH = "__row_hash"
ACTION = "__action"
COPIES, IS_NEW, OLD_HASH, OLD_HASHES, STATE, STATES = (
    "__copies",
    "__new",
    "__old_hash",
    "__old_hashes",
    "__state",
    "__states",
)
CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")
_SPARK_TYPE = {
    "text": "string",
    "ascii": "string",
    "inet": "string",
    "uuid": "string",
    "timeuuid": "string",
    "int": "int",
    "bigint": "bigint",
    "smallint": "smallint",
    "tinyint": "tinyint",
    "varint": "decimal(38,0)",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "blob": "binary",
}
# Views are bound when Spark analyses a query (at spark.sql()), so a frame keeps the tables it was
# built with even after the names are rebound; the lock keeps two threads from binding at once.
_VIEW_LOCK = threading.Lock()


class ProjectionDataError(RuntimeError):
    """The gold data or the spec's SQL cannot make the projection (missing column, duplicate key, ...)."""


def gold_at(spark: SparkSession, path: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def changed_rows(spark: SparkSession, path: str, after_version: int, up_to_version: int) -> DataFrame:
    """Every row image the change data feed holds for versions after_version+1 .. up_to_version."""
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after_version + 1)
        .option("endingVersion", up_to_version)
        .load(path)
    )
    return changes.drop(*CDF_COLUMNS)


def run_sql(spark: SparkSession, sql_text: str, views: Mapping[str, DataFrame]) -> DataFrame:
    """`sql_text` with each name of `views` bound to its frame (bound for good: later rebinding is harmless)."""
    with _VIEW_LOCK:
        for name, frame in views.items():
            frame.createOrReplaceTempView(name)
        try:
            return spark.sql(sql_text)
        finally:
            for name in views:
                spark.catalog.dropTempView(name)


def cql_value(column: Column, cql_type: str, spark_type) -> Column:
    """A column cast to what its CQL type stores (collections pass through as Spark holds them)."""
    base = base_type(cql_type)
    if base == "timestamp":
        return F.timestamp_millis(F.unix_millis(column.cast("timestamp")))
    if base == "decimal":
        return column if isinstance(spark_type, DecimalType) else column.cast("decimal(38,18)")
    if base in _SPARK_TYPE:
        return column.cast(_SPARK_TYPE[base])
    return column


def gold_views(
    spark: SparkSession, entities: list[str], gold_paths: Mapping[str, str], versions: Mapping[str, int]
) -> dict[str, DataFrame]:
    missing = [e for e in entities if e not in gold_paths or e not in versions]
    if missing:
        raise ProjectionDataError(f"no gold path or version given for entity(ies) {missing}")
    return {entity: gold_at(spark, gold_paths[entity], versions[entity]) for entity in entities}


def projection_rows(
    spark: SparkSession,
    spec: ProjectionSpec,
    gold_paths: Mapping[str, str],
    versions: Mapping[str, int],
    partitions: DataFrame | None = None,
) -> tuple[DataFrame, DataFrame]:
    """(rows with a content hash, rows set aside for a null key column), limited to `partitions` if given
    (a frame of partition-key values, as affected_partitions() returns)."""
    result = run_sql(spark, spec.query, gold_views(spark, spec.entities, gold_paths, versions))
    missing = [name for name in spec.columns if name not in result.columns]
    if missing:
        raise ProjectionDataError(
            f"projection {spec.projection}: its SQL does not return column(s) {missing} (it returns {result.columns})"
        )
    types = {f.name: f.dataType for f in result.schema.fields}
    rows = result.select(
        *[cql_value(F.col(quote_identifier(n)), t, types[n]).alias(n) for n, t in spec.columns.items()]
    )
    if partitions is not None:
        row_types = {f.name: f.dataType for f in rows.schema.fields}
        keys = partitions.select(
            *[
                cql_value(F.col(k), spec.columns[k], row_types[k]).cast(row_types[k]).alias(k)
                for k in spec.partition_key
            ]
        )
        rows = rows.join(keys, on=spec.partition_key, how="left_semi")
    null_key = F.lit(False)
    for name in spec.primary_key:
        null_key = null_key | F.col(name).isNull()
    rejected, rows = rows.where(null_key), rows.where(~null_key)
    if spec.latest_n is not None:
        order = [F.col(n).desc() if d == "desc" else F.col(n).asc() for n, d in spec.clustering_columns]
        window = Window.partitionBy(*spec.partition_key).orderBy(*order)
        rows = rows.withColumn("__rank", F.row_number().over(window)).where(F.col("__rank") <= spec.latest_n)
        rows = rows.drop("__rank")
    content = F.to_json(F.struct(*[F.col(n) for n in spec.columns]))
    return rows.withColumn(HASH, F.sha2(content, 256)), rejected


def affected_partitions(
    spark: SparkSession,
    spec: ProjectionSpec,
    gold_paths: Mapping[str, str],
    versions_before: Mapping[str, int],
    versions_now: Mapping[str, int],
    states: Sequence[Mapping[str, int]],
) -> DataFrame | None:
    """Distinct partition keys that gold changes between the two version
    sets can alter; None when no entity changed. `states` are the gold versions a query-form mapping
    joins the changed rows with (the states whose rows may be in the table, and the new one)."""
    frames = []
    for entity, mapping in spec.partition_mappings.items():
        before, now = versions_before[entity], versions_now[entity]
        if now == before:
            continue
        changed = changed_rows(spark, gold_paths[entity], before, now)
        if isinstance(mapping, list):
            frames.append(
                changed.select(
                    *[
                        F.col(quote_identifier(c)).alias(k)
                        for c, k in zip(mapping, spec.partition_key, strict=True)
                    ]
                )
            )
            continue
        for versions in states:
            views = {**gold_views(spark, spec.entities, gold_paths, versions), CHANGED_VIEW: changed}
            keys = run_sql(spark, mapping, views)
            missing = [k for k in spec.partition_key if k not in keys.columns]
            if missing:
                raise ProjectionDataError(
                    f"projection {spec.projection}: affected_partitions.{entity} does not return {missing}"
                )
            frames.append(keys.select(*spec.partition_key))
    if not frames:
        return None
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union.dropna().distinct()


def change_plan(
    spark: SparkSession,
    spec: ProjectionSpec,
    gold_paths: Mapping[str, str],
    versions: Mapping[str, int],
    partitions: DataFrame | None,
    old_states: list[tuple[ProjectionSpec, Mapping[str, int]]],
    comparable: bool,
) -> DataFrame:
    """One row per primary key to decide on, with the spec's columns (timestamps as epoch
    milliseconds) and ACTION: upsert, delete, unchanged, rejected (a null key column) or duplicate
    (the SQL returned the key more than once).

    A new row is unchanged only if `comparable` (the old states were written with this very spec) and
    every old state holds it with the same content; a key of an old state missing from the new rows
    is a delete. `partitions` (None: all) limits new and old rows alike.
    """
    key = spec.primary_key
    new, rejected = projection_rows(spark, spec, gold_paths, versions, partitions)
    new = new.withColumn(COPIES, F.count(F.lit(1)).over(Window.partitionBy(*key))).withColumn(
        IS_NEW, F.lit(True)
    )
    if old_states:
        olds = [
            projection_rows(spark, old_spec, gold_paths, old_versions, partitions)[0].select(
                *key, F.col(HASH).alias(OLD_HASH), F.lit(index).alias(STATE)
            )
            for index, (old_spec, old_versions) in enumerate(old_states)
        ]
        held = (
            reduce(DataFrame.unionByName, olds)
            .groupBy(*key)
            .agg(F.countDistinct(STATE).alias(STATES), F.collect_set(OLD_HASH).alias(OLD_HASHES))
        )
        new = new.join(held, on=key, how="full_outer")
        same_everywhere = (
            (F.col(STATES) == len(old_states))
            & (F.size(OLD_HASHES) == 1)
            & (F.col(OLD_HASHES)[0] == F.col(HASH))
        )
    else:
        same_everywhere = F.lit(False)
    action = (
        F.when(F.col(IS_NEW).isNull(), "delete")
        .when(F.col(COPIES) > 1, "duplicate")
        .when(F.lit(comparable) & same_everywhere, "unchanged")
        .otherwise("upsert")
    )
    planned = new.select(*spec.columns, action.alias(ACTION))
    planned = planned.unionByName(rejected.select(*spec.columns, F.lit("rejected").alias(ACTION)))
    return planned.select(
        *[
            F.unix_millis(F.col(name)).alias(name) if base_type(cql_type) == "timestamp" else F.col(name)
            for name, cql_type in spec.columns.items()
        ],
        ACTION,
    )
