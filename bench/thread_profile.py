"""Where a run's step threads spend their time, sampled with py-spy (a benchmark tool, not a test).

A run's steps execute in the threads of orchestration.threaded_executor (`dagster-step_N`), and
almost all of their time is spent waiting for Spark's JVM through py4j, so a profiler of the main
thread sees next to nothing. `sampled(prefix)` runs `py-spy record` over this process (every thread,
idle ones too, without pausing it) around a block, writes py-spy's raw stacks to `<prefix>.raw` (its
own messages to `<prefix>.log`) and a summary to `<prefix>.txt`: the step threads' seconds in all,
how many of them were spent inside a py4j call (waiting for the JVM), in Python or waiting on a lock
or a queue, and the same split for the project's innermost function on the stack
(transforms/gold/engine.py `_merge_keys`, ...).

py-spy is not a dependency: `uv tool install py-spy` (or pip), and attaching to a process needs
ptrace permission (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SAMPLES_PER_SECOND = 40
STEP_THREAD = "dagster-step"
PROJECT_FOLDERS = ("assets/", "transforms/", "expectations/", "orchestration/", "resources/")
# The executor's own frames are on every step's stack; the innermost project frame below them says more.
SKIPPED_PROJECT_FRAMES = ("orchestration/threaded_executor.py",)
# The standard library's waits (a lock, a condition, a queue, a future, a selector); py-spy shows the
# innermost Python frame, so a wait in C shows as the frame of these modules that called it.
WAITING_FILES = ("(threading.py:", "(queue.py:", "(concurrent/futures/", "(selectors.py:")


@dataclass(frozen=True)
class ThreadProfile:
    seconds: float  # step-thread seconds sampled
    by_kind: dict[str, float]  # jvm | python | waiting -> seconds
    by_function: list[tuple[float, str, str]]  # (seconds, kind, innermost project function), largest first

    def text(self, limit: int = 30) -> str:
        kinds = ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in sorted(self.by_kind.items()))
        lines = [f"step threads: {self.seconds:.1f} s sampled ({kinds})"]
        lines += [f"{s:7.1f} s  {kind:7s} {where}" for s, kind, where in self.by_function[:limit]]
        return "\n".join(lines)


def kind_of(frames: list[str]) -> str:
    """`jvm` when the thread is inside a py4j call, `waiting` when its innermost frame is one of the
    standard library's waits (WAITING_FILES), else `python`."""
    if any("(py4j/" in frame for frame in frames):
        return "jvm"
    if frames and any(file in frames[-1] for file in WAITING_FILES):
        return "waiting"
    return "python"


def innermost_project_function(frames: list[str]) -> str:
    """`function (folder/file.py)` of the innermost frame of the project's own code, line numbers
    dropped so that a function's samples add up; `other` when no project frame is on the stack."""
    for frame in reversed(frames):
        if any(f"({folder}" in frame for folder in PROJECT_FOLDERS) and not any(
            skipped in frame for skipped in SKIPPED_PROJECT_FRAMES
        ):
            return re.sub(r":\d+\)$", ")", frame)
    return "other"


def summarize(raw: str, samples_per_second: int = SAMPLES_PER_SECOND) -> ThreadProfile:
    """Summarise py-spy's raw output (`thread (id): name;frame;frame... count` per line, `--threads`)
    for the step threads."""
    by_kind: Counter[str] = Counter()
    by_function: Counter[tuple[str, str]] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        thread, *frames = stack.split(";")
        if STEP_THREAD not in thread or not count.isdigit():
            continue
        kind = kind_of(frames)
        by_kind[kind] += int(count)
        by_function[(kind, innermost_project_function(frames))] += int(count)
    return ThreadProfile(
        seconds=sum(by_kind.values()) / samples_per_second,
        by_kind={kind: n / samples_per_second for kind, n in by_kind.items()},
        by_function=[(n / samples_per_second, kind, where) for (kind, where), n in by_function.most_common()],
    )


def py_spy() -> str:
    """py-spy's path, or SystemExit saying how to install it."""
    found = shutil.which("py-spy") or shutil.which(str(Path.home() / ".local" / "bin" / "py-spy"))
    if found is None:
        raise SystemExit("--profile needs py-spy on PATH: `uv tool install py-spy` (or pip install py-spy)")
    return found


@contextmanager
def sampled(prefix: Path) -> Iterator[None]:
    """Sample every thread of this process while the block runs; write `<prefix>.raw` and
    `<prefix>.txt`."""
    raw, log = Path(f"{prefix}.raw"), Path(f"{prefix}.log")
    with open(log, "w") as log_file:
        recorder = subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(os.getpid()),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--threads",
                "--idle",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=log_file,
            stderr=log_file,
        )
    time.sleep(1)  # py-spy attaches
    if recorder.poll() is not None:
        raise SystemExit(f"py-spy could not sample this process: {log.read_text().strip()}")
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        recorder.wait(timeout=60)
    profile = summarize(raw.read_text())
    Path(f"{prefix}.txt").write_text(profile.text(limit=60) + "\n")
    print(profile.text(), file=sys.stderr)
