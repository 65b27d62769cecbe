"""The local stack: real Kafka and Cassandra servers on 127.0.0.1, from jars fetched off Maven Central.

`Stack` (devtools.stack.stack) starts, reuses, checks and stops them; `cli` is its command line.
"""

from devtools.stack.server import StackAuth
from devtools.stack.stack import (
    PortInUseError,
    ServerStartError,
    Stack,
    StackError,
    StackPorts,
)

__all__ = ["PortInUseError", "ServerStartError", "Stack", "StackAuth", "StackError", "StackPorts"]
