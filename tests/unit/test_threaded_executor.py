"""The runs' executor (orchestration.threaded_executor) on small in-memory jobs, no server and no Spark:
independent steps run at once in worker threads, and a step still waits for everything Dagster makes
it wait for (its upstream assets, their blocking checks), as with Dagster's in-process executor, and an
interrupt stops the run without cutting a running step short."""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg
import pytest

from orchestration.threaded_executor import execute_in_this_process, threaded_executor

WAIT_SECONDS = 20.0


def _run(assets, checks=(), max_concurrent: int = 2) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("job", executor_def=threaded_executor)
    defs = dg.Definitions(assets=list(assets), asset_checks=list(checks), jobs=[job])
    with dg.instance_for_test() as instance:
        return execute_in_this_process(
            defs.resolve_job_def("job"),
            instance,
            tags={},
            run_config={"execution": {"config": {"max_concurrent": max_concurrent}}},
        )


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_independent_steps_run_at_once_in_worker_threads():
    # each asset returns only once the other has started: they can only succeed running together
    both_started = threading.Barrier(2, timeout=WAIT_SECONDS)
    threads = {}

    def meeting(name):
        @dg.asset(name=name)
        def _asset():
            threads[name] = threading.current_thread()
            both_started.wait()

        return _asset

    result = _run([meeting("left"), meeting("right")])

    assert result.success
    assert _materialized(result) == {"left", "right"}
    assert threads["left"] is not threads["right"]
    assert threading.main_thread() not in threads.values()


def test_with_one_at_a_time_the_same_steps_cannot_meet():
    both_started = threading.Barrier(2, timeout=1.0)

    @dg.asset
    def left():
        both_started.wait()

    @dg.asset
    def right():
        both_started.wait()

    result = _run([left, right], max_concurrent=1)

    assert not result.success  # the first step waited alone and broke the barrier


def test_a_step_starts_only_after_its_upstream_step_has_ended():
    ended_at, started_at = {}, {}

    @dg.asset
    def upstream():
        time.sleep(0.3)
        ended_at["upstream"] = time.monotonic()

    @dg.asset(deps=[upstream])
    def downstream():
        started_at["downstream"] = time.monotonic()

    @dg.asset
    def beside():
        time.sleep(0.1)

    result = _run([upstream, downstream, beside])

    assert result.success
    assert _materialized(result) == {"upstream", "downstream", "beside"}
    assert started_at["downstream"] >= ended_at["upstream"]


def test_a_failing_blocking_check_holds_back_only_what_is_built_from_its_asset():
    @dg.asset
    def checked():
        pass

    @dg.asset_check(asset=checked, blocking=True)
    def always_fails():
        return dg.AssetCheckResult(passed=False)

    @dg.asset(deps=[checked])
    def built_from_checked():
        pass

    @dg.asset
    def independent():
        pass

    @dg.asset(deps=[independent])
    def built_from_independent():
        pass

    result = _run([checked, built_from_checked, independent, built_from_independent], [always_fails])

    assert not result.success
    assert _materialized(result) == {"checked", "independent", "built_from_independent"}


def test_a_failing_step_fails_the_run_and_the_others_still_end():
    @dg.asset
    def broken():
        raise RuntimeError("broken on purpose")

    @dg.asset(deps=[broken])
    def after_broken():
        pass

    @dg.asset
    def fine():
        time.sleep(0.2)

    result = _run([broken, after_broken, fine])

    assert not result.success
    assert _materialized(result) == {"fine"}
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "broken"
    assert "broken on purpose" in str(failure.step_failure_data.error)


@pytest.mark.parametrize("max_concurrent", [1, 2, 4])
def test_every_step_of_a_wide_graph_runs_once(max_concurrent):
    ran = []
    lock = threading.Lock()

    def leaf(index):
        @dg.asset(name=f"leaf_{index}")
        def _asset():
            with lock:
                ran.append(index)

        return _asset

    leaves = [leaf(i) for i in range(12)]

    @dg.asset(deps=leaves)
    def root():
        with lock:
            ran.append("root")

    result = _run([*leaves, root], max_concurrent=max_concurrent)

    assert result.success
    assert sorted(ran[:-1]) == list(range(12))
    assert ran[-1] == "root"


def test_an_interrupt_lets_the_running_steps_end_and_starts_no_other():
    ended = []

    @dg.asset
    def interrupted():
        # what Dagster does when a run is terminated: an interrupt, which the run's main thread captures
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)
        ended.append("interrupted")

    @dg.asset(deps=[interrupted])
    def after_interrupted():
        ended.append("after_interrupted")

    @dg.asset
    def running_beside():
        time.sleep(1.5)
        ended.append("running_beside")

    result = _run([interrupted, after_interrupted, running_beside])

    assert not result.success
    assert sorted(ended) == ["interrupted", "running_beside"]
    assert _materialized(result) == {"interrupted", "running_beside"}
