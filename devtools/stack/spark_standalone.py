"""A local Spark standalone cluster: one master and one worker on 127.0.0.1, from pyspark's own jars.

Both daemons run through pyspark's `bin/spark-class` (the launcher Spark's own scripts use). A
small supervisor (`python -m devtools.stack.spark_standalone`, the process the stack records)
starts the master, waits until it listens, then starts the worker, so the worker registers at once
instead of after its first retry (~10 s). It stops both when it gets SIGTERM, and exits when either
daemon dies, so the stack sees one process per cluster.

Applications connect with master `spark://127.0.0.1:<master port>`; their executors are JVMs the
worker launches, so they get the application's jars through `spark.jars` (see
resources.spark_session).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devtools.stack.ports import HOST, accepts_connections
from devtools.stack.server import SERVER_JIT_OPTIONS, Server, java_executable

# found without importing pyspark (slow), so `make stack-status` stays quick
PYSPARK_HOME = Path(importlib.util.find_spec("pyspark").submodule_search_locations[0]).resolve()
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

# The 2-core machine is shared with Kafka, Cassandra and the tests: small daemons, one small worker.
DAEMON_MEMORY = "256m"
WORKER_CORES = 2
WORKER_MEMORY = "1536m"


class SparkStandaloneServer(Server):
    name = "spark"
    stop_grace_seconds = 20.0

    def __init__(
        self,
        home: Path,
        log_path: Path,
        master_port: int,
        master_web_port: int,
        worker_port: int,
        worker_web_port: int,
    ):
        super().__init__(home, log_path)
        self.master_port = master_port
        self.master_web_port = master_web_port
        self.worker_port = worker_port
        self.worker_web_port = worker_web_port

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_web_url(self) -> str:
        return f"http://{HOST}:{self.master_web_port}"

    def ports(self) -> dict[str, int]:
        return {
            "master": self.master_port,
            "master_web": self.master_web_port,
            "worker": self.worker_port,
            "worker_web": self.worker_web_port,
        }

    def prepare(self) -> None:
        (self.home / "work").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "devtools.stack.spark_standalone",
            "--home",
            str(self.home),
            *(f"--{role.replace('_', '-')}-port={port}" for role, port in self.ports().items()),
        ]

    def check(self, timeout: float) -> str:
        """The master answers its JSON status page as ALIVE with at least one ALIVE worker."""
        if not accepts_connections(self.master_port):
            raise ConnectionError(f"nothing accepts connections on {self.master_url}")
        state = self.master_state(timeout)
        workers = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
        if state.get("status") != "ALIVE" or not workers:
            raise ConnectionError(
                f"master {self.master_url} is {state.get('status')} with {len(workers)} alive workers"
            )
        cores = sum(w["cores"] for w in workers)
        return f"master ALIVE, {len(workers)} worker ({cores} cores, {workers[0]['memory']} MiB)"

    def master_state(self, timeout: float = 10.0) -> dict:
        """The master's status page: workers, running and completed applications."""
        with urllib.request.urlopen(f"{self.master_web_url}/json/", timeout=timeout) as response:
            return json.loads(response.read())


# -- the supervisor ----------------------------------------------------------------------------------


def _daemon_environment(home: Path) -> dict[str, str]:
    java = Path(shutil.which(java_executable()) or java_executable()).resolve()
    return {
        **os.environ,
        "SPARK_HOME": str(PYSPARK_HOME),
        "JAVA_HOME": str(java.parent.parent),
        # binds the RPC and web UI ports to 127.0.0.1 only
        "SPARK_LOCAL_IP": HOST,
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        # the master and the worker (not the executors they start, which run the tasks)
        "SPARK_DAEMON_JAVA_OPTS": " ".join(SERVER_JIT_OPTIONS),
        # no REST submission server (it would take the fixed port 6066)
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        "SPARK_LOG_DIR": str(home / "logs"),
        "SPARK_WORKER_DIR": str(home / "work"),
    }


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(arguments: list[str], environment: dict[str, str], cwd: Path) -> subprocess.Popen:
    command = [str(PYSPARK_HOME / "bin" / "spark-class"), *arguments]
    print(f"==== starting {' '.join(command)}", flush=True)
    return subprocess.Popen(command, env=environment, cwd=cwd, preexec_fn=_die_with_parent)


def supervise(
    home: Path, master_port: int, master_web_port: int, worker_port: int, worker_web_port: int
) -> int:
    environment = _daemon_environment(home)
    master_url = f"spark://{HOST}:{master_port}"
    children: list[subprocess.Popen] = []

    def stop_children() -> None:
        for child in reversed(children):  # the worker first: it kills its executors
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()

    def stop(*_signal) -> None:
        stop_children()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children.append(
        _start(
            [MASTER_CLASS, "--host", HOST, "--port", str(master_port), "--webui-port", str(master_web_port)],
            environment,
            home,
        )
    )
    while not accepts_connections(master_port):
        if children[0].poll() is not None:
            print(f"the master exited with {children[0].returncode} before listening", flush=True)
            return 1
        time.sleep(0.2)
    children.append(
        _start(
            [
                WORKER_CLASS,
                "--host",
                HOST,
                "--port",
                str(worker_port),
                "--webui-port",
                str(worker_web_port),
                "--cores",
                str(WORKER_CORES),
                "--memory",
                WORKER_MEMORY,
                "--work-dir",
                str(home / "work"),
                master_url,
            ],
            environment,
            home,
        )
    )
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    dead = next(child for child in children if child.poll() is not None)
    print(f"{dead.args[1]} exited with {dead.returncode}: stopping the cluster", flush=True)
    stop_children()
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a Spark master and one worker until SIGTERM.")
    parser.add_argument("--home", type=Path, required=True)
    for role in ("master", "master-web", "worker", "worker-web"):
        parser.add_argument(f"--{role}-port", type=int, required=True)
    args = parser.parse_args(argv)
    return supervise(
        args.home, args.master_port, args.master_web_port, args.worker_port, args.worker_web_port
    )


if __name__ == "__main__":
    sys.exit(main())
