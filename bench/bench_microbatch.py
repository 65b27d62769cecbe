"""Benchmark of one `microbatch` run through Dagster, the real job (bronze -> silver -> cut -> gold ->
checks -> Cassandra projections), on the local stack (prints figures; not a test).

    .venv/bin/python bench/bench_microbatch.py                 # the shipped CRM specs (8 tables)
    .venv/bin/python bench/bench_microbatch.py --changes 300   # a smaller change stream
    .venv/bin/python bench/bench_microbatch.py --tables 128 --changes 400 --clone-changes 100
    .venv/bin/python bench/bench_microbatch.py --rounds 4      # three more change runs after the first

`--tables N` (N > 8): the 8 shipped specs plus N - 8 clones of them (SIEBEL.S_CONTACT_C001, topic
crm.S_CONTACT_C001, ...) in a temporary folder given as CDC_SPECS_DIR. A clone receives its base table's
initial load and the first `--clone-changes` change messages of its base table, renamed. The gold
entities, projections and suites stay those of the shipped tables; a clone has bronze and silver.

1. Starts a private stack (Kafka, Cassandra) on free ports, or uses `--stack-dir`'s (its CRM topics
   are deleted first, so an earlier run's messages do not count).
2. Generates the CRM workload (an initial load, then `--changes` change transactions, GoldenGate JSON),
   produces the initial load and runs `microbatch` once: that run warms the Spark session, as in a
   long-running deployment, and is not counted.
3. Produces the change stream and times ONE run (`seconds`), then a run with nothing new
   (`seconds_nothing_new`: what a table with no new records costs, per table). Both run as loop mode
   does (the low-latency way): only what has work (orchestration.pending), the detection included.
   Then a run of every asset with nothing new, as the schedule runs it (`seconds_nothing_new_every_asset`).
4. With `--rounds N` (N > 1), N - 1 more change runs follow, each on the next `--changes` transactions
   of the same workload (generated N times as long, so the first round holds the same transactions
   as with one round but for the few the generator adds at its end): `seconds_rounds` lists every
   round's seconds and `seconds_later_rounds_median` is the median of rounds 2..N. The JVM keeps
   compiling Spark's and Delta's code over the first changed runs (`jstat -compiler`: 45 s of JIT
   compiler time in the first, 22 s in the second, 11-13 s by the fifth), so later rounds show what a
   loop that has run a while costs, and several rounds say how much a figure varies.

Per-step seconds come from the run's own event log (step start to step end), summed per layer, so
the figures say where the time goes (steps run at once, `--max-concurrent`, so the layers' sums add up
to more than the run's seconds). From the same log, per changed run: `projections_written_seconds`,
from the run's first step until its last projection step ended (what a run adds to freshness), and
`idle_thread_seconds`, the step threads' time that no step used between the first step's start and
the last one's end (what a better order of the steps could give back at most, spread over the
threads). With `--event-log DIR`, Spark's event log of the session goes to DIR and the changed run's
root Spark SQL queries and their seconds are added per layer (`spark_queries_by_layer`,
`spark_query_seconds_by_layer`): each step labels its Spark jobs with its step key. The last line is
one JSON object; each target stands beside its figure (`*_target`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

TARGET_SECONDS = {8: 30.0, 128: 300.0}  # one changed run, by number of tables
TARGET_SECONDS_PER_UNCHANGED_TABLE = 0.2


def point_platform_at(stack, work: Path) -> None:
    """The platform's settings for a benchmark: the stack's servers, and a fresh Dagster instance,
    lake, Cassandra keyspace and Spark log under `work`."""
    for name, value in stack.connection_settings().items():
        os.environ[name] = str(value)
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
    os.environ["CDC_LAKE_ROOT"] = str(work / "lake")
    os.environ["CDC_CASSANDRA_KEYSPACE"] = f"bench_{os.getpid()}"
    os.environ.setdefault("CDC_SPARK_LOG", str(work / "spark.log"))
    (work / "dagster_home").mkdir()
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", work / "dagster_home" / "dagster.yaml")


def write_specs(folder: Path, tables: int) -> dict[str, str]:
    """The shipped CRM specs (and their source file: the benchmark feeds the CRM's workload) and
    `tables - 8` clones of them in `folder`: {clone topic: base topic}."""
    import yaml

    from assets.table_spec import load_table_spec
    from devtools.source_specs import write_source_specs

    shipped = write_source_specs(folder, "crm")
    if tables < len(shipped):
        raise SystemExit(f"--tables must be at least the {len(shipped)} shipped CRM tables")
    clones: dict[str, str] = {}
    for number in range(tables - len(shipped)):
        base = shipped[number % len(shipped)]
        spec = yaml.safe_load(base.read_text())
        suffix = f"_C{number + 1:03d}"
        clone_path = folder / f"{base.stem}{suffix.lower()}.yaml"
        clone_path.write_text(yaml.safe_dump({**spec, "table": spec["table"] + suffix}, sort_keys=False))
        clones[load_table_spec(clone_path).topic] = load_table_spec(base).topic
    return clones


def cloned_messages(messages: list, clones: dict[str, str], limit: int | None) -> list:
    """Each clone topic's copy of its base topic's messages (the first `limit`), table renamed."""
    from devtools.workload.capture import WorkloadMessage

    out = []
    for clone_topic, base_topic in clones.items():
        suffix = clone_topic[len(base_topic) :]
        base = [m for m in messages if m.topic == base_topic][:limit]
        for message in base:
            value = json.loads(message.value)
            value["table"] += suffix
            out.append(WorkloadMessage(clone_topic, message.key, json.dumps(value).encode()))
    return out


def step_times(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) of each step of a run, in seconds after the run's first step started, from its
    event log (STEP_START to STEP_SUCCESS / FAILURE)."""
    import dagster as dg

    started: dict[str, float] = {}
    times: dict[str, tuple[float, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            times[event.step_key] = (started.get(event.step_key, record.timestamp), record.timestamp)
    first = min((start for start, _ in times.values()), default=0.0)
    return {key: (start - first, end - first) for key, (start, end) in times.items()}


def step_seconds(times: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {key: end - start for key, (start, end) in times.items()}


def schedule_figures(times: dict[str, tuple[float, float]], threads: int) -> tuple[float, float]:
    """(seconds from the run's first step until its last projection step ended, thread-seconds no step
    used between its first step's start and its last step's end)."""
    if not times:
        return 0.0, 0.0
    projections = [end for key, (_, end) in times.items() if layer_of(key) == "cassandra"]
    span = max(end for _, end in times.values())
    return max(projections, default=0.0), threads * span - sum(step_seconds(times).values())


def layer_of(step_key: str) -> str:
    for layer in ("bronze", "cut", "silver", "gold", "cassandra", "expectations"):
        if step_key.startswith(layer):
            return layer
    return step_key


def write_event_log(folder: Path) -> None:
    """Spark's event log into `folder` (the settings join CDC_SPARK_CONF, read when the session starts)."""
    from bench.spark_event_log import event_log_conf

    folder.mkdir(parents=True, exist_ok=True)
    conf = {**json.loads(os.environ.get("CDC_SPARK_CONF") or "{}"), **event_log_conf(folder)}
    os.environ["CDC_SPARK_CONF"] = json.dumps(conf)


def spark_query_figures(folder: Path, run_id: str) -> dict:
    """The run's root Spark SQL queries and their seconds, per layer (bench/spark_event_log.py)."""
    from bench.spark_event_log import queries_by_step, read_events

    queries: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for step, found in queries_by_step(read_events(folder), run_id).items():
        queries[layer_of(step)] += found.queries
        seconds[layer_of(step)] += found.seconds
    return {
        "spark_queries_by_layer": dict(sorted(queries.items())),
        "spark_query_seconds_by_layer": {k: round(v, 2) for k, v in sorted(seconds.items())},
    }


def run_once(
    instance, profile: Path | None = None, everything: bool = False, max_concurrent: int | None = None
) -> tuple[float, dict, str | None]:
    """One micro-batch as loop mode runs it (only what has work, orchestration.pending), or of
    `everything` as the schedule does: (seconds, each step's (start, end) as step_times gives them, the
    run's id; None when there was nothing to run)."""
    from bench.thread_profile import sampled
    from orchestration.loop import pending_selection, run_microbatch

    with sampled(profile) if profile is not None else contextlib.nullcontext():
        started = time.monotonic()
        selection = None if everything else pending_selection(instance)[0]
        result = None
        if selection is None or selection[0] or selection[1]:  # the loop starts no run for nothing to do
            result = run_microbatch(
                instance, "bench", log_level="ERROR", selection=selection, max_concurrent=max_concurrent
            )
        seconds = time.monotonic() - started
    if result is None:
        return seconds, {}, None
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"the microbatch run failed: {failures[:3]}")
    return seconds, step_times(instance, result.run_id), result.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--initial-rows", type=int, default=200)
    parser.add_argument(
        "--changes", type=int, default=1500, help="change transactions (about 2 messages each)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="change runs, each on the next --changes transactions"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tables", type=int, default=8, help="tables: the 8 shipped specs plus clones of them"
    )
    parser.add_argument("--clone-changes", type=int, default=100, help="change messages per cloned table")
    parser.add_argument(
        "--stack-dir", type=Path, default=None, help="use (or start) this stack; default a private one"
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="steps of a run at once (default: the executor's, orchestration.threaded_executor)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the step threads of the two counted runs with py-spy (bench/thread_profile.py): "
        "<this>.changes.txt / .idle.txt (summaries) and .raw (py-spy's stacks)",
    )
    parser.add_argument(
        "--event-log",
        type=Path,
        default=None,
        help="write Spark's event log into this folder and add the changed run's Spark queries per layer "
        "(spark_queries_by_layer, spark_query_seconds_by_layer; bench/spark_event_log.py)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.profile is not None:
        from bench.thread_profile import py_spy

        py_spy()  # fails now, not after the warm-up run, when py-spy is missing

    from devtools.stack.stack import Stack, StackPorts

    work = Path(tempfile.mkdtemp(prefix="bench-microbatch-"))
    stack = (
        Stack(args.stack_dir)
        if args.stack_dir
        else Stack(work / "stack", StackPorts.free(), die_with_parent=True)
    )
    try:
        stack.up()
        point_platform_at(stack, work)
        os.environ["CDC_CUT_IDLE_SECONDS"] = "0"
        clones = write_specs(work / "specs", args.tables)
        os.environ["CDC_SPECS_DIR"] = str(work / "specs")
        if args.event_log is not None:
            write_event_log(args.event_log)

        import dagster as dg

        from devtools.workload import WorkloadConfig, generate_workload
        from devtools.workload.producer import delete_topics, produce_messages
        from orchestration.definitions import specs
        from orchestration.threaded_executor import DEFAULT_MAX_CONCURRENT

        workload = generate_workload(
            WorkloadConfig(
                seed=args.seed,
                initial_rows=args.initial_rows,
                changes=args.changes * args.rounds,
                initial_load=True,
            )
        )
        ends = workload.transaction_ends  # with initial_load, the load is the first "transaction"
        load = workload.messages[: ends[0]]
        load = load + cloned_messages(load, clones, None)
        rounds = [
            workload.messages[
                ends[r * args.changes] : ends[(r + 1) * args.changes] if r + 1 < args.rounds else None
            ]
            for r in range(args.rounds)
        ]
        rounds = [changes + cloned_messages(changes, clones, args.clone_changes) for changes in rounds]
        changes = rounds[0]
        instance = dg.DagsterInstance.get()

        delete_topics(
            stack.kafka_bootstrap, sorted({spec.topic for spec in specs})
        )  # a reused stack's earlier run
        produce_messages(stack.kafka_bootstrap, load, partitions=3)
        threads = args.max_concurrent
        warm_seconds, _, _ = run_once(instance, max_concurrent=threads)
        produce_messages(stack.kafka_bootstrap, changes, partitions=3)
        profiles = (
            (None, None)
            if args.profile is None
            else (Path(f"{args.profile}.changes"), Path(f"{args.profile}.idle"))
        )
        threads_used = threads or DEFAULT_MAX_CONCURRENT
        seconds, times, changed_run = run_once(instance, profiles[0], max_concurrent=threads)
        steps = step_seconds(times)
        idle_seconds, idle_times, _ = run_once(instance, profiles[1], max_concurrent=threads)
        idle_steps = step_seconds(idle_times)
        idle_everything_seconds, _, _ = run_once(instance, everything=True, max_concurrent=threads)
        round_seconds = [seconds]
        round_schedules = [schedule_figures(times, threads_used)]
        for later in rounds[1:]:
            produce_messages(stack.kafka_bootstrap, later, partitions=3)
            later_seconds, later_times, _ = run_once(instance, max_concurrent=threads)
            round_seconds.append(later_seconds)
            round_schedules.append(schedule_figures(later_times, threads_used))

        per_layer: dict[str, float] = defaultdict(float)
        for key, value in steps.items():
            per_layer[layer_of(key)] += value
        tables = len(specs)
        changed_tables = len({m.topic for m in changes})
        figures = {
            "tables": tables,
            "changed_tables": changed_tables,
            "changes": len(changes),
            "max_concurrent": threads_used,
            "seconds": round(seconds, 2),
            "seconds_target": TARGET_SECONDS.get(tables),
            "seconds_per_changed_table": round(seconds / changed_tables, 3),
            "seconds_nothing_new": round(idle_seconds, 2),
            "seconds_per_unchanged_table": round(idle_seconds / tables, 3),
            "seconds_per_unchanged_table_target": TARGET_SECONDS_PER_UNCHANGED_TABLE,
            "warm_up_run_seconds": round(warm_seconds, 2),
            "steps_seconds_by_layer": {k: round(v, 2) for k, v in sorted(per_layer.items())},
            "slowest_steps": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:8]},
            "nothing_new_steps_seconds": round(sum(idle_steps.values()), 2),
            "seconds_nothing_new_every_asset": round(idle_everything_seconds, 2),
            "projections_written_seconds": round(round_schedules[0][0], 2),
            "idle_thread_seconds": round(round_schedules[0][1], 2),
        }
        if args.event_log is not None and changed_run is not None:
            figures.update(spark_query_figures(args.event_log, changed_run))
        if args.rounds > 1:
            figures["seconds_rounds"] = [round(s, 2) for s in round_seconds]
            figures["seconds_later_rounds_median"] = round(statistics.median(round_seconds[1:]), 2)
            figures["projections_written_seconds_rounds"] = [round(p, 2) for p, _ in round_schedules]
            figures["idle_thread_seconds_rounds"] = [round(i, 2) for _, i in round_schedules]
        print(json.dumps(figures))
        return 0
    finally:
        if not args.stack_dir:
            stack.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
