"""Runs the `microbatch` job (every asset, see run_every_asset) in this process and SIGKILLs the whole run at a chosen point.

    python -m tests.integration.microbatch_kill_runner <topic prefix> <point> <target>

Configured from the environment as a deployment is (resources_from_env; DAGSTER_HOME for the instance
that keeps the runs and the cuts). Used by test_faults_kill.py, which starts it with
start_new_session=True: the kill is `killpg(SIGKILL)` of this process group, the Python process AND
its Spark JVM at once, as when a container or host dies. (A SIGKILL of the Python process alone would
leave the JVM finishing its current Delta operation until it sees its stdin close.) Only this process
is patched; the production code runs unchanged up to the kill.

Points (target in brackets):
- `during_write` [lake-relative table path, e.g. `silver/s_lst_of_val`, `gold/customer`]: while a
  Delta MERGE (DeltaMergeBuilder.execute) or a DataFrameWriter.save runs, a thread watches the table's
  folder and kills the run as soon as a new data file (parquet or deletion vector) appears there:
  data files written, the commit not made. Silver's and gold's MERGEs of a few keys go through Spark
  in this process (transforms.delta_rs.SMALL_MERGE_CELLS = 0): delta-rs commits within a millisecond
  or two of writing its files (measured: a watcher polling every 2 ms saw the files before the commit
  in 1 of 10 MERGEs), so no watcher can kill it in between. Its commit is as atomic as Spark's (one
  commit file, written only if absent) and carries the stage's progress the same way.
- `during_projection_write` [projection name]: the projection's upserts are sent in two halves; the
  first half is written (Cassandra acknowledged it), then the run is killed before the second half
  is sent, so the offsets table holds the begun batch and no commit.

Exit codes besides -9 (killed): 3 the point was never reached; 4 the watched write finished (committed)
before the watcher saw a data file; 5 not a process group leader (refuses to kill a group it does not
own).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.002


def kill_the_run() -> None:
    if os.getpgid(0) != os.getpid():
        os._exit(5)
    os.killpg(0, signal.SIGKILL)


def data_files(folder: Path) -> set[str]:
    """Data files of a Delta table folder (any depth: column mapping writes into prefix folders), not
    its log (`_delta_log`), the change log (`_changes`) or checksum files."""
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found.update(
            os.path.join(root, f)
            for f in files
            if not f.startswith(("_", ".")) and f.endswith((".parquet", ".bin"))
        )
    return found


class WriteWatcher:
    """While armed, kills the run when a data file appears in `folder` that was not there at arming."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._stop = threading.Event()

    def __enter__(self) -> WriteWatcher:
        before = data_files(self.folder)

        def watch() -> None:
            while not self._stop.is_set():
                if data_files(self.folder) - before:
                    kill_the_run()
                time.sleep(POLL_SECONDS)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def patch_during_write(table_path: str, folder: Path) -> None:
    from delta.tables import DeltaMergeBuilder
    from pyspark.sql.readwriter import DataFrameWriter

    from transforms import delta_rs

    original_execute, original_save = DeltaMergeBuilder.execute, DataFrameWriter.save

    # Armed around every MERGE and save: only the target's folder is watched, so a write to another
    # table (also one running at once in another step's thread) never adds a file there.
    def execute(self, *args, **kwargs):
        commits = _commits(folder)
        with WriteWatcher(folder):
            result = original_execute(self, *args, **kwargs)
        if _commits(folder) != commits:  # the MERGE was the target's, and it committed unseen
            os._exit(4)
        return result

    def save(self, path=None, *args, **kwargs):
        if path is None or path.rstrip("/") != table_path:
            return original_save(self, path, *args, **kwargs)
        with WriteWatcher(folder):
            original_save(self, path, *args, **kwargs)
        os._exit(4)

    DeltaMergeBuilder.execute = execute
    DataFrameWriter.save = save
    delta_rs.SMALL_MERGE_CELLS = 0  # see `during_write` in the module docstring


def _commits(folder: Path) -> set[str]:
    log = folder / "_delta_log"
    return {p.name for p in log.glob("*.json")} if log.exists() else set()


def patch_during_projection_write(projection: str) -> None:
    from transforms.projections.writer import ProjectionWriter

    original = ProjectionWriter._execute

    def _execute(self, statement, parameters, what):
        if self.spec.projection != projection or what != "upserts" or len(parameters) < 2:
            return original(self, statement, parameters, what)
        half = len(parameters) // 2
        original(self, statement, parameters[:half], what)  # returns when Cassandra acknowledged them
        kill_the_run()

    ProjectionWriter._execute = _execute


def run_every_asset(prefix: str, resources: dict, instance):
    """One run of the `microbatch` job on the topics `<prefix>.<TABLE>`: every asset, no check (the
    checks write no table, and they cost about a third of a run; a selection as orchestration.loop
    makes them), with the job's own executor, steps at once in threads, as every deployed run."""
    from orchestration.automation import BATCH_TAG
    from orchestration.definitions import build_definitions
    from orchestration.threaded_executor import execute_in_this_process
    from tests.pipeline import specs_on_topics

    definitions = build_definitions(specs_on_topics(prefix), resources)
    job = definitions.resolve_job_def("microbatch").get_subset(
        asset_selection=definitions.resolve_asset_graph().materializable_asset_keys,
        asset_check_selection=set(),
    )
    return execute_in_this_process(job, instance, tags={BATCH_TAG: "kill-test"}, run_config={})


def main(prefix: str, point: str, target: str) -> None:
    import dagster as dg

    from resources.connections import resources_from_env

    resources = resources_from_env()
    lake = resources["lake"]
    if point == "during_write":
        layer, name = target.split("/")
        table_path = lake.table_path(layer, name)  # a local lake: the path is the folder
        patch_during_write(table_path, Path(table_path))
    elif point == "during_projection_write":
        patch_during_projection_write(target)
    else:
        raise SystemExit(f"unknown point {point!r}")
    with dg.DagsterInstance.get() as instance:
        result = run_every_asset(prefix, resources, instance)
    print(f"the run ended ({'succeeded' if result.success else 'failed'}) without reaching {point} {target}")
    sys.exit(3)


if __name__ == "__main__":
    main(*sys.argv[1:4])
