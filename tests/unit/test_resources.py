"""Resource configuration, checked without any server."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from pydantic import ValidationError

from resources.connections import (
    CassandraResource,
    KafkaResource,
    LakeResource,
    MissingSettingError,
    SparkResource,
    resources_from_env,
)

ENV_VARIABLES = [
    "CDC_KAFKA_BOOTSTRAP",
    "CDC_KAFKA_SECURITY_PROTOCOL",
    "CDC_KAFKA_SASL_MECHANISM",
    "CDC_KAFKA_SASL_USERNAME",
    "CDC_KAFKA_SASL_PASSWORD",
    "CDC_KAFKA_SSL_CA_LOCATION",
    "CDC_SPARK_MASTER",
    "CDC_SPARK_CONF",
    "CDC_CASSANDRA_HOSTS",
    "CDC_CASSANDRA_PORT",
    "CDC_CASSANDRA_KEYSPACE",
    "CDC_CASSANDRA_USERNAME",
    "CDC_CASSANDRA_PASSWORD",
    "CDC_CASSANDRA_LOCAL_DC",
    "CDC_LAKE_ROOT",
    "CDC_KAFKA_PORT",
    "CDC_KAFKA_CONTROLLER_PORT",
    "CDC_CASSANDRA_STORAGE_PORT",
    "CDC_PROFILE",
]
SERVERS = {"CDC_KAFKA_BOOTSTRAP": "k1:9092", "CDC_CASSANDRA_HOSTS": "c1", "CDC_LAKE_ROOT": "/data/lake"}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CDC_STACK_DIR", str(tmp_path / "no-stack-here"))
    return monkeypatch


@pytest.fixture
def servers_env(clean_env):
    """The three settings a deployment must give."""
    for variable, value in SERVERS.items():
        clean_env.setenv(variable, value)
    return clean_env


def test_kafka_client_config_carries_only_the_settings_given():
    plain = KafkaResource(bootstrap_servers="b1:9092,b2:9092")
    secured = KafkaResource(
        bootstrap_servers="b1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="etl",
        sasl_password="s3cret",
        ssl_ca_location="/etc/ca.pem",
    )

    assert plain.client_config() == {"bootstrap.servers": "b1:9092,b2:9092", "security.protocol": "PLAINTEXT"}
    assert secured.client_config() == {
        "bootstrap.servers": "b1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "etl",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_kafka_unknown_security_protocol_is_rejected():
    with pytest.raises(ValidationError, match="security_protocol"):
        KafkaResource(security_protocol="TLS")


def test_kafka_client_overrides_use_librdkafka_names():
    kafka = KafkaResource(bootstrap_servers="b1:9092")

    config = kafka.consumer_config(
        {"auto.offset.reset": "earliest"}, group_id="bronze", enable_auto_commit=False
    )

    assert config == {
        "bootstrap.servers": "b1:9092",
        "security.protocol": "PLAINTEXT",
        "auto.offset.reset": "earliest",
        "group.id": "bronze",
        "enable.auto.commit": False,
    }


def test_lake_table_path_joins_root_layer_and_name():
    assert (
        LakeResource(root="s3a://bucket/lake/").table_path("silver", "crm.S_CONTACT")
        == "s3a://bucket/lake/silver/crm.S_CONTACT"
    )
    assert (
        LakeResource(root="hdfs://nn:8020/lake").table_path("bronze", "t") == "hdfs://nn:8020/lake/bronze/t"
    )
    assert LakeResource(root="/data/lake").table_path("gold", "customer") == "/data/lake/gold/customer"


def test_lake_relative_local_root_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake = LakeResource(root="lake")

    assert lake.table_path("gold", "customer") == f"{tmp_path}/lake/gold/customer"


@pytest.mark.parametrize("root, reason", [("s3://bucket/lake", "use s3a://"), ("gs://bucket", "not one of")])
def test_lake_root_with_unsupported_scheme_is_rejected(root, reason):
    with pytest.raises(ValidationError, match=reason):
        LakeResource(root=root)


@pytest.mark.parametrize("layer, name", [("silver", ""), ("silver", "a/b"), ("", "t"), ("silver", "..")])
def test_lake_table_path_rejects_names_that_are_not_one_segment(layer, name):
    with pytest.raises(ValueError, match="path segment"):
        LakeResource(root="/lake").table_path(layer, name)


def test_cassandra_credentials_become_an_auth_provider():
    anonymous = CassandraResource(contact_points=["c1", "c2"], port=9042).cluster_kwargs()
    with_login = CassandraResource(contact_points=["c1"], username="app", password="pw").cluster_kwargs()

    assert (anonymous["contact_points"], anonymous["port"]) == (["c1", "c2"], 9042)
    assert "auth_provider" not in anonymous
    assert (with_login["auth_provider"].username, with_login["auth_provider"].password) == ("app", "pw")


def test_without_the_servers_named_the_error_names_each_missing_variable(clean_env):
    clean_env.setenv("CDC_CASSANDRA_HOSTS", "c1")

    with pytest.raises(MissingSettingError) as caught:
        resources_from_env()

    message = str(caught.value)
    assert "CDC_KAFKA_BOOTSTRAP (the Kafka bootstrap servers" in message
    assert "CDC_LAKE_ROOT (the lake's root" in message
    assert "CDC_CASSANDRA_HOSTS" not in message
    assert "CDC_PROFILE=local" in message


def test_the_defaults_beside_the_three_servers_are_no_local_stack_port(servers_env):
    resources = resources_from_env()

    assert resources["kafka"].client_config() == {
        "bootstrap.servers": "k1:9092",
        "security.protocol": "PLAINTEXT",
    }
    assert (resources["cassandra"].contact_points, resources["cassandra"].port) == (["c1"], 9042)
    assert (resources["cassandra"].keyspace, resources["cassandra"].local_dc) == ("cdc", "datacenter1")
    assert (resources["spark"].master, resources["spark"].conf) == ("local[2]", {})
    assert resources["lake"].root == "/data/lake"


def test_the_local_profile_takes_what_is_not_set_from_the_local_stacks_settings(clean_env, tmp_path):
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    (stack_dir / "settings.json").write_text(
        json.dumps(
            {
                "CDC_KAFKA_BOOTSTRAP": "127.0.0.1:29092",
                "CDC_CASSANDRA_HOSTS": "127.0.0.1",
                "CDC_CASSANDRA_PORT": "29042",
            }
        )
    )
    clean_env.setenv("CDC_STACK_DIR", str(stack_dir))
    clean_env.setenv("CDC_PROFILE", "local")
    clean_env.setenv("CDC_CASSANDRA_KEYSPACE", "mine")
    clean_env.setenv("CDC_KAFKA_BOOTSTRAP", "127.0.0.1:39092")  # the environment wins

    resources = resources_from_env()

    assert resources["kafka"].bootstrap_servers == "127.0.0.1:39092"
    assert (resources["cassandra"].contact_points, resources["cassandra"].port) == (["127.0.0.1"], 29042)
    assert resources["cassandra"].keyspace == "mine"
    assert resources["lake"].root.endswith("/.lake")


def test_the_local_profile_without_a_running_local_stack_says_how_to_start_it(clean_env):
    clean_env.setenv("CDC_PROFILE", "local")

    with pytest.raises(MissingSettingError, match=r"settings.json: start it with `make stack-up`"):
        resources_from_env()


def test_an_unknown_profile_is_refused(servers_env):
    servers_env.setenv("CDC_PROFILE", "prod")

    with pytest.raises(MissingSettingError, match="the only profile is 'local'"):
        resources_from_env()


def test_resources_from_env_read_every_variable(clean_env):
    settings = {
        "CDC_KAFKA_BOOTSTRAP": "k1:9093,k2:9093",
        "CDC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CDC_KAFKA_SASL_MECHANISM": "PLAIN",
        "CDC_KAFKA_SASL_USERNAME": "etl",
        "CDC_KAFKA_SASL_PASSWORD": "kafka-secret",
        "CDC_KAFKA_SSL_CA_LOCATION": "/ca.pem",
        "CDC_SPARK_MASTER": "spark://m:7077",
        "CDC_SPARK_CONF": '{"spark.executor.memory": "4g"}',
        "CDC_CASSANDRA_HOSTS": "c1, c2",
        "CDC_CASSANDRA_PORT": "9142",
        "CDC_CASSANDRA_KEYSPACE": "crm",
        "CDC_CASSANDRA_USERNAME": "app",
        "CDC_CASSANDRA_PASSWORD": "cassandra-secret",
        "CDC_CASSANDRA_LOCAL_DC": "dc2",
        "CDC_LAKE_ROOT": "s3a://lake/prod",
    }
    for variable, value in settings.items():
        clean_env.setenv(variable, value)

    resources = resources_from_env()
    kafka, cassandra = resources["kafka"], resources["cassandra"]

    assert kafka.client_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "etl",
        "sasl.password": "kafka-secret",
        "ssl.ca.location": "/ca.pem",
    }
    assert (resources["spark"].master, resources["spark"].conf) == (
        "spark://m:7077",
        {"spark.executor.memory": "4g"},
    )
    assert (cassandra.contact_points, cassandra.port, cassandra.keyspace, cassandra.local_dc) == (
        ["c1", "c2"],
        9142,
        "crm",
        "dc2",
    )
    assert cassandra.cluster_kwargs()["auth_provider"].password == "cassandra-secret"
    assert resources["lake"].table_path("bronze", "t") == "s3a://lake/prod/bronze/t"


def test_resources_from_env_keep_passwords_out_of_the_displayed_config(servers_env):
    servers_env.setenv("CDC_KAFKA_SASL_PASSWORD", "kafka-secret")
    servers_env.setenv("CDC_CASSANDRA_PASSWORD", "cassandra-secret")

    resources = resources_from_env()

    assert isinstance(resources["kafka"].sasl_password, dg.EnvVar)
    assert resources["kafka"].sasl_password.env_var_name == "CDC_KAFKA_SASL_PASSWORD"
    assert isinstance(resources["cassandra"].password, dg.EnvVar)


def test_spark_conf_must_be_a_json_object(servers_env):
    servers_env.setenv("CDC_SPARK_CONF", '["spark.executor.memory=4g"]')

    with pytest.raises(ValueError, match="JSON object"):
        resources_from_env()


def test_resources_resolve_inside_a_dagster_run(servers_env):
    servers_env.setenv("CDC_KAFKA_SASL_PASSWORD", "kafka-secret")
    resources = resources_from_env()

    @dg.asset
    def seen(kafka: KafkaResource, lake: LakeResource, spark: SparkResource) -> dict:
        return {"password": kafka.client_config()["sasl.password"], "path": lake.table_path("silver", "t")}

    result = dg.materialize([seen], resources=resources)

    assert result.success
    assert result.output_for_node("seen") == {
        "password": "kafka-secret",
        "path": resources["lake"].table_path("silver", "t"),
    }
