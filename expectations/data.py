"""The Spark DataFrames a suite's expectations run on: its rows, its SQL views, its reference joins.

Spark builds them; expectations.validate decides which Great Expectations engine validates them (a
small frame's rows are collected for its pandas engine, a big frame stays on its Spark engine).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from expectations.suite import TABLE_PLACEHOLDER, THIS_PLACEHOLDER, Reference, Suite, table_ref
from transforms.bronze_rows import QUARANTINE_SCHEMA
from transforms.delta_commits import latest_progress, table_exists
from transforms.sql_text import quote_identifier

TablePath = Callable[[str, str], str]  # (layer, name) -> Delta table path, e.g. LakeResource.table_path
BRONZE_STAGE = "bronze"


class MissingTable(RuntimeError):
    """A table a suite reads does not exist (yet)."""


def read_table(spark: SparkSession, path: str) -> DataFrame:
    if not table_exists(spark, path):
        raise MissingTable(f"no Delta table at {path}")
    return spark.read.format("delta").load(path)


def suite_rows(spark: SparkSession, suite: Suite, table_path: TablePath) -> DataFrame:
    """The rows every expectation of the suite sees (its `data`, filtered by its `where`)."""
    if suite.data == "last_batch_quarantine":
        rows = last_batch_quarantine(
            spark, table_path("bronze", suite.table), table_path("quarantine", suite.table)
        )
    else:
        rows = read_table(spark, table_path(suite.layer, suite.table))
    return rows.where(suite.where) if suite.where else rows


def last_batch_quarantine(spark: SparkSession, bronze_path: str, quarantine_path: str) -> DataFrame:
    """The quarantine rows written by bronze's newest batch (none if it quarantined nothing).

    Bronze tags its quarantine commit with the batch number (transforms.bronze.ingest); the rows of
    that one commit are read through the table's change data feed.
    """
    empty = spark.createDataFrame([], QUARANTINE_SCHEMA)
    progress = latest_progress(spark, bronze_path, BRONZE_STAGE)
    if progress is None or not table_exists(spark, quarantine_path):
        return empty
    history = DeltaTable.forPath(spark, quarantine_path).history().select("version", "userMetadata").collect()
    versions = [row["version"] for row in history if _batch_of(row["userMetadata"]) == progress["batch"]]
    if not versions:
        return empty
    version = max(versions)
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", version)
        .option("endingVersion", version)
        .load(quarantine_path)
    )
    return changes.where(F.col("_change_type") == "insert").select(*QUARANTINE_SCHEMA.fieldNames())


def _batch_of(user_metadata: str | None) -> int | None:
    try:
        metadata = json.loads(user_metadata or "")
    except ValueError:
        return None
    if not isinstance(metadata, dict) or metadata.get("stage") != BRONZE_STAGE:
        return None
    return metadata.get("batch")


def run_sql(spark: SparkSession, sql: str, rows: DataFrame, table_path: TablePath) -> DataFrame:
    """`sql` with `{this}` bound to `rows` and every `{layer.name}` to that Delta table."""
    for layer, name in TABLE_PLACEHOLDER.findall(sql):
        read_table(spark, table_path(layer, name))  # a clear error when it is missing
    text = TABLE_PLACEHOLDER.sub(lambda m: _delta_path_sql(table_path(m.group(1), m.group(2))), sql)
    if THIS_PLACEHOLDER in text:  # pyspark binds a DataFrame passed by name to `{name}` in the query
        return spark.sql(text, this=rows)
    return spark.sql(text)


def _delta_path_sql(path: str) -> str:
    return "delta." + quote_identifier(path)


def with_parent_found(
    spark: SparkSession, rows: DataFrame, reference: Reference, table_path: TablePath, column: str
) -> DataFrame:
    """`rows`, each with `column`: true when its parent exists, null when it does not. Only the rows
    whose reference columns are all set are children (the check looks at them alone); the others get
    null too. A left join with the parent's distinct keys: every row of `rows` stays, once."""
    parent = read_table(spark, table_path(*table_ref(reference.to)))
    if reference.where:
        parent = parent.where(reference.where)
    aliases = [f"{column}_key_{i}" for i in range(len(reference.on))]
    parent_keys = (
        parent.select(
            *[
                F.col(quote_identifier(p)).alias(a)
                for p, a in zip(reference.on.values(), aliases, strict=True)
            ]
        )
        .distinct()
        .withColumn(column, F.lit(True))
    )
    condition = [F.col(quote_identifier(c)) == F.col(a) for c, a in zip(reference.on, aliases, strict=True)]
    return rows.join(parent_keys, on=reduce(operator.and_, condition), how="left").drop(*aliases)


def children(reference: Reference) -> Column:
    """The rows a reference check looks at: those whose reference columns are all set."""
    return reduce(operator.and_, [F.col(quote_identifier(c)).isNotNull() for c in reference.on])
