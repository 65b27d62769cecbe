"""The runs' executor: the steps of one run in one process, up to `max_concurrent` of them at once in
threads, so that independent assets overlap their Spark jobs and their Python work in one warm
SparkContext (a step of a small table spends much of its time waiting on Spark's fixed cost per job).

Dagster ships the in-process executor (one step at a time) and the multiprocess executor (a process,
here a Spark JVM, per step: more than most steps cost); a threaded one is an open request
(dagster-io/dagster#4041). This is Dagster's own in-process loop (execute_plan.inner_plan_execution_iterator)
with the step bodies moved to worker threads: the main thread alone starts steps, takes their events
in the order each step produced them and keeps the plan's state (dependencies, blocking checks,
skips, pools), exactly as the in-process loop does; a step starts only when everything it waits for
has finished. It uses Dagster internals (dagster._core), checked against the pinned minor version by
tests/unit/test_threaded_executor.py (pyproject pins dagster to 1.13.x).

What a step may assume: it runs in some thread, alone in it. Code that keeps state in a SparkSession
(SQL settings such as Delta's commit metadata, temporary views) takes the session from
SparkResource.session(), which gives each thread a session of its own over the one SparkContext.

`max_concurrent: 1` runs the steps one at a time, in the main thread (the in-process executor).
Otherwise an interrupt Dagster captures (a run terminated from the UI, Ctrl-C) lets the running steps
finish, starts no other, and fails the run as interrupted; whatever a step left unfinished (a crash,
a SIGKILL) is redone by the next run, as with any executor.
"""

from __future__ import annotations

import os
import queue
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.execute_in_process import core_execute_in_process
from dagster._core.execution.plan.execute_plan import (
    _handle_compute_log_setup_error,
    _handle_compute_log_teardown_error,
    _trigger_hook,
    dagster_event_sequence_for_step,
    inner_plan_execution_iterator,
)
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor

DEFAULT_MAX_CONCURRENT = 2
_STEP_DONE = object()  # a worker's last message for a step
INTERRUPT_CHECK_SECONDS = 0.5  # how often the main thread looks for an interrupt while steps run


class ThreadedExecutor(Executor):
    def __init__(self, retries: RetryMode, max_concurrent: int):
        self._retries = retries
        self.max_concurrent = max_concurrent

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), up to {self.max_concurrent} at once in threads",
            event_specific_data=EngineEventData.in_process(os.getpid(), execution_plan.step_keys_to_execute),
        )
        max_concurrent = self.max_concurrent

        def iterator(
            job_context: PlanExecutionContext, execution_plan: ExecutionPlan
        ) -> Iterator[DagsterEvent]:
            with InstanceConcurrencyContext(job_context.instance, job_context.dagster_run) as concurrency:
                if max_concurrent <= 1:
                    yield from inner_plan_execution_iterator(job_context, execution_plan, concurrency)
                else:
                    yield from _threaded_plan_iterator(
                        job_context, execution_plan, concurrency, max_concurrent
                    )

        yield from ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=iterator,
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job,
                retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run,
                instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error,
                output_capture=plan_context.output_capture,
            ),
        )


def _threaded_plan_iterator(
    job_context: PlanExecutionContext,
    execution_plan: ExecutionPlan,
    concurrency: InstanceConcurrencyContext,
    max_concurrent: int,
) -> Iterator[DagsterEvent]:
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    messages: queue.Queue = queue.Queue()
    running: dict[str, tuple] = {}  # step key -> (its context, its events so far)
    with (
        execution_plan.start(
            retry_mode=job_context.retry_mode,
            instance_concurrency_context=concurrency,
            step_dependency_config=job_context.step_dependency_config,
        ) as active_execution,
        ExitStack() as capture_stack,
    ):
        log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        try:
            log_context = capture_stack.enter_context(compute_log_manager.capture_logs(log_key))
            yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
        except Exception:
            yield from _handle_compute_log_setup_error(job_context, sys.exc_info())
        stopping = False  # interrupted: the running steps finish, no other starts
        # leaving this block (done, or an error raised here) waits for the running steps
        with ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="dagster-step") as workers:
            while (not stopping and not active_execution.is_complete) or running:
                if not stopping and active_execution.check_for_interrupts():
                    yield DagsterEvent.engine_event(
                        job_context,
                        "Interrupted: the steps running finish, no other step starts",
                        EngineEventData.interrupted(list(running)),
                    )
                    stopping = True
                    active_execution.mark_interrupted()
                if not stopping and len(running) < max_concurrent:
                    steps = active_execution.get_steps_to_execute(limit=max_concurrent - len(running))
                    yield from active_execution.concurrency_event_iterator(job_context)
                    for step in steps:
                        step_context = job_context.for_step(step, active_execution.get_known_state())
                        running[step.key] = (step_context, [])
                        workers.submit(_run_step, step.key, step_context, messages)
                if not running:
                    if not stopping:
                        active_execution.sleep_til_ready()
                    continue
                try:
                    step_key, message = messages.get(timeout=INTERRUPT_CHECK_SECONDS)
                except queue.Empty:
                    continue
                step_context, step_events = running[step_key]
                if isinstance(message, DagsterEvent):
                    step_events.append(message)
                    yield message
                    active_execution.handle_event(message)
                elif isinstance(message, BaseException):
                    raise message
                else:  # _STEP_DONE
                    del running[step_key]
                    active_execution.verify_complete(job_context, step_key)
                    for event in active_execution.plan_events_iterator(job_context):
                        step_events.append(event)
                        yield event
                    yield from _trigger_hook(step_context, step_events)
        if stopping:
            raise DagsterExecutionInterruptedError()
        try:
            capture_stack.close()
        except Exception:
            yield from _handle_compute_log_teardown_error(job_context, sys.exc_info())


def _run_step(step_key: str, step_context, messages: queue.Queue) -> None:
    """A worker thread: the step's events, then _STEP_DONE (an error of Dagster's own, not of the step's
    code, which Dagster turns into a step failure event, goes to the main thread to fail the run)."""
    try:
        for event in dagster_event_sequence_for_step(step_context):
            messages.put((step_key, event))
    except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
        messages.put((step_key, error))
    finally:
        messages.put((step_key, _STEP_DONE))


@dg.executor(
    name="threaded",
    config_schema={
        "max_concurrent": dg.Field(
            int,
            default_value=DEFAULT_MAX_CONCURRENT,
            description="Steps run at once in threads of the run's process (1: one at a time).",
        ),
        "retries": get_retries_config(),
    },
)
def threaded_executor(init_context: dg.InitExecutorContext) -> ThreadedExecutor:
    config = init_context.executor_config
    return ThreadedExecutor(
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
        max_concurrent=config["max_concurrent"],
    )


def execute_in_this_process(
    job: dg.JobDefinition, instance: dg.DagsterInstance, tags: dict[str, str], run_config: dict
) -> dg.ExecuteInProcessResult:
    """A run of `job` in this process with the job's own executor (this module's, so its steps run in
    threads). JobDefinition.execute_in_process would replace the executor with the one-step-at-a-time
    in-process executor; this is the rest of what it does: the run is recorded in `instance` and its
    events returned, and a failed step fails the run without raising."""
    return core_execute_in_process(
        run_config=run_config,
        job=InMemoryJob(job_def=job),
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=False,
        run_tags=tags,  # core_execute_in_process adds the job's own tags
    )
