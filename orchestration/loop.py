"""Low-latency mode: one process keeps its Spark session warm and runs the `microbatch` job again
and again, each run recorded in the Dagster instance ($DAGSTER_HOME), so the UI shows every loop's
materializations and checks as it shows scheduled runs.

    DAGSTER_HOME=<instance> CDC_LAKE_ROOT=<lake> python -m orchestration.loop --interval 10

A run starts `--interval` seconds after the previous one started, or at once when that one took
longer. A table with nothing new costs no Spark job and its checks are reused, so a quiet loop costs
little. The loop is the tables' only writer: leave the schedule and the lag sensor off while it runs.
Ctrl-C (or SIGTERM) stops it; a run cut short is redone by the next run, as after any crash.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import dagster as dg

LOOP_TAG_VALUE = "loop"


def run_microbatch(instance: dg.DagsterInstance, batch_tag: str, log_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    """One run of the `microbatch` job in this process (its Spark session stays warm for the next)."""
    from orchestration.automation import BATCH_TAG
    from orchestration.definitions import defs

    return defs.resolve_job_def("microbatch").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        tags={BATCH_TAG: batch_tag},
    )


def describe(result: dg.ExecuteInProcessResult, seconds: float) -> str:
    """One line per run: its id, outcome, what it wrote, which checks failed."""
    written = sum(1 for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    failed = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}" for e in result.get_asset_check_evaluations() if not e.passed
    )
    outcome = "succeeded" if result.success else "FAILED"
    checks = f", failed checks: {', '.join(failed)}" if failed else ""
    return f"run {result.run_id[:8]}: {outcome}, {written} materializations in {seconds:.1f}s{checks}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=10.0, help="seconds from one run's start to the next's")
    parser.add_argument("--runs", type=int, default=None, help="stop after this many runs (default: run until stopped)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the loop as Ctrl-C does

    instance = dg.DagsterInstance.get()
    print(f"micro-batch loop: a run every {args.interval:g}s, recorded in the Dagster instance at {instance.root_directory}")
    runs, failures = 0, 0
    try:
        while args.runs is None or runs < args.runs:
            started = time.monotonic()
            result = run_microbatch(instance, LOOP_TAG_VALUE)
            runs, failures = runs + 1, failures + (not result.success)
            print(describe(result, time.monotonic() - started))
            if args.runs is None or runs < args.runs:
                time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        print("stopped")
    print(f"{runs} runs, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
