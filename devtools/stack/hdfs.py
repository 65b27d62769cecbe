"""A local HDFS: one NameNode and one DataNode on 127.0.0.1 (Hadoop 3.5, as bundled by pyspark).

Hadoop ships no single-node server main class in its client jars, so a small Java main
(`java/LocalHdfs.java`) runs `MiniDFSCluster` from `hadoop-client-minicluster`: fixed NameNode RPC
and HTTP ports, replication 1, the namespace and blocks kept in `<home>/data` across restarts. It is
compiled with `javac` once into the jar cache (no build tool).

Fault tests stop and restart the DataNode alone, the NameNode staying up: `stop_datanode()` and
`start_datanode()` (through a control file LocalHdfs watches), each returning once the NameNode's JMX
counts the DataNode dead or live again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from devtools.stack.jars import ensure_jars
from devtools.stack.ports import HOST, accepts_connections
from devtools.stack.server import SERVER_JIT_OPTIONS, Server, classpath, java_executable
from resources.spark_session import jar_cache_root

MAIN_CLASS = "LocalHdfs"
MAIN_SOURCE = Path(__file__).parent / "java" / f"{MAIN_CLASS}.java"

_LOG_SETTINGS = [
    # Hadoop logs through slf4j-simple (in the hdfs jar profile); its INFO level logs every block.
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.org.apache.hadoop.hdfs.MiniDFSCluster=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
]


class HdfsServer(Server):
    name = "hdfs"
    stop_grace_seconds = 20.0

    def __init__(self, home: Path, log_path: Path, namenode_port: int, http_port: int):
        super().__init__(home, log_path)
        self.namenode_port = namenode_port
        self.http_port = http_port

    @property
    def uri(self) -> str:
        """The file system URI clients use: `hdfs://127.0.0.1:<NameNode port>`."""
        return f"hdfs://{HOST}:{self.namenode_port}"

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def ports(self) -> dict[str, int]:
        return {"namenode": self.namenode_port, "http": self.http_port}

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        for leftover in (self._control, self._control_failed):
            leftover.unlink(missing_ok=True)  # a command of an earlier process is not for this one
        compiled_main()

    @property
    def _control(self) -> Path:
        return self.home / "data" / "datanode-control"

    @property
    def _control_failed(self) -> Path:
        return self.home / "data" / "datanode-control.failed"

    def live_datanodes(self, timeout: float = 10.0) -> int:
        """The NameNode's count of live DataNodes (JMX FSNamesystemState.NumLiveDataNodes)."""
        state = _get_json(f"{self.web_url}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState", timeout)
        return int(state["beans"][0]["NumLiveDataNodes"])

    def stop_datanode(self, timeout: float = 60.0) -> None:
        """Stop the DataNode, the NameNode staying up; returns once the NameNode counts no live DataNode."""
        self._datanode_command("stop", live=0, timeout=timeout)

    def start_datanode(self, timeout: float = 60.0) -> None:
        """Restart the stopped DataNode (same ports, same blocks); returns once the NameNode counts it live."""
        self._datanode_command("start", live=1, timeout=timeout)

    def _datanode_command(self, command: str, live: int, timeout: float) -> None:
        self._control_failed.unlink(missing_ok=True)
        staged = self._control.with_name(f".{self._control.name}.tmp")
        staged.write_text(command)
        staged.rename(self._control)  # LocalHdfs never reads half a command
        deadline = time.monotonic() + timeout
        while self._control.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the local HDFS at {self.uri} did not take the DataNode command {command!r} within "
                    f"{timeout:.0f}s (is it running? see {self.log_path})"
                )
            time.sleep(0.05)
        if self._control_failed.exists():
            raise RuntimeError(
                f"the local HDFS at {self.uri} could not {command} its DataNode: "
                f"{self._control_failed.read_text().strip()} (see {self.log_path})"
            )
        counted = None
        while time.monotonic() < deadline:
            counted = self.live_datanodes()
            if counted == live:
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"after `{command}` of the DataNode, the NameNode at {self.uri} still counts {counted} live "
            f"DataNode(s), not {live}, after {timeout:.0f}s (see {self.log_path})"
        )

    def command(self) -> list[str]:
        return [
            java_executable(),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+ExitOnOutOfMemoryError",
            *SERVER_JIT_OPTIONS,
            "-Djava.net.preferIPv4Stack=true",
            *_LOG_SETTINGS,
            "-cp",
            classpath([compiled_main(), *ensure_jars("hdfs")]),
            MAIN_CLASS,
            str(self.home / "data"),
            str(self.namenode_port),
            str(self.http_port),
        ]

    def check(self, timeout: float) -> str:
        """The NameNode lists `/` over WebHDFS and counts at least one live DataNode."""
        if not accepts_connections(self.namenode_port):
            raise ConnectionError(f"nothing accepts connections on {self.uri}")
        listing = _get_json(f"{self.web_url}/webhdfs/v1/?op=LISTSTATUS", timeout)
        entries = len(listing["FileStatuses"]["FileStatus"])
        state = _get_json(f"{self.web_url}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState", timeout)
        live = state["beans"][0]["NumLiveDataNodes"]
        if live < 1:
            raise ConnectionError(f"the NameNode at {self.uri} has no live DataNode yet")
        return f"{live} live DataNode, {entries} entries in /"


def _get_json(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def compiled_main() -> Path:
    """The folder holding LocalHdfs.class, compiled on first use for this source and these jars."""
    jars = ensure_jars("hdfs")
    javac = _javac()  # in the key: a class compiled by a newer JDK does not load on an older one
    compiled_from = "\n".join([javac, *(j.name for j in jars)])
    key = hashlib.sha256(MAIN_SOURCE.read_bytes() + compiled_from.encode()).hexdigest()[:16]
    folder = jar_cache_root() / "hdfs-main" / key
    if (folder / f"{MAIN_CLASS}.class").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="compile-", dir=folder.parent))
    result = subprocess.run(
        [javac, "-d", str(staging), "-cp", classpath(jars), str(MAIN_SOURCE)], capture_output=True, text=True
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"javac could not compile {MAIN_SOURCE}:\n{result.stdout}{result.stderr}")
    try:
        staging.rename(folder)
    except OSError:  # another process compiled it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _javac() -> str:
    """The javac of the JDK whose `java` runs the HDFS (java_executable()), so the class runs on it."""
    java = shutil.which(java_executable())
    if java:
        beside = Path(java).resolve().parent / "javac"
        if beside.exists():
            return str(beside)
    found = shutil.which("javac")
    if found is None:
        raise RuntimeError(
            "no `javac` found: the local HDFS needs a JDK 17 (Debian package openjdk-17-jdk-headless)"
        )
    return found
