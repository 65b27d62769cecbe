"""Spark's event log of a run, summed per Dagster step: how many SQL queries each step started and how
long they ran (benchmarks only; not a test).

Each step labels the Spark jobs of its thread with its step key and run (`<step key> (run <id8>)`,
resources.connections.label_spark_jobs_with_the_current_step); Delta prefixes the queries it starts
itself with `Delta: `. A query is one SQL execution: a root one is what the step asked for (a collect,
a write, a MERGE), a nested one runs inside it (Delta's MERGE starts several); seconds are the root
queries' own, from start to end, so they overlap nothing of the same step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_LABEL = re.compile(r"^(?:Delta: )*(?P<step>\S+) \(run (?P<run>\w+)\)")
_START = "SparkListenerSQLExecutionStart"
_END = "SparkListenerSQLExecutionEnd"


def event_log_conf(folder: Path) -> dict[str, str]:
    """Spark settings that write the session's event log, uncompressed and in one file, into `folder`."""
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.resolve().as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }


@dataclass
class StepQueries:
    queries: int = 0  # root SQL executions
    nested: int = 0  # SQL executions inside them
    seconds: float = 0.0  # the root executions' time, start to end


def read_events(folder: Path) -> Iterator[dict]:
    """The SQL execution events of every event log in `folder` (other events are not parsed)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if _START in line[:120] or _END in line[:120]:
                    yield json.loads(line)


def queries_by_step(events: Iterable[dict], run_id: str) -> dict[str, StepQueries]:
    """Each step of run `run_id`: its SQL queries and their seconds."""
    started: dict[int, tuple[str, int, bool]] = {}  # execution id -> (step, start ms, root)
    steps: dict[str, StepQueries] = {}
    for event in events:
        execution = event["executionId"]
        if event["Event"].endswith(_START):
            label = _LABEL.match(event.get("description") or "")
            if label is None or not run_id.startswith(label["run"]):
                continue
            root = event.get("rootExecutionId", execution) == execution
            started[execution] = (label["step"], event["time"], root)
            step = steps.setdefault(label["step"], StepQueries())
            if root:
                step.queries += 1
            else:
                step.nested += 1
        elif event["Event"].endswith(_END) and execution in started:
            name, start, root = started.pop(execution)
            if root:
                steps[name].seconds += (event["time"] - start) / 1000
    return steps
