"""The local stack: Kafka and Cassandra as real servers on 127.0.0.1, started from Maven Central jars.

Optional servers, started only when named (`servers=` or `python -m devtools.stack.cli up --with s3,hdfs,spark`): a local
S3 (s3proxy), a local HDFS (one NameNode, one DataNode) and a Spark standalone cluster (one master,
one worker), to run the lake and the compute beyond one local folder and one JVM.

A stack lives in a state directory (default `<project>/.stack`, or `$CDC_STACK_DIR`):

    <state>/stack.json            ports and pids of the running servers
    <state>/stack.lock            held while `up` or `down` runs
    <state>/logs/kafka.log        everything each server prints
    <state>/logs/cassandra.log
    <state>/kafka/ ...            each server's configuration and data
    <state>/cassandra/ ...
    <state>/s3/data/<bucket>/...  (optional servers: s3, hdfs, spark)

`up` is idempotent: a server that runs and answers is kept; one that is gone is started again.
Ports come from, in order: the `ports` argument, the environment (CDC_KAFKA_PORT,
CDC_KAFKA_CONTROLLER_PORT, CDC_CASSANDRA_PORT, CDC_CASSANDRA_STORAGE_PORT, and for the optional
servers CDC_S3_PORT, CDC_HDFS_PORT, CDC_HDFS_HTTP_PORT, CDC_SPARK_MASTER_PORT, CDC_SPARK_MASTER_WEB_PORT,
CDC_SPARK_WORKER_PORT, CDC_SPARK_WORKER_WEB_PORT), the ports recorded in the state directory, the
defaults below.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.stack import process
from devtools.stack.cassandra import CassandraServer
from devtools.stack.hdfs import HdfsServer
from devtools.stack.jars import PROJECT_ROOT
from devtools.stack.kafka import KafkaServer
from devtools.stack.ports import HOST, free_ports, port_is_free
from devtools.stack.s3 import DEFAULT_BUCKET, LOCAL_REGION, S3Server, local_credentials
from devtools.stack.server import Server, StackAuth
from devtools.stack.spark_standalone import SparkStandaloneServer
from resources import LOCAL_SETTINGS_FILE

SERVER_NAMES = ("kafka", "cassandra")  # what a stack runs unless told otherwise
OPTIONAL_SERVER_NAMES = ("s3", "hdfs", "spark")
ALL_SERVER_NAMES = SERVER_NAMES + OPTIONAL_SERVER_NAMES
DEFAULT_START_TIMEOUT = 180.0


class StackError(RuntimeError):
    pass


class PortInUseError(StackError):
    pass


class ServerStartError(StackError):
    pass


@dataclass(frozen=True)
class StackPorts:
    kafka: int = 19092
    kafka_controller: int = 19093
    cassandra: int = 19042
    cassandra_storage: int = 17000
    s3: int = 19900
    hdfs: int = 19820
    hdfs_http: int = 19870
    spark_master: int = 17077
    spark_master_web: int = 18080
    spark_worker: int = 17078
    spark_worker_web: int = 18081

    ENV = {
        "kafka": "CDC_KAFKA_PORT",
        "kafka_controller": "CDC_KAFKA_CONTROLLER_PORT",
        "cassandra": "CDC_CASSANDRA_PORT",
        "cassandra_storage": "CDC_CASSANDRA_STORAGE_PORT",
        "s3": "CDC_S3_PORT",
        "hdfs": "CDC_HDFS_PORT",
        "hdfs_http": "CDC_HDFS_HTTP_PORT",
        "spark_master": "CDC_SPARK_MASTER_PORT",
        "spark_master_web": "CDC_SPARK_MASTER_WEB_PORT",
        "spark_worker": "CDC_SPARK_WORKER_PORT",
        "spark_worker_web": "CDC_SPARK_WORKER_WEB_PORT",
    }

    @classmethod
    def resolve(cls, recorded: dict[str, int] | None = None) -> StackPorts:
        """Each port from its environment variable, else from `recorded`, else the default."""
        values = {}
        for field in dataclasses.fields(cls):
            env_value = os.environ.get(cls.ENV[field.name])
            if env_value:
                values[field.name] = int(env_value)
            elif recorded and field.name in recorded:
                values[field.name] = int(recorded[field.name])
        return cls(**values)

    @classmethod
    def free(cls) -> StackPorts:
        """Ports that are free now (for a private stack, e.g. one per test run)."""
        return cls(*free_ports(len(dataclasses.fields(cls))))


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int | None
    ports: dict[str, int]
    running: bool
    healthy: bool
    detail: str
    rss_bytes: int | None

    def line(self) -> str:
        ports = " ".join(f"{role}={port}" for role, port in self.ports.items())
        pid = str(self.pid) if self.running else "-"
        state = "healthy" if self.healthy else ("running, NOT answering" if self.running else "stopped")
        rss = f"  rss={self.rss_bytes / 2**20:.0f}MiB" if self.rss_bytes else ""
        return f"{self.name:<10} pid={pid:<8} {ports:<30} {state}{rss}  {self.detail}"


def default_state_dir() -> Path:
    return Path(os.environ.get("CDC_STACK_DIR", PROJECT_ROOT / ".stack"))


class Stack:
    """A set of local servers sharing one state directory.

    >>> stack = Stack(Path("/tmp/s"), StackPorts.free())
    >>> stack.up()           # starts, or reuses, and waits until each server answers
    >>> stack.kafka_bootstrap, stack.cassandra_host, stack.cassandra_port
    >>> stack.down()         # SIGTERM, then SIGKILL; nothing left running
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        ports: StackPorts | None = None,
        servers: Sequence[str] = SERVER_NAMES,
        die_with_parent: bool = False,
        kafka_auth: StackAuth | None = None,
        cassandra_auth: StackAuth | None = None,
    ):
        unknown = set(servers) - set(ALL_SERVER_NAMES)
        if unknown:
            raise ValueError(f"unknown servers {sorted(unknown)}; known: {ALL_SERVER_NAMES}")
        self.state_dir = Path(state_dir or default_state_dir()).resolve()
        self.ports = ports or StackPorts.resolve(self._read_state().get("ports"))
        self.server_names = tuple(name for name in ALL_SERVER_NAMES if name in servers)
        self.die_with_parent = die_with_parent
        self.kafka_auth, self.cassandra_auth = kafka_auth, cassandra_auth
        self._children: dict[str, object] = {}
        self._state_guard = threading.Lock()

    # -- connection settings -------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.ports.kafka}"

    @property
    def cassandra_host(self) -> str:
        return HOST

    @property
    def cassandra_port(self) -> int:
        return self.ports.cassandra

    def connection_settings(self) -> dict[str, str]:
        """The environment variables that point `resources.connections.resources_from_env` here
        (with authentication: the users, not the passwords, CDC_KAFKA_SASL_PASSWORD and
        CDC_CASSANDRA_PASSWORD)."""
        settings = {}
        if "kafka" in self.server_names:
            settings["CDC_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
            if self.kafka_auth:
                settings["CDC_KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
                settings["CDC_KAFKA_SASL_MECHANISM"] = "PLAIN"
                settings["CDC_KAFKA_SASL_USERNAME"] = self.kafka_auth.user
        if "cassandra" in self.server_names:
            settings["CDC_CASSANDRA_HOSTS"] = self.cassandra_host
            settings["CDC_CASSANDRA_PORT"] = str(self.cassandra_port)
            if self.cassandra_auth:
                settings["CDC_CASSANDRA_USERNAME"] = self.cassandra_auth.user
        if "s3" in self.server_names:
            access_key, secret_key = local_credentials()
            settings["CDC_S3_ENDPOINT"] = self.s3_endpoint
            settings["CDC_S3_PATH_STYLE_ACCESS"] = "true"
            settings["AWS_ACCESS_KEY_ID"] = access_key
            settings["AWS_SECRET_ACCESS_KEY"] = secret_key
            settings["AWS_REGION"] = LOCAL_REGION
        if "spark" in self.server_names:
            settings["CDC_SPARK_MASTER"] = self.spark_master_url
        return settings

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports.s3}"

    @property
    def hdfs_uri(self) -> str:
        return f"hdfs://{HOST}:{self.ports.hdfs}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://{HOST}:{self.ports.spark_master}"

    def lake_roots(self) -> dict[str, str]:
        """A lake root (CDC_LAKE_ROOT) on each storage server of this stack."""
        roots = {}
        if "s3" in self.server_names:
            roots["s3"] = f"s3a://{DEFAULT_BUCKET}/cdc"
        if "hdfs" in self.server_names:
            roots["hdfs"] = f"{self.hdfs_uri}/cdc"
        return roots

    # -- servers -------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def server(self, name: str) -> Server:
        home, log = self.state_dir / name, self.log_dir / f"{name}.log"
        if name == "kafka":
            return KafkaServer(home, log, self.ports.kafka, self.ports.kafka_controller, self.kafka_auth)
        if name == "cassandra":
            return CassandraServer(
                home, log, self.ports.cassandra, self.ports.cassandra_storage, self.cassandra_auth
            )
        if name == "s3":
            access_key, secret_key = local_credentials()
            return S3Server(home, log, self.ports.s3, access_key, secret_key)
        if name == "hdfs":
            return HdfsServer(home, log, self.ports.hdfs, self.ports.hdfs_http)
        if name == "spark":
            return SparkStandaloneServer(
                home,
                log,
                self.ports.spark_master,
                self.ports.spark_master_web,
                self.ports.spark_worker,
                self.ports.spark_worker_web,
            )
        raise ValueError(name)

    def servers(self) -> list[Server]:
        return [self.server(name) for name in self.server_names]

    def pids(self) -> dict[str, int]:
        """The recorded pids of the servers of this stack that are running now."""
        recorded = self._read_state().get("servers", {})
        return {
            server.name: recorded[server.name]["pid"]
            for server in self.servers()
            if server.name in recorded and server.owns_process(recorded[server.name]["pid"])
        }

    # -- up / down / status --------------------------------------------------------------------

    def up(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start every server that does not run, and wait until all of them answer a real request."""
        with self._locked():
            running = self._running_servers()
            to_start = [server for server in self.servers() if server.name not in running]
            self._check_ports_free(to_start)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            started: list[Server] = []
            try:
                with ThreadPoolExecutor(max_workers=len(self.server_names)) as pool:
                    prepared = {pool.submit(server.prepare): server for server in to_start}
                    # Spawn from this thread (see process.spawn's die_with_parent), each as soon as
                    # it is prepared: Cassandra boots while Kafka's storage is being formatted.
                    for future in as_completed(prepared):
                        server = prepared[future]
                        _result(future, server)
                        self._spawn(server)
                        started.append(server)
                    waits = [
                        pool.submit(self._wait_until_answering, server, timeout) for server in self.servers()
                    ]
                    for wait in waits:
                        wait.result()
            except BaseException:
                self._stop(started)
                raise
            self._write_settings()

    def _write_settings(self) -> None:
        """`<state dir>/settings.json`: connection_settings(), which the platform's local profile
        (CDC_PROFILE=local, resources.connections) reads; written once every server answers."""
        path = self.state_dir / LOCAL_SETTINGS_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.connection_settings(), indent=2) + "\n")
        temporary.replace(path)

    def down(self) -> None:
        """Stop every server of this stack: SIGTERM to its process group, then SIGKILL after a grace."""
        with self._locked():
            self._stop(self.servers())
            (self.state_dir / LOCAL_SETTINGS_FILE).unlink(missing_ok=True)

    def status(self, timeout: float = 5.0) -> list[ServerStatus]:
        recorded = self._read_state().get("servers", {})
        statuses = []
        for server in self.servers():
            pid = recorded.get(server.name, {}).get("pid")
            running = pid is not None and server.owns_process(pid)
            healthy, detail = False, ""
            if running:
                try:
                    detail = server.check(timeout)
                    healthy = True
                except Exception as error:  # noqa: BLE001 - any failure means "not answering"
                    detail = f"{type(error).__name__}: {error}"
            statuses.append(
                ServerStatus(
                    name=server.name,
                    pid=pid,
                    ports=server.ports(),
                    running=running,
                    healthy=healthy,
                    detail=detail,
                    rss_bytes=process.rss_bytes(pid) if running else None,
                )
            )
        return statuses

    # -- internals -----------------------------------------------------------------------------

    def _running_servers(self) -> dict[str, int]:
        """Recorded servers still running; forgets the stale ones. Refuses to move a running one."""
        recorded = self._read_state().get("servers", {})
        running = {}
        for server in self.servers():
            entry = recorded.get(server.name)
            if entry is None:
                continue
            if not server.owns_process(entry["pid"]):
                self._forget(server.name)
                continue
            if entry["ports"] != server.ports():
                raise StackError(
                    f"{server.name} already runs from {self.state_dir} (pid {entry['pid']}) on ports "
                    f"{entry['ports']}, not the requested {server.ports()}: run `down` first"
                )
            running[server.name] = entry["pid"]
        return running

    def _check_ports_free(self, servers: list[Server]) -> None:
        for server in servers:
            for role, port in server.ports().items():
                if not port_is_free(port):
                    variable = _port_variable(server.name, role)
                    raise PortInUseError(
                        f"port {port} ({server.name} {role} port) on {HOST} is already in use by another "
                        f"process: stop that process or choose another port (argument or ${variable})"
                    )

    def _spawn(self, server: Server) -> None:
        child = process.spawn(
            server.command(),
            server.log_path,
            cwd=server.home,
            die_with_parent=self.die_with_parent,
            environment=server.environment(),
        )
        self._children[server.name] = child
        self._record(server, child.pid)

    def _wait_until_answering(self, server: Server, timeout: float) -> None:
        pid = self._read_state()["servers"][server.name]["pid"]
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not process.is_alive(pid):
                raise self._start_error(server, f"its process {pid} exited")
            try:
                server.check(timeout=min(10.0, max(1.0, deadline - time.monotonic())))
                return
            except Exception as error:  # noqa: BLE001 - not ready yet; retried until the deadline
                last_error = error
            time.sleep(0.5)
        raise self._start_error(
            server, f"it did not answer within {timeout:.0f} s (last error: {last_error})"
        )

    def _start_error(self, server: Server, reason: str) -> ServerStartError:
        tail = process.log_tail(server.log_path, 30)
        return ServerStartError(
            f"{server.name} on {HOST}:{server.client_port} failed to start: {reason}.\n"
            f"Last lines of {server.log_path}:\n{tail}"
        )

    def _stop(self, servers: list[Server]) -> None:
        recorded = self._read_state().get("servers", {})

        def stop(server: Server) -> None:
            entry = recorded.get(server.name)
            if entry is not None and server.owns_process(entry["pid"]):
                process.stop_group(entry["pid"], server.stop_grace_seconds)
            child = self._children.pop(server.name, None)
            if child is not None:
                child.wait()
            self._forget(server.name)

        with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
            for future in [pool.submit(stop, server) for server in servers]:
                future.result()

    # -- the state file ------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.state_dir / "stack.json"

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}

    def _write_state(self, state: dict) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2) + "\n")
        temporary.replace(self._state_path)

    def _record(self, server: Server, pid: int) -> None:
        with self._state_guard:
            state = self._read_state()
            state["ports"] = dataclasses.asdict(self.ports)
            state.setdefault("servers", {})[server.name] = {"pid": pid, "ports": server.ports()}
            self._write_state(state)

    def _forget(self, name: str) -> None:
        with self._state_guard:
            state = self._read_state()
            if name in state.get("servers", {}):
                del state["servers"][name]
                self._write_state(state)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "stack.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _result(future, server: Server) -> None:
    try:
        future.result()
    except Exception as error:
        raise ServerStartError(
            f"{server.name}: preparing {server.home} failed: {error}.\n"
            f"Last lines of {server.log_path}:\n{process.log_tail(server.log_path, 30)}"
        ) from error


def _port_variable(server: str, role: str) -> str:
    field = {
        ("kafka", "broker"): "kafka",
        ("kafka", "controller"): "kafka_controller",
        ("cassandra", "native"): "cassandra",
        ("cassandra", "storage"): "cassandra_storage",
        ("s3", "http"): "s3",
        ("hdfs", "namenode"): "hdfs",
        ("hdfs", "http"): "hdfs_http",
        ("spark", "master"): "spark_master",
        ("spark", "master_web"): "spark_master_web",
        ("spark", "worker"): "spark_worker",
        ("spark", "worker_web"): "spark_worker_web",
    }
    return StackPorts.ENV[field[(server, role)]]
