"""The local stack's lifecycle: idempotent `up`, clean `down`, clear errors.

These tests run their own Kafka-only stacks (Kafka boots in a few seconds) in their own state
directories on free ports; the shared session stack is only asked for its status.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from devtools.stack import process
from devtools.stack.ports import port_is_free
from devtools.stack.stack import PortInUseError, ServerStartError, Stack, StackPorts

pytestmark = pytest.mark.integration


def _kafka_stack(state_dir: Path) -> Stack:
    return Stack(state_dir, StackPorts.free(), servers=["kafka"], die_with_parent=True)


def _processes_mentioning(text: str) -> list[int]:
    return [
        pid
        for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
        if process.is_alive(pid) and text in process.command_line(pid)
    ]


@pytest.fixture
def kafka_stack(tmp_path):
    stack = _kafka_stack(tmp_path / "state")
    yield stack
    stack.down()


def test_session_stack_servers_answer(stack):
    statuses = {status.name: status for status in stack.status()}

    assert set(statuses) == {"kafka", "cassandra"}
    assert all(status.healthy for status in statuses.values()), [s.line() for s in statuses.values()]
    assert statuses["cassandra"].detail.startswith("Cassandra 5.0")


def test_up_twice_keeps_the_running_servers(kafka_stack):
    kafka_stack.up()
    first_pids = kafka_stack.pids()
    kafka_stack.up()

    assert kafka_stack.pids() == first_pids
    assert list(first_pids) == ["kafka"]
    assert [status.healthy for status in kafka_stack.status()] == [True]


def test_down_leaves_no_process_behind_and_frees_the_ports(kafka_stack):
    kafka_stack.up()
    pid = kafka_stack.pids()["kafka"]

    kafka_stack.down()

    assert not process.is_alive(pid)
    assert _processes_mentioning(str(kafka_stack.state_dir)) == []
    assert all(port_is_free(port) for port in kafka_stack.server("kafka").ports().values())
    assert kafka_stack.pids() == {}


def test_stale_pid_file_is_cleaned_and_the_server_started(kafka_stack):
    finished = subprocess.Popen(["true"])
    finished.wait()
    state = {"ports": {}, "servers": {"kafka": {"pid": finished.pid, "ports": {}}}}
    kafka_stack.state_dir.mkdir(parents=True)
    (kafka_stack.state_dir / "stack.json").write_text(json.dumps(state))

    kafka_stack.up()

    assert kafka_stack.pids()["kafka"] != finished.pid
    assert [status.healthy for status in kafka_stack.status()] == [True]


def test_taken_port_is_reported_before_anything_starts(tmp_path):
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        taken = occupant.getsockname()[1]
        free = StackPorts.free()
        stack = Stack(
            tmp_path / "state",
            StackPorts(taken, free.kafka_controller, free.cassandra, free.cassandra_storage),
        )

        with pytest.raises(PortInUseError) as error:
            stack.up()

    assert f"port {taken} (kafka broker port)" in str(error.value)
    assert stack.pids() == {}
    assert not stack.log_dir.exists()


def test_server_that_exits_at_start_is_reported_with_port_and_log_tail(kafka_stack):
    kafka = kafka_stack.server("kafka")
    kafka.prepare()  # formats the storage as node 1 ...
    meta = kafka.data_dir / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=2"))  # ... which now claims node 2

    with pytest.raises(ServerStartError) as error:
        kafka_stack.up(timeout=60)

    message = str(error.value)
    last_log_line = kafka.log_path.read_text().splitlines()[-1]
    assert f"kafka on 127.0.0.1:{kafka.port} failed to start: its process" in message
    assert last_log_line in message
    assert kafka_stack.pids() == {}
    assert _processes_mentioning(str(kafka_stack.state_dir)) == []
