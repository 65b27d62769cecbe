"""What the stack needs to know about one server: its files, its ports, how to start and ask it."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from devtools.stack import process


@dataclass(frozen=True)
class StackAuth:
    """A user a server of the stack requires (off unless given): Kafka SASL/PLAIN, Cassandra's
    PasswordAuthenticator. The password is never written under the state directory nor shown in a repr."""

    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for label, value in (("user", self.user), ("password", self.password)):
            if not value or any(char in value for char in "\"'\\\n"):
                raise ValueError(
                    f"StackAuth {label}: must be non-empty, without quotes, backslashes or newlines"
                )


class Server(ABC):
    """One local server living in `home` (a folder of the stack's state dir), logging to `log_path`."""

    name: str
    stop_grace_seconds: float = 30.0

    def __init__(self, home: Path, log_path: Path):
        self.home = home
        self.log_path = log_path

    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Every port the server listens on, by role (the first one is the one clients use)."""

    @abstractmethod
    def prepare(self) -> None:
        """Write the configuration and initialise storage (idempotent; may run a JVM)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def check(self, timeout: float) -> str:
        """Make a real request to the server; return a short description or raise."""

    def environment(self) -> dict[str, str]:
        """Variables the server's process needs beyond ours (e.g. a secret kept out of its files)."""
        return {}

    @property
    def client_port(self) -> int:
        return next(iter(self.ports().values()))

    def owns_process(self, pid: int) -> bool:
        """True when pid is this server (its command line names our home folder), not a reused pid."""
        return process.is_alive(pid) and str(self.home) in process.command_line(pid)


# The local servers' JVMs run the JIT's first tier only (C1). Each serves one developer's or one test
# session's light load, where C2's compilations cost more CPU than its faster code saves: Cassandra 5
# and Kafka booting, then 15 keyspaces and topics made, written, read and dropped, took 18.4-20.7 s
# and 4.5-5.1 s of CPU with C1 only against 28.0-34.8 s and 6.5-8.4 s with both tiers
# (docs/performance-history.md). The Spark driver and executors keep both tiers: their code runs hot.
SERVER_JIT_OPTIONS = ["-XX:TieredStopAtLevel=1"]


def java_executable() -> str:
    """`$CDC_JAVA`, else `$JAVA_HOME/bin/java`, else `java` on PATH (Cassandra 5 needs Java 11 or 17)."""
    if os.environ.get("CDC_JAVA"):
        return os.environ["CDC_JAVA"]
    if os.environ.get("JAVA_HOME"):
        return str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("no `java` on PATH: install a JDK 17 (Debian package openjdk-17-jre-headless)")
    return java


def classpath(entries: list[Path]) -> str:
    return os.pathsep.join(str(entry) for entry in entries)
