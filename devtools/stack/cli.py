"""`python -m devtools.stack.cli {fetch-jars,up,down,status}` (`make stack-up`, `make stack-down`, `make stack-status`).

The state directory is `$CDC_STACK_DIR` or `<project>/.stack`; ports come from CDC_KAFKA_PORT,
CDC_KAFKA_CONTROLLER_PORT, CDC_CASSANDRA_PORT, CDC_CASSANDRA_STORAGE_PORT (see devtools.stack.stack).

`up` starts Kafka and Cassandra; `up --with s3,hdfs,spark` adds the optional servers (a local S3, a
local HDFS, a Spark standalone cluster). `down` stops every server of the state directory; `status`
shows Kafka, Cassandra and the optional servers that run.
"""

from __future__ import annotations

import argparse
import sys
import time

from devtools.stack.jars import JarFetchError, ensure_jars, pom_profiles
from devtools.stack.stack import (
    ALL_SERVER_NAMES,
    DEFAULT_START_TIMEOUT,
    OPTIONAL_SERVER_NAMES,
    SERVER_NAMES,
    Stack,
    StackError,
)
from resources import LOCAL_SETTINGS_FILE

# Fetched by `fetch-jars` only when named, else when the local S3 server starts: s3a carries the
# ~686 MB AWS SDK bundle.
ON_DEMAND_PROFILES = ("s3a",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdc-stack", description="The local Kafka + Cassandra stack.")
    parser.add_argument("--state-dir", help="state directory (default $CDC_STACK_DIR or <project>/.stack)")
    parser.add_argument(
        "--only",
        choices=ALL_SERVER_NAMES,
        action="append",
        help="act on this server only (repeatable; default: kafka and cassandra)",
    )
    parser.add_argument(
        "--with",
        dest="optional",
        type=_optional_servers,
        default=[],
        help=f"also these optional servers, comma-separated: {','.join(OPTIONAL_SERVER_NAMES)}",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "fetch-jars", help="fetch the jars of every pom.xml profile but s3a (or those named)"
    )
    fetch.add_argument("profiles", nargs="*")
    up = commands.add_parser("up", help="start the servers (reusing running ones) and wait until they answer")
    up.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT, help="seconds to wait per server")
    commands.add_parser("down", help="stop the servers")
    commands.add_parser("status", help="show each server, its pid, ports and health")
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch-jars":
            return _fetch_jars(args.profiles or [p for p in pom_profiles() if p not in ON_DEMAND_PROFILES])
        stack = Stack(args.state_dir, servers=_chosen_servers(args))
        if args.command == "up":
            return _up(stack, args.timeout)
        if args.command == "down":
            stack.down()
            print(f"stopped: {', '.join(stack.server_names)} ({stack.state_dir})")
            return 0
        return _status(stack)
    except (StackError, JarFetchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _optional_servers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(OPTIONAL_SERVER_NAMES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown servers {unknown}; choose from {','.join(OPTIONAL_SERVER_NAMES)}"
        )
    return names


def _chosen_servers(args: argparse.Namespace) -> list[str]:
    """--only if given; else Kafka, Cassandra and --with; `down` and `status` add every running server."""
    if args.only:
        return list(args.only) + list(args.optional)
    chosen = [*SERVER_NAMES, *args.optional]
    if args.command in ("down", "status"):
        chosen += list(Stack(args.state_dir, servers=ALL_SERVER_NAMES).pids())
    return chosen


def _fetch_jars(profiles: list[str]) -> int:
    for profile in profiles:
        started = time.monotonic()
        jars = ensure_jars(profile)
        print(f"{profile}: {len(jars)} jars ({time.monotonic() - started:.1f} s)")
    return 0


def _up(stack: Stack, timeout: float) -> int:
    started = time.monotonic()
    stack.up(timeout=timeout)
    print(f"up in {time.monotonic() - started:.1f} s (state: {stack.state_dir}, logs: {stack.log_dir})")
    for status in stack.status():
        print(status.line())
    print(f"connection settings (CDC_PROFILE=local reads them from {stack.state_dir / LOCAL_SETTINGS_FILE}):")
    for variable, value in stack.connection_settings().items():
        print(f"  export {variable}={value}")
    for server, root in stack.lake_roots().items():
        print(f"  # a lake on the local {server}: export CDC_LAKE_ROOT={root}")
    return 0


def _status(stack: Stack) -> int:
    statuses = stack.status()
    print(f"state: {stack.state_dir}")
    for status in statuses:
        print(status.line())
    return 0 if all(status.healthy for status in statuses) else 3


if __name__ == "__main__":
    sys.exit(main())
