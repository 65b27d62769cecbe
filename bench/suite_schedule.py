"""How long `make test` would take on its two workers in each order the test files can be handed out,
from the test times of a suite that ran (pytest's JUnit XML). Prints figures; not a test.

    .venv/bin/python bench/suite_schedule.py --junit /tmp/suite.xml [--collection-order FILE] [--workers 2]

`make test` runs `pytest -n 2 --dist loadfile`: each file goes whole to one worker, and a worker is
handed the next file of the queue when its own pending tests are down to two (pytest-xdist's
LoadScopeScheduling). The order of that queue decides how the suite ends: a long file handed out
last runs alone while the other worker has nothing left. This replays the queue for:

- `xdist_default`: pytest-xdist's own order, the files with the most tests first (ties in collection
  order), which leaves the single-test whole-flow files, the longest ones, for the end;
- `collection`: the order pytest collects the files (`--no-loadscope-reorder`, what `make test` uses):
  tests/integration, tests/merge, then the many short unit files;
- `longest_first`: by the files' measured seconds, longest first (which needs those seconds kept up to date).

Each file's tests take what they took in the measured run (their setup included), whatever else runs
beside them. With --collection-order (what `pytest --collect-only -q` prints, saved to a file)
the collection order is pytest's; without it, the JUnit file's. The last line is one JSON object:
per order the simulated makespan and how long the first worker to finish waits for the last
(`*_seconds`, `*_idle_seconds`), and half of the test time, the floor no order can beat.
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def seconds_by_test_file(junit_xml: Path) -> dict[str, list[float]]:
    """Each test file (`tests/unit/test_x.py`) -> its tests' seconds, in the order the file lists them."""
    files: dict[str, list[float]] = {}
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        module = max(i for i, part in enumerate(parts) if part.startswith("test_"))
        files.setdefault("/".join(parts[: module + 1]) + ".py", []).append(float(case.get("time", 0)))
    return files


def collected_files(collect_only_output: str) -> list[str]:
    """The test files of `pytest --collect-only -q`'s test ids (`tests/x.py::test_y`), in first-seen order."""
    ids = [line.strip() for line in collect_only_output.splitlines() if "::" in line]
    return list(dict.fromkeys(test_id.split("::")[0] for test_id in ids))


def makespan(order: list[str], seconds: dict[str, list[float]], workers: int = 2) -> list[float]:
    """When each worker finishes, handing out whole files in `order` the way LoadScopeScheduling does."""
    queue = list(order)
    clock = [0.0] * workers
    pending: list[list[float]] = [[] for _ in range(workers)]
    for worker in range(workers):
        if queue:
            pending[worker].extend(seconds[queue.pop(0)])
    while any(pending):
        worker = min((w for w in range(workers) if pending[w]), key=lambda w: clock[w] + pending[w][0])
        clock[worker] += pending[worker].pop(0)
        if queue and len(pending[worker]) <= 2:
            pending[worker].extend(seconds[queue.pop(0)])
    return clock


def orders(seconds: dict[str, list[float]], collected: list[str]) -> dict[str, list[str]]:
    return {
        "xdist_default": sorted(collected, key=lambda f: -len(seconds[f])),
        "collection": collected,
        "longest_first": sorted(collected, key=lambda f: -sum(seconds[f])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--junit", type=Path, required=True)
    parser.add_argument("--collection-order", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    seconds = seconds_by_test_file(args.junit)
    listed = collected_files(args.collection_order.read_text()) if args.collection_order else []
    collected = [f for f in listed if f in seconds] + [f for f in seconds if f not in listed]
    total = sum(sum(times) for times in seconds.values())
    figures: dict[str, float | int] = {"files": len(seconds), "test_seconds": round(total, 1)}
    for name, order in orders(seconds, collected).items():
        ends = makespan(order, seconds, args.workers)
        figures[f"{name}_seconds"] = round(max(ends), 1)
        figures[f"{name}_idle_seconds"] = round(max(ends) - min(ends), 1)
        print(f"{name:14s} {max(ends):8.1f} s, the workers ending {max(ends) - min(ends):6.1f} s apart")
    figures["floor_seconds"] = round(total / args.workers, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
