"""Apache Cassandra 5.0, one node on 127.0.0.1, configured entirely by files we write."""

from __future__ import annotations

from pathlib import Path

import yaml
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import DCAwareRoundRobinPolicy

from devtools.stack.jars import ensure_jars
from devtools.stack.ports import HOST, accepts_connections
from devtools.stack.server import SERVER_JIT_OPTIONS, Server, StackAuth, classpath, java_executable

LOCAL_DC = "datacenter1"  # what SimpleSnitch reports
# The superuser PasswordAuthenticator creates on a node's first start (at once: see _AUTH_JVM_OPTIONS).
_DEFAULT_SUPERUSER = StackAuth("cassandra", "cassandra")
_AUTH_SETTINGS = {
    "authenticator": "PasswordAuthenticator",
    "authorizer": "CassandraAuthorizer",
    "role_manager": "CassandraRoleManager",
}
_AUTH_JVM_OPTIONS = ["-Dcassandra.superuser_setup_delay_ms=0"]  # default 10 s after boot

# Cassandra's conf/jvm17-server.options (branch cassandra-5.0): without the module flags the
# daemon exits at once (IllegalAccessException on sun.nio.ch.DirectBuffer).
_JDK17_MODULE_FLAGS = [
    "--add-exports",
    "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports",
    "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports",
    "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports",
    "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports",
    "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports",
    "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports",
    "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports",
    "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens",
    "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens",
    "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.io=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens",
    "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.util=ALL-UNNAMED",
]

_JVM_OPTIONS = [
    "-Xms512m",
    "-Xmx512m",
    "-Xss256k",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:MaxGCPauseMillis=300",
    "-XX:+ExitOnOutOfMemoryError",
    *SERVER_JIT_OPTIONS,
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    # Keeps stdout/stderr open (the daemon closes them otherwise) so the log file gets everything.
    "-Dcassandra-foreground=yes",
    # One node: nobody to gossip with.
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    # A schema change does not flush the system tables to disk at once (the commit log still has it):
    # the tests make and drop keyspaces all the time. Booting, then 15 keyspaces made, written, read and
    # dropped: 6.0 + 10.9-11.5 s of CPU against 6.8-8.5 + 12.7-12.8 s (C1 only both times).
    "-Dcassandra.unsafesystem=true",
]

_LOGBACK = """\
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


class CassandraServer(Server):
    name = "cassandra"
    stop_grace_seconds = 45.0

    def __init__(
        self, home: Path, log_path: Path, native_port: int, storage_port: int, auth: StackAuth | None = None
    ):
        super().__init__(home, log_path)
        self.native_port = native_port
        self.storage_port = storage_port
        self.auth = auth

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    def ports(self) -> dict[str, int]:
        return {"native": self.native_port, "storage": self.storage_port}

    def settings(self) -> dict:
        """The cassandra.yaml of a single local node (everything else keeps Cassandra's defaults)."""
        data = self.home / "data"
        return {
            "cluster_name": "cdc-local",
            # Deliberately no allocate_tokens_for_local_replication_factor: it adds ~30 s to the first boot.
            "num_tokens": 1,
            "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
            "endpoint_snitch": "SimpleSnitch",
            "storage_compatibility_mode": "NONE",
            "data_file_directories": [str(data / "data")],
            "commitlog_directory": str(data / "commitlog"),
            "saved_caches_directory": str(data / "saved_caches"),
            "hints_directory": str(data / "hints"),
            "cdc_raw_directory": str(data / "cdc_raw"),
            "commitlog_sync": "periodic",
            "commitlog_sync_period": "10000ms",
            "seed_provider": [
                {
                    "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                    "parameters": [{"seeds": f"{HOST}:{self.storage_port}"}],
                }
            ],
            "listen_address": HOST,
            "rpc_address": HOST,
            "storage_port": self.storage_port,
            "native_transport_port": self.native_port,
            "start_native_transport": True,
            "auto_snapshot": False,
            "concurrent_compactors": 1,
            **(_AUTH_SETTINGS if self.auth else {}),
        }

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "cassandra.yaml").write_text(yaml.safe_dump(self.settings(), sort_keys=False))
        (self.conf_dir / "logback.xml").write_text(_LOGBACK)

    def command(self) -> list[str]:
        jars = ensure_jars("cassandra")
        jamm = next((jar for jar in jars if jar.name.startswith("jamm-")), None)
        if jamm is None:
            raise RuntimeError("the cassandra jars have no jamm-*.jar (needed as -javaagent)")
        return [
            java_executable(),
            *_JVM_OPTIONS,
            *(_AUTH_JVM_OPTIONS if self.auth else []),
            *_JDK17_MODULE_FLAGS,
            f"-javaagent:{jamm}",
            f"-Dcassandra.config=file://{self.conf_dir / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={self.conf_dir / 'logback.xml'}",
            f"-Dcassandra.logdir={self.home / 'logs'}",
            f"-Dcassandra.storagedir={self.home / 'data'}",
            "-cp",
            classpath([self.conf_dir, *jars]),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def check(self, timeout: float) -> str:
        if not accepts_connections(self.native_port):
            raise ConnectionError(f"nothing accepts connections on {HOST}:{self.native_port}")
        try:
            return self._release_version(timeout, self.auth)
        except NoHostAvailable as error:
            if not self.auth or not any(isinstance(e, AuthenticationFailed) for e in error.errors.values()):
                raise
        # First start: only the default superuser exists. Create our role with it, then log in as ours.
        self._create_role(timeout)
        return self._release_version(timeout, self.auth)

    def _cluster(self, timeout: float, auth: StackAuth | None) -> Cluster:
        profile = ExecutionProfile(
            load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=LOCAL_DC), request_timeout=timeout
        )
        provider = PlainTextAuthProvider(username=auth.user, password=auth.password) if auth else None
        return Cluster(
            contact_points=[HOST],
            port=self.native_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=timeout,
            control_connection_timeout=timeout,
            auth_provider=provider,
        )

    def _release_version(self, timeout: float, auth: StackAuth | None) -> str:
        cluster = self._cluster(timeout, auth)
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        finally:
            cluster.shutdown()
        return f"Cassandra {row.release_version}"

    def _create_role(self, timeout: float) -> None:
        """Our role (LOGIN, SUPERUSER), created by the default superuser (Cassandra stores only its hash)."""
        assert self.auth is not None
        cluster = self._cluster(timeout, _DEFAULT_SUPERUSER)
        try:
            session = cluster.connect()
            session.execute(
                f'CREATE ROLE IF NOT EXISTS "{self.auth.user}" '
                f"WITH PASSWORD = '{self.auth.password}' AND LOGIN = true AND SUPERUSER = true"
            )
        finally:
            cluster.shutdown()
