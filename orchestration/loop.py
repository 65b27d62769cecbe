"""Low-latency mode: one process keeps its Spark session warm and runs the `microbatch` job again
and again, each run recorded in the Dagster instance ($DAGSTER_HOME), so the UI shows every loop's
materializations and checks as it shows scheduled runs.

    DAGSTER_HOME=<instance> CDC_LAKE_ROOT=<lake> python -m orchestration.loop --interval 10

A run starts `--interval` seconds after the previous one started, or at once when that one took
longer. When the newest `microbatch` run in the instance succeeded, a run holds only what has work
(orchestration.pending): the tables with records waiting in Kafka or rows silver has not applied,
what is downstream of them, their checks, and the freshness checks whose verdict the clock changed. A
table with nothing new then costs a Kafka lag query and a few Delta log reads, no step and no Spark
job; with nothing to do at all, no run starts, so a quiet loop costs little.
When it did not succeed (it failed, or a crash cut it short), the run holds every asset, which catches
up whatever was left behind (a gold entity behind its silver, a projection behind its gold).

The loop is the tables' only writer: leave the schedule and the lag sensor off while it runs. Ctrl-C
(or SIGTERM) stops it; a run cut short is redone by the next run, as after any crash.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import dagster as dg

from orchestration.threaded_executor import DEFAULT_MAX_CONCURRENT, execute_in_this_process

LOOP_TAG_VALUE = "loop"


Selection = tuple[set[dg.AssetKey], set[dg.AssetCheckKey]]


def run_microbatch(
    instance: dg.DagsterInstance,
    batch_tag: str,
    log_level: str = "WARNING",
    selection: Selection | None = None,
    max_concurrent: int | None = None,
) -> dg.ExecuteInProcessResult:
    """One run of the `microbatch` job in this process (its Spark session stays warm for the next):
    every asset, or only `selection` (assets, checks); up to `max_concurrent` steps at once (default:
    the executor's, orchestration.threaded_executor)."""
    from orchestration.automation import BATCH_TAG
    from orchestration.definitions import defs

    job = defs.resolve_job_def("microbatch")
    if selection is not None:
        assets, checks = selection
        if not assets and not checks:
            raise ValueError("an empty selection: nothing to run")
        job = job.get_subset(asset_selection=assets, asset_check_selection=checks)
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if max_concurrent is not None:
        run_config["execution"] = {"config": {"max_concurrent": max_concurrent}}
    return execute_in_this_process(job, instance, tags={BATCH_TAG: batch_tag}, run_config=run_config)


def pending_selection(instance: dg.DagsterInstance) -> tuple[Selection, str]:
    """What the next run has to do (orchestration.pending), and a line saying which tables have work."""
    from expectations.suite import load_suites
    from orchestration.definitions import defs, entities, specs
    from orchestration.pending import freshness_changed, microbatch_selection, tables_with_work
    from resources.connections import resources_from_env

    needed = {
        name: resource
        for name, resource in resources_from_env().items()
        if name in ("kafka", "spark", "lake")
    }
    with dg.build_resources(needed) as resources:
        work = tables_with_work(
            specs, resources.kafka, resources.spark.session(resources.lake), resources.lake
        )
    selection = microbatch_selection(
        defs.resolve_asset_graph(),
        specs,
        load_suites(specs=specs, entities=entities),
        work,
        freshness_changed(instance),
    )
    tables = ", ".join(
        f"{name} ({'?' if w.records_waiting is None else w.records_waiting} waiting)"
        for name, w in sorted(work.items())
    )
    return selection, f"tables with work: {tables or 'none'}"


def last_run_succeeded(instance: dg.DagsterInstance) -> bool:
    """Whether the newest run of the `microbatch` job (loop, schedule, sensor, UI) succeeded."""
    newest = instance.get_runs(filters=dg.RunsFilter(job_name="microbatch"), limit=1)
    return bool(newest) and newest[0].status == dg.DagsterRunStatus.SUCCESS


def not_materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    """The assets the run planned and did not materialize: held back by a failed blocking check
    upstream of them (or by a failed step)."""
    planned = result.job_def.asset_layer.selected_asset_keys  # the run's (sub)job: what it was to materialize
    written = {e.asset_key for e in result.get_asset_materialization_events()}
    return sorted(key.to_user_string() for key in planned - written)


def describe(result: dg.ExecuteInProcessResult, seconds: float) -> str:
    """One line per run: its id, outcome, what it wrote, which checks failed, what it held back."""
    written = sum(1 for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    failed = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    )
    outcome = "succeeded" if result.success else "FAILED"
    checks = f", failed checks: {', '.join(failed)}" if failed else ""
    held = not_materialized(result)
    held_text = f", not materialized: {', '.join(held)}" if held else ""
    return (
        f"run {result.run_id[:8]}: {outcome}, {written} materializations in {seconds:.1f}s{checks}{held_text}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.loop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds from one run's start to the next's"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="stop after this many runs (default: run until stopped)"
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help=f"steps of a run at once, in threads (default {DEFAULT_MAX_CONCURRENT}; about the driver's cores)",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the loop as Ctrl-C does

    instance = dg.DagsterInstance.get()
    print(
        f"micro-batch loop: a run every {args.interval:g}s, recorded in the Dagster instance at {instance.root_directory}"
    )
    runs, failures = 0, 0
    try:
        while args.runs is None or runs < args.runs:
            started = time.monotonic()
            if last_run_succeeded(instance):
                selection, tables = pending_selection(instance)
                print(tables)
            else:  # catch up whatever a crash or a failed run left behind
                print("every asset (the last micro-batch did not succeed)")
                selection = None
            if selection is None or selection[0] or selection[1]:
                result = run_microbatch(
                    instance, LOOP_TAG_VALUE, selection=selection, max_concurrent=args.max_concurrent
                )
                failures += not result.success
                print(describe(result, time.monotonic() - started))
            else:
                print(f"nothing to run ({time.monotonic() - started:.2f}s)")
            runs += 1
            if args.runs is None or runs < args.runs:
                time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        print("stopped")
    print(f"{runs} runs, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
