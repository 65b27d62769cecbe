"""Benchmark of one `microbatch` run through Dagster, the real job (bronze -> silver -> cut -> gold ->
checks -> Cassandra projections), on the local stack (prints figures; not a test).

    .venv/bin/python bench/bench_microbatch.py                 # the shipped CRM specs (8 tables)
    .venv/bin/python bench/bench_microbatch.py --changes 300   # a smaller change stream
    .venv/bin/python bench/bench_microbatch.py --tables 32     # the 8 specs, then copies on their own topics

`--tables N` (a multiple of 8): the shipped specs, then copies of them named `<asset>_<g>` reading
topics `crm.<TABLE>.<g>`, each group fed its own CRM workload (`--changes` is the total, spread over
the groups); only the shipped tables feed gold, checks and projections.

1. Starts a private stack (Kafka, Cassandra) on free ports, or uses `--stack-dir`'s.
2. Generates the CRM workload (an initial load, then `--changes` change transactions, GoldenGate JSON),
   produces the initial load and runs `microbatch` once: that run warms the Spark session, as in a
   long-running deployment, and is not counted.
3. Produces the change stream and times ONE run (`seconds`), then a run with nothing new
   (`seconds_nothing_new`: what a table with no new records costs, per table).

Per-step seconds come from the run's own event log (step start to step end), summed per layer, so
the figures say where the time goes. The last line is one JSON object; each target stands beside its
figure (`*_target`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

TARGET_SECONDS = {8: 30.0, 128: 300.0}  # the targets: 8 tables; 128 tables with 100 changes each
TARGET_SECONDS_PER_UNCHANGED_TABLE = 0.2


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per step of a run, from its event log (STEP_START to STEP_SUCCESS / FAILURE / SKIPPED)."""
    import dagster as dg

    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            seconds[event.step_key] = record.timestamp - started.get(event.step_key, record.timestamp)
    return seconds


def layer_of(step_key: str) -> str:
    for layer in ("bronze", "cut", "silver", "gold", "cassandra", "expectations"):
        if step_key.startswith(layer):
            return layer
    return step_key


def bench_specs(tables: int):
    """`tables` specs: the shipped ones, then copies of them on their own topics (see the docstring)."""
    from assets.factory import load_specs

    shipped = load_specs()
    if tables < len(shipped) or tables % len(shipped):
        raise SystemExit(f"--tables must be a multiple of {len(shipped)}, got {tables}")
    return [
        spec if group == 0 else spec.model_copy(update={"topic": f"{spec.topic}.{group}", "name": f"{spec.asset_name}_{group}"})
        for group in range(tables // len(shipped))
        for spec in shipped
    ]


def bench_job(specs):
    """The microbatch job over `specs`, with the shipped gold entities, projections and checks."""
    import dagster as dg

    from assets.factory import build_table_assets, load_entities, load_projections
    from expectations.checks import build_asset_checks
    from orchestration.automation import microbatch_job
    from orchestration.resources import resources_from_env

    entities = load_entities(specs)
    assets = build_table_assets(specs, entities, load_projections(entities))
    defs = dg.Definitions(
        assets=assets,
        asset_checks=build_asset_checks(asset_keys=[key for a in assets for key in a.keys]),
        jobs=[microbatch_job],
        resources=resources_from_env(),
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("microbatch")


def run_once(job, instance, profile: Path | None = None) -> tuple[float, dict, object]:
    from orchestration.loop import run_microbatch

    profiler = None
    if profile is not None:  # pyinstrument (not a dependency: install it to profile)
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.monotonic()
    result = run_microbatch(instance, "bench", log_level="ERROR", job=job)
    seconds = time.monotonic() - started
    if profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"the microbatch run failed: {failures[:3]}")
    return seconds, step_seconds(instance, result.run_id), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=8, help="tables (a multiple of 8; default the shipped 8)")
    parser.add_argument("--initial-rows", type=int, default=200, help="initial rows per group of 8 tables")
    parser.add_argument("--changes", type=int, default=1500, help="change transactions in all (about 2 messages each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stack-dir", type=Path, default=None, help="use (or start) this stack; default a private one")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write pyinstrument profiles of the two counted runs to <this>.changes.txt / .idle.txt")
    args = parser.parse_args(argv)

    from orchestration.stack.stack import Stack, StackPorts

    work = Path(tempfile.mkdtemp(prefix="bench-microbatch-"))
    stack = Stack(args.stack_dir) if args.stack_dir else Stack(work / "stack", StackPorts.free(), die_with_parent=True)
    try:
        stack.up()
        for name, value in stack.connection_settings().items():
            os.environ[name] = str(value)
        os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
        os.environ["CDC_LAKE_ROOT"] = str(work / "lake")
        os.environ["CDC_CASSANDRA_KEYSPACE"] = f"bench_{os.getpid()}"
        os.environ["CDC_CUT_IDLE_SECONDS"] = "0"
        os.environ.setdefault("CDC_SPARK_LOG", str(work / "spark.log"))
        (work / "dagster_home").mkdir()
        shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", work / "dagster_home" / "dagster.yaml")

        import dagster as dg

        from orchestration.workload import WorkloadConfig, generate_workload
        from orchestration.workload.producer import produce_messages

        specs = bench_specs(args.tables)
        groups = args.tables // 8
        load, changes = [], []
        for group in range(groups):
            workload = generate_workload(WorkloadConfig(
                seed=args.seed + group, initial_rows=args.initial_rows, changes=args.changes // groups,
                initial_load=True, topic_template="crm.{table}" + (f".{group}" if group else ""),
            ))
            loaded = workload.transaction_ends[0]  # with initial_load, the load is the first "transaction"
            load += workload.messages[:loaded]
            changes += workload.messages[loaded:]
        job = bench_job(specs)
        instance = dg.DagsterInstance.get()

        produce_messages(stack.kafka_bootstrap, load, partitions=3)
        warm_seconds, _, _ = run_once(job, instance)
        produce_messages(stack.kafka_bootstrap, changes, partitions=3)
        profiles = (None, None) if args.profile is None else (
            args.profile.with_suffix(".changes.txt"), args.profile.with_suffix(".idle.txt"))
        seconds, steps, _ = run_once(job, instance, profiles[0])
        idle_seconds, idle_steps, _ = run_once(job, instance, profiles[1])

        per_layer: dict[str, float] = defaultdict(float)
        for key, value in steps.items():
            per_layer[layer_of(key)] += value
        tables = len(specs)
        figures = {
            "tables": tables,
            "changes": len(changes),
            "seconds": round(seconds, 2),
            "seconds_target": TARGET_SECONDS.get(tables),
            "seconds_per_changed_table": round(seconds / tables, 3),
            "seconds_nothing_new": round(idle_seconds, 2),
            "seconds_per_unchanged_table": round(idle_seconds / tables, 3),
            "seconds_per_unchanged_table_target": TARGET_SECONDS_PER_UNCHANGED_TABLE,
            "warm_up_run_seconds": round(warm_seconds, 2),
            "steps_seconds_by_layer": {k: round(v, 2) for k, v in sorted(per_layer.items())},
            "slowest_steps": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:8]},
            "nothing_new_steps_seconds": round(sum(idle_steps.values()), 2),
        }
        print(json.dumps(figures))
        return 0
    finally:
        if not args.stack_dir:
            stack.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
