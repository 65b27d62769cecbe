"""TCP ports on 127.0.0.1: is one free, pick free ones, does one accept connections."""

from __future__ import annotations

import random
import socket

HOST = "127.0.0.1"

# Free ports are picked below Linux's ephemeral range (32768-60999), so that the outgoing
# connections of other programs do not take a port between the moment we pick it and the moment
# a server binds it.
_PICK_RANGE = range(20000, 32000)


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on host:port now.

    SO_REUSEADDR is set as the JVM sets it, so a port held only by connections in TIME_WAIT counts
    as free; a port that something listens on (also on 0.0.0.0) does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that are free now."""
    candidates = random.sample(_PICK_RANGE, k=min(len(_PICK_RANGE), count * 20))
    chosen = [port for port in candidates if port_is_free(port, host)][:count]
    if len(chosen) < count:
        raise RuntimeError(f"found only {len(chosen)} free ports of {count} in {_PICK_RANGE}")
    return chosen


def accepts_connections(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
