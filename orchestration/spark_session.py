"""One way to build a SparkSession with Delta Lake: local jars from the Maven cache, nothing downloaded.

pyspark already ships Hadoop, Parquet, Jackson and Scala; of the delta-spark dependency tree we hand
Spark only the jars it lacks (delta-spark, delta-storage, delta-kernel, unitycatalog, a few small ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from orchestration.stack.jars import ensure_jars, jars_missing_from

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Every table the platform creates keeps a change data feed: silver reads bronze's new commits
    # and gold reads silver's changed keys through it.
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
}

LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.ansi.enabled": "false",
}


def delta_jars() -> list[Path]:
    bundled = list((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    return jars_missing_from(ensure_jars("delta"), bundled)


def build_spark_session(
    master: str = "local[2]",
    app_name: str = "cdc-lakehouse",
    extra_conf: Mapping[str, str] | None = None,
    extra_jars: list[Path] | None = None,
) -> SparkSession:
    """Get (or create) the process's SparkSession with Delta configured."""
    jars = delta_jars() + list(extra_jars or [])
    builder = SparkSession.builder.master(master).appName(app_name)
    conf = {**LOCAL_DEFAULTS, **DELTA_CONF, "spark.jars": ",".join(str(j) for j in jars)}
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
