"""Apache Kafka 4.4, one KRaft node that is both broker and controller, on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from devtools.stack import process
from devtools.stack.jars import ensure_jars
from devtools.stack.ports import HOST, accepts_connections
from devtools.stack.server import SERVER_JIT_OPTIONS, Server, StackAuth, classpath, java_executable

_HEAP = ["-Xms256m", "-Xmx512m"]
MAX_RECORD_BYTES = 16 * 1024 * 1024  # the broker's message.max.bytes; producers need the same

# librdkafka reports refused connections while the broker starts; the health check says what matters.
_QUIET = logging.getLogger(__name__ + ".librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

_LOG4J2 = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state_change.name = state.change.logger
logger.state_change.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


# With authentication the broker reads its JAAS line (which holds the password) from this variable of
# its own environment (Kafka's EnvVarConfigProvider), so no file under the state directory holds it.
_JAAS_VARIABLE = "CDC_STACK_KAFKA_JAAS"


class KafkaServer(Server):
    name = "kafka"
    stop_grace_seconds = 30.0

    def __init__(
        self, home: Path, log_path: Path, port: int, controller_port: int, auth: StackAuth | None = None
    ):
        super().__init__(home, log_path)
        self.port = port
        self.controller_port = controller_port
        self.auth = auth

    @property
    def listener(self) -> str:
        """The clients' listener: PLAINTEXT, or SASL_PLAINTEXT (mechanism PLAIN) with authentication."""
        return "SASL_PLAINTEXT" if self.auth else "PLAINTEXT"

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings of a client of this broker (credentials included)."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.listener}
        if self.auth:
            config.update(
                {
                    "sasl.mechanism": "PLAIN",
                    "sasl.username": self.auth.user,
                    "sasl.password": self.auth.password,
                }
            )
        return config

    def environment(self) -> dict[str, str]:
        if not self.auth:
            return {}
        user, password = self.auth.user, self.auth.password
        return {
            _JAAS_VARIABLE: "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}" user_{user}="{password}";'
        }

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def properties_path(self) -> Path:
        return self.home / "server.properties"

    def ports(self) -> dict[str, int]:
        return {"broker": self.port, "controller": self.controller_port}

    def properties(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static quorum: the formatted storage does not remember the controller's address,
            # so the stack may move to other ports between runs.
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"{self.listener}://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"{self.listener}://{HOST}:{self.port}",
            "listener.security.protocol.map": f"{self.listener}:{self.listener},CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": self.listener,
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # One node: internal topics with one replica; one partition each makes the first
            # consumer-group join fast (0.3 s instead of 3 s).
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Our code creates its topics explicitly; auto-creation stays on for ad-hoc use.
            "auto.create.topics.enable": "true",
            # Records up to 16 MiB (Kafka's default is 1 MiB): a CDC message with a big LOB, or a 10 MB
            # poison value, must reach bronze or its quarantine (tests/integration/test_poison_corpus.py)
            # instead of failing at the producer. Replica fetches must take the largest record.
            "message.max.bytes": str(MAX_RECORD_BYTES),
            "replica.fetch.max.bytes": str(MAX_RECORD_BYTES),
            **(self._sasl_properties() if self.auth else {}),
        }

    def _sasl_properties(self) -> dict[str, str]:
        """SASL/PLAIN on the clients' listener (also the broker's own, as the inter-broker listener);
        the controller listener stays PLAINTEXT on 127.0.0.1."""
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "config.providers": "env",
            "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": f"${{env:{_JAAS_VARIABLE}}}",
        }

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()

    def _format_storage(self) -> None:
        command = [
            *self._java(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _random_cluster_id(),
            "-c",
            str(self.properties_path),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== formatting storage: {process.describe(command)}\n".encode())
            log.flush()
            environment = {**os.environ, **self.environment()}
            result = subprocess.run(
                command, cwd=self.home, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {result.returncode})"
            )

    def _java(self) -> list[str]:
        return [
            java_executable(),
            *_HEAP,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            *SERVER_JIT_OPTIONS,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            classpath(ensure_jars("kafka")),
        ]

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.properties_path)]

    def check(self, timeout: float) -> str:
        if not accepts_connections(self.port):
            raise ConnectionError(f"nothing accepts connections on {self.bootstrap_servers}")
        admin = AdminClient({**self.client_config(), "logger": _QUIET})
        metadata = admin.list_topics(timeout=timeout)
        if not metadata.brokers:
            raise ConnectionError("the cluster metadata lists no broker")
        return f"{len(metadata.brokers)} broker, {len(metadata.topics)} topics"


def _random_cluster_id() -> str:
    """A Kafka Uuid in its text form (url-safe base64, no padding), like `kafka-storage random-uuid`."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text
