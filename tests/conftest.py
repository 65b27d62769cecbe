"""Shared fixtures. All of them are lazy: a test that asks for none of them starts nothing.

- `stack`: real Kafka and Cassandra for the whole pytest session. By default a PRIVATE stack on
  free ports in a temporary state directory, started on first use and stopped (and deleted) at the
  end, so several pytest processes on one machine never share or clash. Its servers also die if
  this process is killed.
  Set `CDC_TEST_STACK_DIR=<dir>` to use the stack of that state directory instead: it is started
  there if it does not run yet, and left running at the end, so repeated runs skip the ~15 s boot,
  e.g. `CDC_TEST_STACK_DIR=.stack pytest` after `make stack-up`.
- `unshared_stack`: for a module that writes the project's real topic names or keyspace (`make run`,
  the Dagster UI): `stack` when it is private, else a private stack of the module.
- `kafka_bootstrap`: the stack's bootstrap servers (`host:port`).
- `cassandra_session`: a cassandra-driver Session connected to the stack (no keyspace bound).
- `spark`: one SparkSession with Delta per pytest process.
- `tmp_lake`: a fresh, empty folder per test to hold Delta tables.

Transaction-consistent cuts (transforms.cut) hold back each busy partition's newest transaction until
the partition has been quiet for CDC_CUT_IDLE_SECONDS. Tests that compare silver with the source's
final state right after producing set it to 0 here (a caught-up partition never holds the cut);
the cut's own tests set their value.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.stack.stack import Stack, StackPorts

os.environ.setdefault("CDC_CUT_IDLE_SECONDS", "0")
# Tests name their servers explicitly (each module's resources, or the environment of the process it
# starts). The module-level Definitions (orchestration.definitions), which some tests import, require
# the three server settings; here they point nowhere (port 9, discard; a lake in a fresh temporary
# folder), so a test that used them by mistake fails at once instead of reaching some other server.
for _variable, _value in {
    "CDC_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    "CDC_CASSANDRA_HOSTS": "127.0.0.1",
    "CDC_CASSANDRA_PORT": "9",
    "CDC_LAKE_ROOT": tempfile.mkdtemp(prefix="cdc-test-unused-lake-"),
}.items():
    os.environ.setdefault(_variable, _value)
# The local S3 servers of a test session accept a random secret key (devtools.stack.s3.local_credentials),
# so the secrets test (tests/integration/test_secrets.py) can search for one that appears nowhere else.
os.environ.setdefault("CDC_S3_LOCAL_SECRET_KEY", f"s3-{secrets.token_urlsafe(12)}")


@contextmanager
def private_stack(name: str, servers: tuple[str, ...] | None = None) -> Iterator[Stack]:
    """A stack on free ports in a fresh temporary folder (`servers`: the stack's default ones), up until
    the block ends, then stopped and deleted; its servers also die with this process."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"cdc-test-{name}-"))
    options = {"servers": servers} if servers else {}
    private = Stack(state_dir, StackPorts.free(), die_with_parent=True, **options)
    try:
        private.up()
        yield private
    finally:
        private.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    shared_dir = os.environ.get("CDC_TEST_STACK_DIR")
    if shared_dir:
        shared = Stack(shared_dir)
        shared.up()
        yield shared
        return
    with private_stack("stack") as private:
        yield private


@pytest.fixture(scope="module")
def unshared_stack(request) -> Iterator[Stack]:
    """For a module that writes the project's real topic names or keyspace: the session's stack when it
    is private, else (CDC_TEST_STACK_DIR) a private stack of the module's own."""
    if not os.environ.get("CDC_TEST_STACK_DIR"):
        yield request.getfixturevalue("stack")
        return
    with private_stack(request.module.__name__.rsplit(".", 1)[-1]) as private:
        yield private


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Stack) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def cassandra_session(stack: Stack):
    from cassandra.cluster import Cluster

    from resources.connections import CassandraResource

    resource = CassandraResource(contact_points=[stack.cassandra_host], port=stack.cassandra_port)
    cluster = Cluster(**resource.cluster_kwargs())
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def spark():
    from resources.spark_session import build_spark_session

    session = build_spark_session()
    yield session
    session.stop()


@pytest.fixture
def tmp_lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    lake.mkdir()
    return lake


# -- lake targets ---------------------------------------------------------------------------------
# A local S3 (s3proxy), a local HDFS (one NameNode, one DataNode) and a Spark standalone cluster, each
# a private server on free ports in a temporary state directory, started on first use and stopped at
# the end of the session. `s3_lake` / `hdfs_lake` are LakeResources on them, with the `spark` session
# configured to reach them; each test puts its tables under its own folder of the root.


def _private_server(name: str) -> Iterator[Stack]:
    with private_stack(name, servers=(name,)) as private:
        yield private


@pytest.fixture(scope="session")
def s3_stack() -> Iterator[Stack]:
    yield from _private_server("s3")


@pytest.fixture(scope="session")
def hdfs_stack() -> Iterator[Stack]:
    yield from _private_server("hdfs")


@pytest.fixture(scope="session")
def standalone_spark() -> Iterator[Stack]:
    """A Spark master and one worker; `standalone_spark.spark_master_url` is `spark://127.0.0.1:<port>`."""
    yield from _private_server("spark")


@pytest.fixture(scope="session")
def s3_lake(s3_stack: Stack, spark):
    import uuid

    from devtools.stack.s3 import DEFAULT_BUCKET, LOCAL_REGION
    from resources.connections import LakeResource

    server = s3_stack.server("s3")
    lake = LakeResource(
        root=f"s3a://{DEFAULT_BUCKET}/tests-{uuid.uuid4().hex[:8]}",
        s3_endpoint=server.endpoint,
        s3_path_style_access=True,
        s3_region=LOCAL_REGION,
        s3_access_key=server.access_key,
        s3_secret_key=server.secret_key,
        # few retries, so a write against a stopped server gives up in seconds, not minutes
        hadoop_conf={
            f"fs.s3a.bucket.{DEFAULT_BUCKET}.retry.limit": "2",
            f"fs.s3a.bucket.{DEFAULT_BUCKET}.attempts.maximum": "2",
        },
    )
    lake.configure(spark)
    return lake


@pytest.fixture(scope="session")
def hdfs_lake(hdfs_stack: Stack, spark):
    import uuid

    from resources.connections import LakeResource

    lake = LakeResource(
        root=f"{hdfs_stack.hdfs_uri}/tests-{uuid.uuid4().hex[:8]}", hadoop_conf={"dfs.replication": "1"}
    )
    lake.configure(spark)
    return lake
