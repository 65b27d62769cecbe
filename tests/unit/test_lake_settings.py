"""How a lake root and its settings turn into Hadoop and Spark settings (no server, no Spark)."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from resources.connections import LakeResource, SparkResource, resources_from_env
from resources.lake_check import SparkMasterUnreachableError, check_spark_master
from resources.spark_session import LOCAL_CLUSTER_DEFAULTS, lake_jars, session_conf

LAKE_VARIABLES = [
    "CDC_LAKE_ROOT",
    "CDC_LAKE_HADOOP_CONF",
    "CDC_S3_ENDPOINT",
    "CDC_S3_PATH_STYLE_ACCESS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
]


def test_s3_settings_apply_to_the_lake_bucket_only():
    lake = LakeResource(
        root="s3a://crm-lake/prod",
        s3_endpoint="http://minio.internal:9000",
        s3_path_style_access=True,
        s3_region="eu-west-1",
        s3_access_key="AKIA1",
        s3_secret_key="secret1",
    )

    assert lake.hadoop_settings() == {
        "fs.s3a.bucket.crm-lake.path.style.access": "true",
        "fs.s3a.bucket.crm-lake.endpoint": "http://minio.internal:9000",
        "fs.s3a.bucket.crm-lake.connection.ssl.enabled": "false",
        "fs.s3a.bucket.crm-lake.endpoint.region": "eu-west-1",
        "fs.s3a.bucket.crm-lake.access.key": "AKIA1",
        "fs.s3a.bucket.crm-lake.secret.key": "secret1",
        "fs.s3a.bucket.crm-lake.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }


def test_s3_without_keys_leaves_credentials_to_the_default_providers():
    settings = LakeResource(
        root="s3a://lake/x", s3_endpoint="https://s3.eu-west-1.amazonaws.com"
    ).hadoop_settings()

    assert settings["fs.s3a.bucket.lake.connection.ssl.enabled"] == "true"
    assert not any(key.endswith(("access.key", "secret.key", "aws.credentials.provider")) for key in settings)


def test_s3_session_token_selects_the_temporary_credentials_provider():
    settings = LakeResource(
        root="s3a://lake/x", s3_access_key="ASIA1", s3_secret_key="s", s3_session_token="token"
    ).hadoop_settings()

    assert settings["fs.s3a.bucket.lake.session.token"] == "token"
    assert settings["fs.s3a.bucket.lake.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")


def test_explicit_hadoop_conf_wins_and_other_schemes_get_only_it():
    s3 = LakeResource(
        root="s3a://lake/x",
        s3_path_style_access=True,
        hadoop_conf={"fs.s3a.bucket.lake.path.style.access": "false"},
    )
    hdfs = LakeResource(root="hdfs://nn:8020/lake", hadoop_conf={"dfs.replication": "2"})

    assert s3.hadoop_settings()["fs.s3a.bucket.lake.path.style.access"] == "false"
    assert hdfs.hadoop_settings() == {"dfs.replication": "2"}
    assert LakeResource(root="/data/lake").hadoop_settings() == {}


def test_lake_settings_come_from_the_standard_variables(monkeypatch, tmp_path):
    for variable in LAKE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CDC_STACK_DIR", str(tmp_path / "no-stack-here"))
    monkeypatch.setenv("CDC_LAKE_ROOT", "s3a://lake/cdc")
    monkeypatch.setenv("CDC_S3_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("CDC_S3_PATH_STYLE_ACCESS", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("CDC_LAKE_HADOOP_CONF", '{"fs.s3a.connection.maximum": "50"}')

    lake = resources_from_env()["lake"]

    assert (lake.root, lake.s3_endpoint, lake.s3_path_style_access) == (
        "s3a://lake/cdc",
        "http://127.0.0.1:9000",
        True,
    )
    assert (lake.s3_access_key, lake.s3_region) == ("key-id", "eu-central-1")
    assert isinstance(lake.s3_secret_key, dg.EnvVar)  # shown in the UI as the variable's name only
    assert lake.hadoop_settings()["fs.s3a.bucket.lake.secret.key"] == "the-secret"
    assert lake.hadoop_settings()["fs.s3a.connection.maximum"] == "50"


def test_only_an_s3a_lake_needs_extra_jars():
    assert lake_jars(None) == []
    assert lake_jars("/data/lake") == []
    assert lake_jars("hdfs://nn:8020/lake") == []


def test_local_cluster_defaults_apply_to_a_master_on_this_machine_only():
    local_cluster = session_conf("spark://127.0.0.1:7077", [], extra_conf={"spark.executor.memory": "768m"})
    real_cluster = session_conf("spark://master.prod:7077", [])

    assert local_cluster["spark.executor.memory"] == "768m"
    assert local_cluster["spark.driver.host"] == "127.0.0.1"
    assert not set(LOCAL_CLUSTER_DEFAULTS) & set(real_cluster)


def test_spark_connect_masters_are_rejected():
    with pytest.raises(ValueError, match="Spark Connect is not supported"):
        SparkResource(master="sc://spark.prod:15002")


def test_master_check_applies_to_spark_urls_only():
    check_spark_master("local[2]")
    check_spark_master("yarn")

    with pytest.raises(SparkMasterUnreachableError, match="is not host:port"):
        check_spark_master("spark://no-port")


def test_lake_jars_are_shipped_to_cluster_executors_and_on_the_class_path_in_local_mode(tmp_path):
    delta, s3a = tmp_path / "delta-spark.jar", tmp_path / "hadoop-aws.jar"

    local = session_conf("local[2]", [delta], lake_jars=[s3a])
    cluster = session_conf("spark://master.prod:7077", [delta], lake_jars=[s3a])

    assert (local["spark.jars"], local["spark.driver.extraClassPath"]) == (str(delta), str(s3a))
    assert cluster["spark.jars"] == f"{delta},{s3a}"
    assert "spark.driver.extraClassPath" not in cluster


def test_a_log_file_sends_sparks_log_there_and_keeps_the_users_java_options():
    from resources.spark_session import SPARK_LOG_CONFIG

    plain = session_conf("local[2]", [])
    to_file = session_conf("local[2]", [], log_file="/var/log/cdc/spark.log")
    with_given = session_conf(
        "local[2]", [], extra_conf={"spark.driver.extraJavaOptions": "-Dx=1"}, log_file="/tmp/s.log"
    )

    assert plain["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"  # the platform's default
    assert to_file["spark.driver.extraJavaOptions"] == (
        f'-Dlog4j2.configurationFile="{SPARK_LOG_CONFIG}" -Dcdc.spark.log="/var/log/cdc/spark.log"'
        " -XX:+UseParallelGC"
    )
    assert SPARK_LOG_CONFIG.is_file()
    # the user's options replace the default, and keep the log file's
    assert with_given["spark.driver.extraJavaOptions"].endswith(' -Dcdc.spark.log="/tmp/s.log" -Dx=1')


def test_steps_starting_at_once_check_their_lake_once(monkeypatch, tmp_path):
    """A run's first steps take their session at once, in threads: one checks the lake, the others
    wait for it (two checks at once on a local lake raced on the probe's folder)."""
    checked = []

    def slow_check(self, spark, timeout_seconds=15.0):
        checked.append(self.root)
        time.sleep(0.05)

    monkeypatch.setattr(LakeResource, "check_reachable", slow_check)
    lake = LakeResource(root=str(tmp_path / "lake"))
    barrier = threading.Barrier(4)

    def take_session() -> None:
        barrier.wait()
        lake.check_reachable_once(spark=None)

    steps = [threading.Thread(target=take_session) for _ in range(4)]
    for step in steps:
        step.start()
    for step in steps:
        step.join()

    assert checked == [lake.root]
