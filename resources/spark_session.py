"""One way to build a SparkSession with Delta Lake: local jars from the Maven cache, nothing downloaded.

pyspark already ships Hadoop, Parquet, Jackson and Scala; of the delta-spark dependency tree we hand
Spark only the jars it lacks (delta-spark, delta-storage, delta-kernel, unitycatalog, a few small ones).

The lake decides the rest. `hdfs://` needs nothing more (pyspark bundles the HDFS client). `s3a://`
needs Hadoop's S3 connector (hadoop-aws and the AWS SDK bundle, the `s3a` jar profile, ~690 MB, so
it is fetched and loaded only for an s3a:// lake) and its Hadoop settings (endpoint, credentials),
which resources.connections.LakeResource.hadoop_settings() gives.

Jars go through `spark.jars`, so on a cluster (`spark://...`) the executors, which are other JVMs,
fetch them from the driver too. In local mode the executors live in the driver's JVM, so the lake's
jars go on the driver's class path instead (`spark.driver.extraClassPath`): `spark.jars` would copy
the 690 MB of the s3a jars into every session's temporary folder.

A process has one SparkContext and one SparkSession, except that a run's steps running in threads
(orchestration.threaded_executor) each take a session of their own over it (`session_for_this_thread`):
a session holds SQL settings (Delta's commit metadata) and temporary views, which must not leak
between steps running at once. `use_lake` makes a session that is already running reach a lake
(e.g. the test session, started for local folders, then used on S3): it sets the Hadoop settings and,
if the s3a connector is missing, adds its jars the way `spark.jars` does (driver class loader and
`SparkContext.addJar` for executors).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pyspark
from py4j.protocol import Py4JError
from pyspark.sql import SparkSession

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
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.ansi.enabled": "false",
    # Row projections interpreted instead of compiled (whole-stage code generation stays on). Delta's
    # MERGE builds its per-row projections (the cell rule's CASE expressions over every column) in
    # every task, and Spark writes and compiles Java source for each: for a micro-batch of a few
    # hundred rows per task that costs more than the rows. Measured on 2 cores: a silver batch of 360
    # changes into 300 rows 9.8-13.2 -> 7.4-7.6 s, the 8-table micro-batch (bench/bench_microbatch.py)
    # 248 -> 185 s; a 100,000-change batch into 1M rows 53.5 -> 56.6 s (bench/bench_silver_merge.py).
    # The setting is marked internal in Spark; set it back to FALLBACK through CDC_SPARK_CONF
    # (SparkResource.conf) for big batches.
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # The driver's garbage collector: the throughput collector, not the JVM's default G1, whose
    # concurrent threads compete with the driver for the cores of a small machine. Measured with
    # bench/bench_microbatch.py on 2 cores, side by side: the changed run 104.3 and 105.6 s against
    # 114.6, 115.5 and 116.1 s with G1 (the serial collector: 112.6 s). Options of your own in
    # spark.driver.extraJavaOptions (CDC_SPARK_CONF) replace this one.
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
}

# A standalone cluster on this machine (the local stack's): small executors, everything on 127.0.0.1,
# and executors run Python with the driver's interpreter (it has pyspark). Real clusters get none of
# this; size them through SparkResource.conf / CDC_SPARK_CONF.
LOCAL_CLUSTER_DEFAULTS = {
    "spark.executor.memory": "512m",
    "spark.cores.max": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.pyspark.python": sys.executable,
}

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JARS_COMPLETE_MARK = ".complete"  # written last into a jar folder once every jar of it is there


class MissingJarsError(RuntimeError):
    """The jars a session needs are not in the jar folder. The message names the folder and the fix."""


def jar_cache_root() -> Path:
    """Where the Java dependencies wait, a folder per group (delta, s3a, ...): `$CDC_JAR_CACHE`, else
    `<project>/.cache/jars`. The platform only reads it; `make jars` (devtools.stack.jars) fills it
    from Maven Central, and a deployment may fill it any other way."""
    return Path(os.environ.get("CDC_JAR_CACHE", PROJECT_ROOT / ".cache" / "jars"))


def cached_jars(group: str) -> list[Path]:
    """The jars of one group of the jar folder; MissingJarsError when the group is missing or incomplete."""
    folder = jar_cache_root() / group
    if not (folder / JARS_COMPLETE_MARK).exists():
        fetch = "make jars" if group == "delta" else f"python -m devtools.stack.cli fetch-jars {group}"
        raise MissingJarsError(
            f"the {group} jars are not in {folder}: `{fetch}` fetches them from Maven Central, or set "
            "CDC_JAR_CACHE to a folder whose "
            f"{group}/ holds them (and a {JARS_COMPLETE_MARK} file)"
        )
    return sorted(folder.glob("*.jar"))


_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*$")


def artifact_name(jar: Path) -> str:
    """`delta-spark_2.13-4.4.0.jar` -> `delta-spark_2.13`."""
    return _VERSION_SUFFIX.sub("", jar.stem)


def jars_missing_from(jars: list[Path], present: list[Path]) -> list[Path]:
    """The jars whose artifact is not already among `present` (by artifact name, any version)."""
    have = {artifact_name(j) for j in present}
    return [j for j in jars if artifact_name(j) not in have]


# Spark's log to a file instead of the console (build_spark_session(log_file=...)).
SPARK_LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")

S3A_FILESYSTEM_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def lake_scheme(lake_root: str) -> str:
    """`s3a`, `hdfs`, `file` (a plain path is `file`)."""
    return lake_root.split("://", 1)[0] if "://" in lake_root else "file"


def is_cluster_master(master: str) -> bool:
    return master.startswith("spark://")


def is_local_cluster_master(master: str) -> bool:
    hosts = [address.split(":")[0] for address in master.removeprefix("spark://").split(",")]
    return is_cluster_master(master) and all(host in _LOCAL_HOSTS for host in hosts)


def _bundled_jars() -> list[Path]:
    return list((Path(pyspark.__file__).parent / "jars").glob("*.jar"))


def delta_jars() -> list[Path]:
    return jars_missing_from(cached_jars("delta"), _bundled_jars())


def s3a_jars() -> list[Path]:
    """hadoop-aws and the AWS SDK v2 bundle (~690 MB, fetched only when named)."""
    return jars_missing_from(cached_jars("s3a"), _bundled_jars())


def lake_jars(lake_root: str | None) -> list[Path]:
    """The jars a lake root needs beyond Delta's: the s3a connector for s3a://, nothing otherwise."""
    return s3a_jars() if lake_root and lake_scheme(lake_root) == "s3a" else []


def is_local_master(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def session_conf(
    master: str,
    jars: list[Path],
    extra_conf: Mapping[str, str] | None = None,
    lake_jars: list[Path] | None = None,
    log_file: str | None = None,
) -> dict[str, str]:
    """The Spark settings of a session: defaults, Delta, jars, then extra_conf.

    `jars` are shipped (`spark.jars`); `lake_jars` too, except in local mode, where they go on the
    driver's class path. `log_file`: Spark's own log goes to that file, not to the console. The
    lake's Hadoop settings are not here: they may hold credentials, and
    Spark settings end up on the JVM's command line; `use_lake` sets them in the running session.
    """
    shipped, on_class_path = list(jars), []
    (on_class_path if is_local_master(master) else shipped).extend(lake_jars or [])
    conf = {**LOCAL_DEFAULTS, **DELTA_CONF, "spark.jars": ",".join(str(j) for j in shipped)}
    if is_local_cluster_master(master):
        conf.update(LOCAL_CLUSTER_DEFAULTS)
    conf.update(extra_conf or {})
    if log_file:  # the driver's JVM options: the JVM is not started yet when the conf is read
        options = f'-Dlog4j2.configurationFile="{SPARK_LOG_CONFIG}" -Dcdc.spark.log="{log_file}"'
        given = conf.get("spark.driver.extraJavaOptions")
        conf["spark.driver.extraJavaOptions"] = f"{options} {given}" if given else options
    if on_class_path:
        given = conf.get("spark.driver.extraClassPath")
        conf["spark.driver.extraClassPath"] = ":".join(
            [*(str(j) for j in on_class_path), *([given] if given else [])]
        )
    return conf


def build_spark_session(
    master: str = "local[2]",
    app_name: str = "cdc-lakehouse",
    extra_conf: Mapping[str, str] | None = None,
    extra_jars: list[Path] | None = None,
    lake_root: str | None = None,
    hadoop_conf: Mapping[str, str] | None = None,
    log_file: str | None = None,
) -> SparkSession:
    """Get (or create) the process's SparkSession with Delta configured, able to reach `lake_root`.

    `hadoop_conf` (the lake's Hadoop settings, e.g. LakeResource.hadoop_settings()) is applied to the
    running session by `use_lake`; tasks, also on executors, get it with the rest of the Hadoop settings.
    `log_file`: Spark's own log (its WARN lines) goes there instead of the console; it takes effect
    for the session that starts the process's JVM.
    """
    jars = delta_jars() + list(extra_jars or [])
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in session_conf(master, jars, extra_conf, lake_jars(lake_root), log_file).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    running = session.sparkContext.master
    if is_cluster_master(master) and running != master:
        raise RuntimeError(
            f"this process already runs a SparkSession on {running!r}, so it cannot connect to {master!r} "
            "(one SparkContext per process): stop that session first, or run in another process"
        )
    if lake_root or hadoop_conf:
        use_lake(session, lake_root or "", hadoop_conf)
    return session


_thread_sessions = threading.local()


def session_for_this_thread(spark: SparkSession) -> SparkSession:
    """`spark` in the main thread; in another thread, a session of that thread's own (spark.newSession():
    the same SparkContext, jars, Hadoop settings and cache; its own SQL settings, starting as `spark`'s,
    and temporary views), made once per thread and made the thread's active session, which Delta's
    commits read their settings from."""
    if threading.current_thread() is threading.main_thread():
        return spark
    own = getattr(_thread_sessions, "session", None)
    if own is None or own.sparkContext is not spark.sparkContext:
        own = spark.newSession()
        for key, value in spark.conf.getAll.items():
            if spark.conf.isModifiable(key):
                own.conf.set(key, value)
        _thread_sessions.session = own
    own._jvm.SparkSession.setActiveSession(own._jsparkSession)
    return own


def use_lake(spark: SparkSession, lake_root: str, hadoop_conf: Mapping[str, str] | None = None) -> None:
    """Make a running session reach `lake_root`: connector jars if missing, then the Hadoop settings.

    The settings go into the SparkContext's Hadoop configuration, which every later read, write and
    Delta operation copies (also into the tasks shipped to executors).
    """
    if lake_scheme(lake_root) == "s3a" and not _loadable(spark, S3A_FILESYSTEM_CLASS):
        add_jars(spark, s3a_jars())
    configuration = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in (hadoop_conf or {}).items():
        configuration.set(key, value)


def add_jars(spark: SparkSession, jars: list[Path]) -> None:
    """Add jars to a running session: to the driver's class loader and, on a cluster, to the executors."""
    jvm = spark.sparkContext._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    for jar in jars:
        try:
            loader.addURL(jvm.java.io.File(str(jar)).toURI().toURL())
        except Py4JError as error:
            raise RuntimeError(
                f"cannot add {jar.name} to the running SparkSession (its class loader "
                f"{loader.getClass().getName()} takes no jars): build the session with the lake root "
                "(build_spark_session(lake_root=...)) so the jars are on its classpath from the start"
            ) from error
        if not is_local_master(spark.sparkContext.master):  # local executors share the driver's loader
            spark.sparkContext._jsc.addJar(str(jar))


def _loadable(spark: SparkSession, class_name: str) -> bool:
    jvm = spark.sparkContext._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    try:
        jvm.java.lang.Class.forName(class_name, False, loader)
        return True
    except Py4JError:
        return False
