"""A deployment's whole flow with every credential set, on S3 (issue 18, secrets): one micro-batch of
every asset against a local stack with authentication ON (Kafka SASL_PLAINTEXT with PLAIN, Cassandra's
PasswordAuthenticator) and the lake on the local S3 server (its access and secret key), in its own
process configured only through the variables a deployment sets.

1. The flow works: bronze reads Kafka with SASL, silver on s3a:// equals the workload's true source
   state for every table, the run (every check included) succeeds, and the projections in Cassandra
   hold every live order. (The same flow on HDFS with Spark on a standalone cluster is
   test_lake_end_to_end.py; a clean local-lake flow is test_make_run.py.)
2. No secret shows anywhere the run writes: the Dagster event log (every event, metadata and errors
   included), the run's stdout/stderr, the Spark log and every other file under the stack folder
   (server logs and configuration), the lake's objects on S3 and the Dagster instance's folder.
   Errors raised with a WRONG password must say what failed and where, without that password.

Each secret is searched as text and as base64 of `user:password` and of the SASL PLAIN message
(`\\0user\\0password`), the forms a Basic-like encoding would show. The search proves itself first on a
planted file. The S3 secret key is the test session's random one (tests/conftest.py).

The Kafka and Cassandra stack is private to this module (free ports, a temporary folder), so its
servers require these passwords and nothing else in the suite has to know them.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from assets.factory import load_specs
from devtools.stack import Stack, StackAuth, StackPorts
from devtools.stack.s3 import DEFAULT_BUCKET
from devtools.workload import Workload, WorkloadConfig, generate_workload
from devtools.workload.compare import differences, silver_rows, truth_rows
from devtools.workload.producer import PRODUCER_CONFIG
from resources.connections import CassandraResource, KafkaResource
from tests.pipeline import crm_specs_folder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 1000
KAFKA_USER, CASSANDRA_USER = "cdc-pipeline", "cdc_pipeline"


@dataclass(frozen=True)
class AuthStack:
    stack: Stack
    kafka: StackAuth
    cassandra: StackAuth

    def kafka_config(self, password: str | None = None) -> dict[str, str]:
        return KafkaResource(
            bootstrap_servers=self.stack.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username=self.kafka.user,
            sasl_password=password or self.kafka.password,
        ).client_config()

    def secrets(self) -> list[StackAuth]:
        return [self.kafka, self.cassandra]


@pytest.fixture(scope="module")
def auth_stack() -> Iterator[AuthStack]:
    kafka = StackAuth(KAFKA_USER, f"pw-{secrets.token_urlsafe(12)}")
    cassandra = StackAuth(CASSANDRA_USER, f"pw-{secrets.token_urlsafe(12)}")
    state_dir = Path(tempfile.mkdtemp(prefix="cdc-test-secrets-stack-"))
    stack = Stack(
        state_dir, StackPorts.free(), die_with_parent=True, kafka_auth=kafka, cassandra_auth=cassandra
    )
    try:
        stack.up()
        yield AuthStack(stack, kafka, cassandra)
    finally:
        stack.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def forms(auth: StackAuth) -> dict[str, bytes]:
    """The ways a password may show: as text, and base64 of user:password and of the SASL PLAIN message."""
    return {
        "text": auth.password.encode(),
        "base64(user:password)": base64.b64encode(f"{auth.user}:{auth.password}".encode()),
        "base64(\\0user\\0password)": base64.b64encode(f"\0{auth.user}\0{auth.password}".encode()),
    }


def leaks(data: bytes | str, secret_list: list[StackAuth]) -> list[str]:
    """Which secret, in which form, `data` contains."""
    raw = data.encode(errors="surrogateescape") if isinstance(data, str) else data
    return [
        f"{auth.user}'s password as {form}"
        for auth in secret_list
        for form, needle in forms(auth).items()
        if needle in raw
    ]


def leaks_in_files(folders: list[Path], secret_list: list[StackAuth]) -> dict[str, list[str]]:
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                hits = leaks(path.read_bytes(), secret_list)
                if hits:
                    found[str(path)] = hits
    return found


def produce_workload(auth_stack: AuthStack) -> Workload:
    """A small CRM workload (every table the gold entities read), produced with SASL credentials."""
    workload = generate_workload(WorkloadConfig(initial_rows=20, changes=40))
    config = auth_stack.kafka_config()
    admin = AdminClient(config)
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=2, replication_factor=1) for t in workload.topics()]
    ).values():
        future.result(timeout=60)
    producer = Producer({**config, **PRODUCER_CONFIG})
    failures: list[str] = []
    for message in workload.messages:
        producer.produce(
            message.topic,
            value=message.value,
            key=message.key,
            on_delivery=lambda error, _msg: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]
    return workload


def run_one_microbatch(
    auth_stack: AuthStack, s3_stack: Stack, lake_root: str, folder: Path
) -> tuple[subprocess.CompletedProcess, Path]:
    """`python -m orchestration.loop --runs 1`: one `microbatch` run in-process in a fresh Dagster
    instance with its lake at `lake_root`, configured only from the environment; returns (its captured
    output, DAGSTER_HOME)."""
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_") and k != "DAGSTER_HOME"}
    environment.update(auth_stack.stack.connection_settings())
    environment.update(
        s3_stack.connection_settings()
    )  # the endpoint, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    environment.update(
        {
            "CDC_KAFKA_SASL_PASSWORD": auth_stack.kafka.password,
            "CDC_CASSANDRA_PASSWORD": auth_stack.cassandra.password,
            "DAGSTER_HOME": str(home),
            "CDC_LAKE_ROOT": lake_root,
            "CDC_SPARK_LOG": str(auth_stack.stack.state_dir / "spark.log"),
            "CDC_CUT_IDLE_SECONDS": "0",
            "CDC_SPECS_DIR": str(crm_specs_folder(folder)),  # a CRM workload: the CRM's tables
        }
    )
    assert environment["CDC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["CDC_CASSANDRA_USERNAME"] == CASSANDRA_USER
    completed = subprocess.run(
        [sys.executable, "-u", "-m", "orchestration.loop", "--runs", "1", "--interval", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    return completed, home


def wrong_password_errors(
    auth_stack: AuthStack, wrong_kafka: StackAuth, wrong_cassandra: StackAuth, capfd, caplog
) -> dict[str, str]:
    """What the platform raises, and what its clients print and log, when a password is wrong: a bronze
    read (make_consumer + watermarks, as the bronze asset starts) and a CassandraResource session."""
    from transforms.bronze.kafka_reader import make_consumer, watermarks

    capfd.readouterr()
    caplog.clear()
    errors = {}
    consumer = make_consumer(
        auth_stack.kafka_config(password=wrong_kafka.password), group_id="secrets-wrong-password"
    )
    try:
        with pytest.raises(Exception) as kafka_error:
            watermarks(consumer, "crm.S_CONTACT", timeout_s=5)
    finally:
        consumer.close()
    errors["kafka read"] = f"{type(kafka_error.value).__name__}: {kafka_error.value}"
    cassandra = CassandraResource(
        contact_points=[auth_stack.stack.cassandra_host],
        port=auth_stack.stack.cassandra_port,
        username=wrong_cassandra.user,
        password=wrong_cassandra.password,
    )
    with pytest.raises(Exception) as cassandra_error:
        cassandra.session()
    errors["cassandra connect"] = f"{type(cassandra_error.value).__name__}: {cassandra_error.value}"
    captured = capfd.readouterr()
    errors["client output (stdout/stderr)"] = captured.out + captured.err
    errors["client log records"] = caplog.text
    return errors


def test_the_whole_flow_with_every_credential_set_on_s3_shows_no_secret_anywhere(
    auth_stack: AuthStack, s3_stack: Stack, s3_lake, spark, tmp_path: Path, capfd, caplog
) -> None:
    stack = auth_stack.stack
    s3_server = s3_stack.server("s3")
    s3_secret = StackAuth(s3_server.access_key, s3_server.secret_key)
    state_dir = stack.state_dir
    # -- the search works: a planted password, as text and base64-encoded, is found ----------------
    planted = state_dir / "planted-secret.txt"
    planted.write_bytes(b"x " + forms(auth_stack.kafka)["base64(user:password)"] + b" y")
    assert leaks_in_files([state_dir], auth_stack.secrets()) == {
        str(planted): [f"{KAFKA_USER}'s password as base64(user:password)"]
    }
    planted.write_text(f"password={auth_stack.cassandra.password}")
    assert list(leaks_in_files([state_dir], auth_stack.secrets())) == [str(planted)]
    planted.unlink()

    # -- authentication is really on: no credentials, no access ----------------------------------
    with pytest.raises(Exception, match="Bad credentials|AuthenticationFailed|[Aa]uthentication"):
        Cluster([stack.cassandra_host], port=stack.cassandra_port).connect()

    # -- one micro-batch with the right passwords, the lake on S3 ----------------------------------
    workload = produce_workload(auth_stack)
    prefix = f"secrets-{uuid.uuid4().hex[:8]}"
    lake_root = f"s3a://{DEFAULT_BUCKET}/{prefix}"
    assert s3_lake.root.startswith(f"s3a://{DEFAULT_BUCKET}/")  # `spark` reads this bucket
    completed, home = run_one_microbatch(auth_stack, s3_stack, lake_root, tmp_path)
    output = f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    assert completed.returncode == 0, output[-6000:]
    assert "succeeded" in completed.stdout, output[-6000:]

    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    events = instance.all_logs(runs[0].run_id)
    materialized = {}
    for event in events:
        if event.dagster_event and event.dagster_event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.dagster_event.event_specific_data.materialization
            materialized[materialization.asset_key.to_user_string()] = {
                key: value.value for key, value in materialization.metadata.items()
            }
    bronze_rows = sum(
        meta.get("rows_written", 0) for key, meta in materialized.items() if key.startswith("bronze/")
    )
    assert 0 < bronze_rows <= len(workload.messages), materialized  # read from Kafka with SASL
    assert any(key.startswith("cassandra/") for key in materialized), sorted(materialized)
    cluster = Cluster(
        [stack.cassandra_host],
        port=stack.cassandra_port,
        auth_provider=PlainTextAuthProvider(CASSANDRA_USER, auth_stack.cassandra.password),
    )
    try:
        projected = cluster.connect().execute("SELECT count(*) FROM cdc.order_by_id").one()[0]
    finally:
        cluster.shutdown()
    truth = workload.state(as_text_values=True)
    assert projected == len(truth["SIEBEL.S_ORDER"]) > 0  # written to Cassandra with the password
    for spec in [s for s in load_specs() if s.source == "crm"]:
        silver = silver_rows(spark, f"{lake_root}/silver/{spec.asset_name}", spec)
        problems = differences(silver, truth_rows(truth[spec.table], spec))
        assert not problems, f"{spec.table}: {len(problems)} differences, e.g. {problems[:3]}"

    # -- errors with wrong passwords (different from the right ones, searched as well) -----------
    wrong_kafka = StackAuth(KAFKA_USER, f"pw-wrong-{secrets.token_urlsafe(12)}")
    wrong_cassandra = StackAuth(CASSANDRA_USER, f"pw-wrong-{secrets.token_urlsafe(12)}")
    errors = wrong_password_errors(auth_stack, wrong_kafka, wrong_cassandra, capfd, caplog)
    kafka_text, cassandra_text = errors["kafka read"], errors["cassandra connect"]
    assert stack.kafka_bootstrap in kafka_text and "authentication" in kafka_text.lower(), kafka_text
    assert f"{stack.cassandra_host}:{stack.cassandra_port}" in cassandra_text, cassandra_text
    assert "credentials" in cassandra_text.lower() or "authenticat" in cassandra_text.lower(), cassandra_text
    assert "Bad credentials" in errors["client log records"], errors["client log records"][-2000:]

    # -- nowhere: files, event log, the run's output, the errors ---------------------------------
    every_secret = [*auth_stack.secrets(), s3_secret, wrong_kafka, wrong_cassandra]
    assert (state_dir / "spark.log").is_file() and (state_dir / "logs" / "kafka.log").is_file()
    lake_objects = s3_server.data_dir / DEFAULT_BUCKET / prefix
    assert (lake_objects / "silver").is_dir()
    found = leaks_in_files([state_dir, home, lake_objects], every_secret)
    for number, event in enumerate(events):
        hits = leaks(f"{event!r}\n{event}", every_secret)
        if hits:
            found[f"event {number} of the event log ({event.dagster_event_type})"] = hits
    for where, text in {
        "the run's stdout": completed.stdout,
        "the run's stderr": completed.stderr,
        **{f"{name} with a wrong password": text for name, text in errors.items()},
    }.items():
        hits = leaks(text, every_secret)
        if hits:
            found[where] = hits
    assert not found, found
