"""A run that cannot reach its lake or its Spark master fails before it writes anything, saying what to check."""

from __future__ import annotations

import uuid

import pytest

from devtools.stack.jars import ensure_jars
from devtools.stack.ports import free_ports
from devtools.stack.s3 import LOCAL_REGION
from resources.connections import LakeResource, SparkResource
from resources.lake_check import LakeUnreachableError, SparkMasterUnreachableError, check_spark_master

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def s3a_jars() -> None:
    """The s3a connector's jars, which the local S3 server's start fetches: one test here runs without it."""
    ensure_jars("s3a")


def _s3_lake(root: str, endpoint: str, access_key: str, secret_key: str) -> LakeResource:
    return LakeResource(
        root=root,
        s3_endpoint=endpoint,
        s3_path_style_access=True,
        s3_region=LOCAL_REGION,
        s3_access_key=access_key,
        s3_secret_key=secret_key,
    )


def _bucket_folders(s3_stack) -> set[str]:
    return {folder.name for folder in s3_stack.server("s3").data_dir.iterdir()}


def test_wrong_s3_endpoint_is_reported_with_the_endpoint_to_check(spark):
    (nobody_listens,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{nobody_listens}"
    lake = _s3_lake(f"s3a://endpoint-{uuid.uuid4().hex[:8]}/lake", endpoint, "someone", "secret")

    with pytest.raises(LakeUnreachableError) as error:
        lake.check_reachable(spark, timeout_seconds=5)

    message = str(error.value)
    assert lake.root in message
    assert f"cannot connect to the S3 endpoint {endpoint}" in message
    assert "CDC_S3_ENDPOINT" in message


def test_a_run_checks_its_lake_when_it_takes_its_spark_session(spark):
    """Assets take their session with SparkResource.session(lake): an unreachable lake fails there,
    before any write, with the same message (once per process and lake root)."""
    (nobody_listens,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{nobody_listens}"
    lake = _s3_lake(f"s3a://session-{uuid.uuid4().hex[:8]}/lake", endpoint, "someone", "secret")

    with pytest.raises(LakeUnreachableError, match=f"cannot connect to the S3 endpoint {endpoint}"):
        SparkResource(master=spark.sparkContext.master).session(lake)


def test_wrong_s3_credentials_are_reported_before_anything_is_written(spark, s3_stack):
    server = s3_stack.server("s3")
    bucket = f"creds-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    lake = _s3_lake(f"s3a://{bucket}/lake", server.endpoint, server.access_key, "not-the-secret")

    with pytest.raises(LakeUnreachableError) as error:
        lake.check_reachable(spark, timeout_seconds=5)

    message = str(error.value)
    assert lake.root in message
    assert f"the S3 endpoint {server.endpoint} rejected the credentials" in message
    assert "AWS_SECRET_ACCESS_KEY" in message
    assert list((server.data_dir / bucket).iterdir()) == []


def test_missing_bucket_is_reported_by_name_and_not_created(spark, s3_stack):
    server = s3_stack.server("s3")
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    lake = _s3_lake(f"s3a://{bucket}/lake", server.endpoint, server.access_key, server.secret_key)

    with pytest.raises(LakeUnreachableError) as error:
        lake.check_reachable(spark, timeout_seconds=5)

    message = str(error.value)
    assert lake.root in message
    assert f"bucket '{bucket}' does not exist at {server.endpoint}" in message
    assert bucket not in _bucket_folders(s3_stack)


def test_unreachable_namenode_is_reported_with_its_address(spark):
    (nobody_listens,) = free_ports(1)
    lake = LakeResource(root=f"hdfs://127.0.0.1:{nobody_listens}/lake")

    with pytest.raises(LakeUnreachableError) as error:
        lake.check_reachable(spark, timeout_seconds=5)

    message = str(error.value)
    assert lake.root in message
    assert f"cannot connect to the NameNode 127.0.0.1:{nobody_listens}" in message
    assert "CDC_LAKE_ROOT" in message


def test_unreachable_spark_master_fails_before_a_session_is_built():
    (nobody_listens,) = free_ports(1)
    master = f"spark://127.0.0.1:{nobody_listens}"

    with pytest.raises(SparkMasterUnreachableError) as error:
        SparkResource(master=master).session()

    message = str(error.value)
    assert master in message
    assert "CDC_SPARK_MASTER" in message


def test_spark_master_check_passes_any_reachable_master_of_a_list(standalone_spark):
    (nobody_listens,) = free_ports(1)
    reachable = standalone_spark.spark_master_url.removeprefix("spark://")

    check_spark_master(f"spark://127.0.0.1:{nobody_listens},{reachable}")

    with pytest.raises(SparkMasterUnreachableError):
        check_spark_master(f"spark://127.0.0.1:{nobody_listens}")


def test_spark_connect_master_is_rejected_with_the_reason():
    with pytest.raises(ValueError, match="Spark Connect is not supported"):
        SparkResource(master="sc://127.0.0.1:15002")
