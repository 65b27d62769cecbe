"""Dagster resources: how assets reach Kafka, Spark, Cassandra and the lake.

Each resource is a `dagster.ConfigurableResource` (configurable in the UI's launchpad) with small
methods that hand out ready clients. `resources_from_env()` builds all four from environment
variables. The servers must be named (CDC_KAFKA_BOOTSTRAP, CDC_CASSANDRA_HOSTS, CDC_LAKE_ROOT): a
missing one is an error naming the variable when the Definitions load. The local profile
(`CDC_PROFILE=local`, what `make dev` and `make loop` set) takes what is not set from the local stack
instead: the settings `make stack-up` wrote to `<stack dir>/settings.json`, and the lake `<project>/.lake`.

Secrets (SASL and Cassandra passwords) are passed as `dagster.EnvVar`, so the UI never shows them;
the methods below resolve them, so the resources also work outside a Dagster run.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from pydantic import Field, field_validator
from pyspark.sql import SparkSession

from resources import LOCAL_SETTINGS_FILE
from resources.lake_check import check_lake_reachable, check_spark_master
from resources.spark_session import build_spark_session, lake_scheme, session_for_this_thread, use_lake

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILE_VARIABLE = "CDC_PROFILE"
LOCAL_PROFILE = "local"

LOCAL_LAKE_ROOT = str(PROJECT_ROOT / ".lake")
CASSANDRA_PORT = 9042  # Cassandra's native protocol port
LAKE_URI_SCHEMES = ("file", "hdfs", "s3a")
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


def _resolved(value: str | None) -> str | None:
    """The value of an EnvVar field outside a run (Dagster resolves them only inside one)."""
    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


def _librdkafka_keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`group_id=...` -> `{"group.id": ...}`: librdkafka property names have dots, never underscores."""
    return {key.replace("_", "."): value for key, value in overrides.items()}


class KafkaResource(dg.ConfigurableResource):
    """A Kafka cluster, reached with confluent-kafka (librdkafka)."""

    bootstrap_servers: str = Field(description="host:port,host:port")
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...")
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = Field(
        default=None, description="CA certificate file (PEM) for SSL/SASL_SSL"
    )

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings shared by every client: servers, security, credentials."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": _resolved(self.sasl_username),
            "sasl.password": _resolved(self.sasl_password),
            "ssl.ca.location": self.ssl_ca_location,
        }
        config.update({key: value for key, value in optional.items() if value})
        return config

    def consumer_config(self, config: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        """client_config() plus `config` (librdkafka names) plus keyword overrides (`group_id` = `group.id`)."""
        return {**self.client_config(), **(config or {}), **_librdkafka_keys(overrides)}


class SparkResource(dg.ConfigurableResource):
    """The process's SparkSession with Delta (resources.spark_session.build_spark_session).

    Spark Connect (`sc://`) is not supported: the platform uses Delta's Python DeltaTable API (MERGE,
    history), which over Spark Connect needs Delta's server plugin (delta-connect-server), and Maven
    Central serves no such artifact for Delta 4.4.0.
    """

    master: str = Field(default="local[2]", description="local[N], spark://host:port, yarn, ...")
    app_name: str = "cdc-lakehouse"
    conf: dict[str, str] = Field(default_factory=dict, description="extra Spark settings")
    log_file: str | None = Field(
        default=None, description="Spark's own log goes to this file, not the console"
    )

    @field_validator("master")
    @classmethod
    def _not_spark_connect(cls, master: str) -> str:
        if master.startswith("sc://"):
            raise ValueError(
                f"Spark master {master!r}: Spark Connect is not supported (Delta's DeltaTable API needs the "
                "delta-connect-server plugin, not published for Delta 4.4.0); use local[N] or spark://host:port"
            )
        return master

    def session(self, lake: LakeResource | None = None) -> SparkSession:
        """The session, able to reach `lake` (its connector jars and Hadoop settings).

        A `spark://` master is checked first (check_spark_master): an unreachable master fails at once
        with its address, instead of Spark retrying for a minute. A step running in a thread of its
        own (orchestration.threaded_executor) gets a session of that thread's own over the same
        SparkContext (resources.spark_session.session_for_this_thread).
        """
        check_spark_master(self.master)
        spark = build_spark_session(
            master=self.master,
            app_name=self.app_name,
            extra_conf=self.conf,
            lake_root=lake.root if lake else None,
            hadoop_conf=lake.hadoop_settings() if lake else None,
            log_file=self.log_file,
        )
        if lake is not None:
            lake.check_reachable_once(spark)
        own = session_for_this_thread(spark)
        label_spark_jobs_with_the_current_step(own)
        return own


def label_spark_jobs_with_the_current_step(spark: SparkSession) -> None:
    """Inside a Dagster step, the Spark jobs and SQL queries this thread starts from now on carry the
    step: job group `<run id>`, description `<step key> (run <run id prefix>)`, as the Spark UI, its
    event log and history server show them. Outside a step (a script, the loop between its runs) the
    thread's jobs carry no step: a label an earlier step left on the thread is removed."""
    context = _current_step_context()
    if context is None:
        for label in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            spark.sparkContext.setLocalProperty(label, None)  # type: ignore[arg-type]  # None removes it
        return
    run_id = context.run_id
    spark.sparkContext.setJobGroup(run_id, f"{context.op_handle} (run {run_id[:8]})")


def _current_step_context() -> dg.OpExecutionContext | None:
    for context_type in (dg.AssetExecutionContext, dg.AssetCheckExecutionContext):
        try:
            context = context_type.get()
        except dg.DagsterInvariantViolationError:
            continue
        return context.op_execution_context
    return None


_cassandra_sessions: dict[tuple, tuple[Cluster, Session]] = {}
_cassandra_lock = threading.Lock()


@atexit.register
def shutdown_cassandra_sessions() -> None:
    """Close every Cassandra session this process opened through CassandraResource."""
    with _cassandra_lock:
        for cluster, _session in _cassandra_sessions.values():
            cluster.shutdown()
        _cassandra_sessions.clear()


class CassandraResource(dg.ConfigurableResource):
    """A Cassandra cluster. `session()` is opened once per process and shared (the driver is thread-safe).

    The session is not bound to a keyspace: qualify table names with `keyspace` (the keyspace may not
    exist yet when the session opens).
    """

    contact_points: list[str] = Field(min_length=1)
    port: int = CASSANDRA_PORT
    keyspace: str = "cdc"
    username: str | None = None
    password: str | None = None
    local_dc: str = Field(default="datacenter1", description="the data center the driver prefers")

    def cluster_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "contact_points": list(self.contact_points),
            "port": self.port,
            "execution_profiles": {
                EXEC_PROFILE_DEFAULT: ExecutionProfile(
                    load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc)),
                )
            },
        }
        if self.username:
            kwargs["auth_provider"] = PlainTextAuthProvider(
                username=_resolved(self.username), password=_resolved(self.password) or ""
            )
        return kwargs

    def session(self) -> Session:
        key = (os.getpid(), tuple(self.contact_points), self.port, self.username, self.local_dc)
        with _cassandra_lock:
            if key not in _cassandra_sessions:
                cluster = Cluster(**self.cluster_kwargs())
                _cassandra_sessions[key] = (cluster, cluster.connect())
            return _cassandra_sessions[key][1]


_reachable_lakes: set[tuple[int, str]] = set()  # (process, lake root) checked by check_reachable_once
_reachable_lakes_lock = threading.Lock()


class LakeResource(dg.ConfigurableResource):
    """Where the Delta tables live: a local folder, or an `hdfs://` or `s3a://` URI.

    HDFS: the root names the NameNode (`hdfs://namenode:8020/lake`); `hadoop_conf` takes any client
    setting (e.g. `dfs.replication`). S3: `s3a://bucket/prefix` plus the s3_* fields, which become
    per-bucket s3a settings (`fs.s3a.bucket.<bucket>.*`), so they apply to this bucket only. Without
    keys, s3a looks for credentials itself (environment, instance profile, ...).

    A run checks its lake before its first write: SparkResource.session(lake) calls
    `check_reachable_once`, which writes, reads and deletes a probe object and fails with the URI and
    what to check (once per process and root).
    """

    root: str = Field(description="local path, file://, hdfs://host:port/path, s3a://bucket/path")
    s3_endpoint: str | None = Field(
        default=None,
        description="S3 endpoint URL (http://host:port for an S3-compatible server); default AWS",
    )
    s3_path_style_access: bool = Field(
        default=False, description="address buckets as endpoint/bucket (most S3-compatible servers)"
    )
    s3_region: str | None = Field(default=None, description="e.g. eu-west-1")
    s3_access_key: str | None = None
    s3_secret_key: str | None = Field(default=None, description="(read at run time, never shown in the UI)")
    s3_session_token: str | None = Field(default=None, description="for temporary credentials")
    hadoop_conf: dict[str, str] = Field(
        default_factory=dict, description="extra Hadoop settings (win over the above)"
    )

    @field_validator("root")
    @classmethod
    def _known_scheme(cls, root: str) -> str:
        if "://" not in root:
            return os.path.abspath(root)
        scheme = root.split("://", 1)[0]
        if scheme == "s3":
            raise ValueError(
                f"lake root {root!r}: Spark writes S3 through Hadoop's s3a connector, use s3a://"
            )
        if scheme not in LAKE_URI_SCHEMES:
            raise ValueError(f"lake root {root!r}: scheme {scheme!r} is not one of {LAKE_URI_SCHEMES}")
        return root

    def table_path(self, layer: str, name: str) -> str:
        """`<root>/<layer>/<name>`, e.g. table_path("silver", "crm.S_CONTACT")."""
        for label, part in (("layer", layer), ("name", name)):
            if not part or "/" in part or part in (".", ".."):
                raise ValueError(f"table {label} {part!r} must be a non-empty path segment without '/'")
        return f"{self.root.rstrip('/')}/{layer}/{name}"

    @property
    def scheme(self) -> str:
        return lake_scheme(self.root)

    def hadoop_settings(self) -> dict[str, str]:
        """The Hadoop settings this lake needs (s3a ones per bucket), then `hadoop_conf`."""
        settings: dict[str, str] = {}
        if self.scheme == "s3a":
            bucket = self.root.split("://", 1)[1].split("/", 1)[0]
            settings.update(
                {f"fs.s3a.bucket.{bucket}.{key}": value for key, value in self._s3a_settings().items()}
            )
        settings.update(self.hadoop_conf)
        return settings

    def _s3a_settings(self) -> dict[str, str]:
        settings = {"path.style.access": str(self.s3_path_style_access).lower()}
        if self.s3_endpoint:
            settings["endpoint"] = self.s3_endpoint
            settings["connection.ssl.enabled"] = str(not self.s3_endpoint.startswith("http://")).lower()
        if self.s3_region:
            settings["endpoint.region"] = self.s3_region
        if self.s3_access_key:
            settings["access.key"] = self.s3_access_key
            settings["secret.key"] = _resolved(self.s3_secret_key) or ""
            token = _resolved(self.s3_session_token)
            if token:
                settings["session.token"] = token
            provider = "TemporaryAWSCredentialsProvider" if token else "SimpleAWSCredentialsProvider"
            settings["aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
        return settings

    def configure(self, spark: SparkSession) -> None:
        """Make a running session reach this lake (connector jars if missing, Hadoop settings)."""
        use_lake(spark, self.root, self.hadoop_settings())

    def check_reachable_once(self, spark: SparkSession) -> None:
        """check_reachable, the first time this process uses this lake root (SparkResource.session
        calls it, so a run checks its lake before its first write; later sessions cost nothing)."""
        key = (os.getpid(), self.root)
        with _reachable_lakes_lock:  # steps start at once in threads: one checks, the others wait
            if key not in _reachable_lakes:
                self.check_reachable(spark)
                _reachable_lakes.add(key)

    def check_reachable(self, spark: SparkSession, timeout_seconds: float = 15.0) -> None:
        """Write, read and delete a probe object under the root; raise LakeUnreachableError if any fails."""
        self.configure(spark)
        check_lake_reachable(spark, self.root, self.hadoop_settings(), timeout_seconds)


class MissingSettingError(ValueError):
    """A setting the platform needs is not in the environment. The message names the variable."""


# What a deployment must name, and what each variable is.
REQUIRED_SETTINGS = {
    "CDC_KAFKA_BOOTSTRAP": "the Kafka bootstrap servers (host:port,host:port)",
    "CDC_CASSANDRA_HOSTS": "the Cassandra contact points (host,host)",
    "CDC_LAKE_ROOT": "the lake's root (a local path, hdfs://namenode:port/path or s3a://bucket/path)",
}


def local_stack_settings() -> dict[str, str]:
    """The local profile's settings: those the local stack wrote when it started
    (`<$CDC_STACK_DIR or <project>/.stack>/settings.json`), and the lake `<project>/.lake`."""
    stack_dir = Path(os.environ.get("CDC_STACK_DIR") or PROJECT_ROOT / ".stack")
    path = stack_dir / LOCAL_SETTINGS_FILE
    if not path.is_file():
        raise MissingSettingError(
            f"{PROFILE_VARIABLE}={LOCAL_PROFILE}, but the local stack has written no {path}: "
            "start it with `make stack-up` (or set CDC_STACK_DIR to its folder)"
        )
    return {"CDC_LAKE_ROOT": LOCAL_LAKE_ROOT, **json.loads(path.read_text())}


def settings_from_env() -> dict[str, str]:
    """Every non-empty CDC_*/AWS_* variable; with CDC_PROFILE=local, the local stack's settings
    under them. MissingSettingError names each required variable that is still missing."""
    profile = _env(PROFILE_VARIABLE)
    if profile not in (None, LOCAL_PROFILE):
        raise MissingSettingError(f"{PROFILE_VARIABLE}={profile!r}: the only profile is {LOCAL_PROFILE!r}")
    settings = local_stack_settings() if profile == LOCAL_PROFILE else {}
    settings.update({name: value.strip() for name, value in os.environ.items() if value.strip()})
    missing = [name for name in REQUIRED_SETTINGS if name not in settings]
    if missing:
        raise MissingSettingError(
            "not set: "
            + "; ".join(f"{name} ({REQUIRED_SETTINGS[name]})" for name in missing)
            + f". Set them, or {PROFILE_VARIABLE}={LOCAL_PROFILE} to use the local stack (make stack-up)"
        )
    return settings


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _secret(env: Mapping[str, str], name: str) -> dg.EnvVar | None:
    """A password as a dagster.EnvVar (resolved at run time, never shown), None when not set."""
    return dg.EnvVar(name) if name in env else None


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources `kafka`, `spark`, `cassandra`, `lake`, configured from the environment
    (settings_from_env: CDC_KAFKA_BOOTSTRAP, CDC_CASSANDRA_HOSTS and CDC_LAKE_ROOT are required, or
    CDC_PROFILE=local for the local stack's):

    Kafka
      CDC_KAFKA_BOOTSTRAP          bootstrap servers (required)
      CDC_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
      CDC_KAFKA_SASL_MECHANISM     e.g. PLAIN, SCRAM-SHA-512
      CDC_KAFKA_SASL_USERNAME
      CDC_KAFKA_SASL_PASSWORD      (read at run time, never shown in the UI)
      CDC_KAFKA_SSL_CA_LOCATION    CA certificate file (PEM)
    Spark
      CDC_SPARK_MASTER             default local[2]
      CDC_SPARK_CONF               extra Spark settings as a JSON object, e.g. {"spark.driver.memory": "4g"}
      CDC_SPARK_LOG                a file for Spark's own log (default: Spark's, on the console)
      CDC_JAR_CACHE                the folder holding Delta's jars (<folder>/delta; default
                                   <project>/.cache/jars, which `make jars` fills)
    Cassandra
      CDC_CASSANDRA_HOSTS          comma-separated contact points (required)
      CDC_CASSANDRA_PORT           native protocol port (default 9042)
      CDC_CASSANDRA_KEYSPACE       default cdc
      CDC_CASSANDRA_USERNAME
      CDC_CASSANDRA_PASSWORD       (read at run time, never shown in the UI)
      CDC_CASSANDRA_LOCAL_DC       default datacenter1
    Lake
      CDC_LAKE_ROOT                local path, file://, hdfs://namenode:port/path or s3a://bucket/path
                                   (required)
      CDC_LAKE_HADOOP_CONF         extra Hadoop settings as a JSON object, e.g. {"dfs.replication": "2"}
      CDC_S3_ENDPOINT              S3 endpoint URL, for S3-compatible servers (default: AWS)
      CDC_S3_PATH_STYLE_ACCESS     true to address buckets as <endpoint>/<bucket>
      AWS_ACCESS_KEY_ID            S3 credentials (without them s3a searches its default providers)
      AWS_SECRET_ACCESS_KEY        (read at run time, never shown in the UI)
      AWS_SESSION_TOKEN            (temporary credentials; read at run time)
      AWS_REGION                   (or AWS_DEFAULT_REGION)
    """
    env = settings_from_env()
    spark_conf = json.loads(env.get("CDC_SPARK_CONF") or "{}")
    if not isinstance(spark_conf, dict):
        raise ValueError("CDC_SPARK_CONF must be a JSON object of Spark settings")
    hosts = [host.strip() for host in env["CDC_CASSANDRA_HOSTS"].split(",") if host.strip()]
    lake_hadoop_conf = json.loads(env.get("CDC_LAKE_HADOOP_CONF") or "{}")
    if not isinstance(lake_hadoop_conf, dict):
        raise ValueError("CDC_LAKE_HADOOP_CONF must be a JSON object of Hadoop settings")
    return {
        "kafka": KafkaResource(
            bootstrap_servers=env["CDC_KAFKA_BOOTSTRAP"],
            security_protocol=env.get("CDC_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=env.get("CDC_KAFKA_SASL_MECHANISM"),
            sasl_username=env.get("CDC_KAFKA_SASL_USERNAME"),
            sasl_password=_secret(env, "CDC_KAFKA_SASL_PASSWORD"),
            ssl_ca_location=env.get("CDC_KAFKA_SSL_CA_LOCATION"),
        ),
        "spark": SparkResource(
            master=env.get("CDC_SPARK_MASTER") or "local[2]",
            conf={str(key): str(value) for key, value in spark_conf.items()},
            log_file=env.get("CDC_SPARK_LOG"),
        ),
        "cassandra": CassandraResource(
            contact_points=hosts,
            port=int(env.get("CDC_CASSANDRA_PORT") or CASSANDRA_PORT),
            keyspace=env.get("CDC_CASSANDRA_KEYSPACE") or "cdc",
            username=env.get("CDC_CASSANDRA_USERNAME"),
            password=_secret(env, "CDC_CASSANDRA_PASSWORD"),
            local_dc=env.get("CDC_CASSANDRA_LOCAL_DC") or "datacenter1",
        ),
        "lake": LakeResource(
            root=env["CDC_LAKE_ROOT"],
            s3_endpoint=env.get("CDC_S3_ENDPOINT"),
            s3_path_style_access=(env.get("CDC_S3_PATH_STYLE_ACCESS") or "false").lower()
            in ("true", "1", "yes"),
            s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            s3_access_key=env.get("AWS_ACCESS_KEY_ID"),
            s3_secret_key=_secret(env, "AWS_SECRET_ACCESS_KEY"),
            s3_session_token=_secret(env, "AWS_SESSION_TOKEN"),
            hadoop_conf={str(key): str(value) for key, value in lake_hadoop_conf.items()},
        ),
    }
