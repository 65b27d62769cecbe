"""The Dagster definitions, as the shipped specs make them, match a checked-in snapshot: every asset with
its upstream assets, group, pools and partitioning, every asset check, job, schedule and sensor. A spec,
SQL or suite change that drops, adds or rewires one fails here in seconds, without servers, with the
difference shown. After an intended change, write the new snapshot and review its diff:

    CDC_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest -q tests/unit/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "fixtures" / "definitions_snapshot.json"


def describe_definitions(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "upstream": sorted(parent.to_user_string() for parent in node.parent_keys),
            "group": node.group_name,
            "pools": sorted(node.pools or []),
            "partitioned": node.is_partitioned,
            "checks": sorted(check.name for check in node.check_keys),
        }
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": {s.name: {"cron": s.cron_schedule, "job": s.job_name} for s in defs.schedules or []},
        "sensors": {s.name: {"jobs": sorted(j.name for j in s.jobs)} for s in defs.sensors or []},
    }


# What a deployment must name (resources.connections.REQUIRED_SETTINGS); nothing connects at load time.
SERVERS = {"CDC_KAFKA_BOOTSTRAP": "kafka:9092", "CDC_CASSANDRA_HOSTS": "cassandra", "CDC_LAKE_ROOT": "/lake"}


def load_definitions(settings: dict[str, str], script: str) -> subprocess.CompletedProcess:
    """`script` run after `from orchestration.definitions import defs`, in a process of its own whose
    CDC_* settings are only `settings` (not the shell's: another specs folder, another schedule)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDC_")} | settings
    return subprocess.run(
        [sys.executable, "-c", f"from orchestration.definitions import defs; {script}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_loading_the_definitions_without_the_servers_named_fails_naming_the_variables():
    loaded = load_definitions({}, "print('loaded')")

    assert loaded.returncode != 0 and "loaded" not in loaded.stdout
    assert "MissingSettingError: not set: CDC_KAFKA_BOOTSTRAP" in loaded.stderr
    assert all(name in loaded.stderr for name in SERVERS)


def test_the_definitions_match_the_checked_in_snapshot():
    loaded = load_definitions(
        SERVERS,
        "import json, sys; from tests.unit.test_definitions_snapshot import describe_definitions; "
        "sys.stdout.write(json.dumps(describe_definitions(defs), indent=2, sort_keys=True))",
    )
    assert loaded.returncode == 0, f"loading the definitions failed:\n{loaded.stderr[-3000:]}"
    current = loaded.stdout + "\n"
    if os.environ.get("CDC_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(current)
    expected = SNAPSHOT.read_text()
    difference = "".join(
        difflib.unified_diff(
            expected.splitlines(True), current.splitlines(True), "snapshot", "definitions now"
        )
    )
    assert current == expected, (
        f"the definitions changed (CDC_UPDATE_SNAPSHOT=1 rewrites the snapshot):\n{difference}"
    )
