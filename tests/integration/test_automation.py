"""The micro-batch schedule, the Kafka lag sensor and the instance's concurrency settings.

Schedule and sensor are evaluated with Dagster's testing APIs (build_schedule_context,
build_sensor_context with a persistent test instance, evaluate_tick), the sensor against the real
Kafka of the test stack on topics of its own. "Ingested" is what bronze records: its consumer-group
offsets, committed after each batch by the real bronze asset.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from devtools.workload import WorkloadConfig, generate_workload
from devtools.workload.producer import create_topics, produce_messages
from orchestration.automation import (
    BATCH_TAG,
    CRON_VARIABLE,
    DEFAULT_CRON,
    RECORDS_WAITING_TAG,
    THRESHOLD_VARIABLE,
    TRIGGER_TAG,
    build_lag_sensor,
    build_microbatch_schedule,
    lag_threshold,
    microbatch_job,
)
from resources.connections import KafkaResource
from tests.pipeline import materialize_all, resources, specs_on_topics, unique_prefix

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = PROJECT_ROOT / "orchestration" / "dagster.yaml"


# -- helpers --------------------------------------------------------------------------------------


class LagSensorScenario:
    """The lag sensor over the CRM specs on fresh topics `<prefix>.<TABLE>` (created empty), with a
    persistent test instance, ticked like the daemon does: each tick gets the cursor the last one left."""

    def __init__(self, kafka_bootstrap: str, instance: dg.DagsterInstance):
        self.bootstrap = kafka_bootstrap
        self.instance = instance
        prefix = unique_prefix()
        self.specs = specs_on_topics(prefix)
        self.sensor = build_lag_sensor(self.specs)
        self.cursor: str | None = None
        workload = generate_workload(
            WorkloadConfig(seed=5, initial_rows=8, changes=20, topic_template=prefix + ".{table}")
        )
        self.messages = workload.messages
        create_topics(kafka_bootstrap, [spec.topic for spec in self.specs], partitions=3)
        wait_until_partitions_have_leaders(kafka_bootstrap, [spec.topic for spec in self.specs])

    def produce(self, messages) -> int:
        produce_messages(self.bootstrap, messages, partitions=3)
        return len(messages)

    def tick(self):
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"kafka": KafkaResource(bootstrap_servers=self.bootstrap)},
        )
        result = self.sensor.evaluate_tick(context)
        if result.cursor is not None:
            self.cursor = result.cursor
        return result


def wait_until_partitions_have_leaders(bootstrap: str, topics: list[str], timeout_s: float = 60) -> None:
    """A topic created a moment ago answers NOT_LEADER_FOR_PARTITION until its leaders are known."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-automation-probe"})
    deadline = time.monotonic() + timeout_s
    try:
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=15).topics[topic].partitions:
                while True:
                    try:
                        consumer.get_watermark_offsets(
                            TopicPartition(topic, partition), timeout=5, cached=False
                        )
                        break
                    except KafkaException:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
    finally:
        consumer.close()


def records_under(cursor: str) -> int:
    """Sum of the high watermarks a sensor cursor holds (= records produced, on fresh topics)."""
    return sum(high for partitions in json.loads(cursor).values() for high in partitions.values())


def add_run(instance: dg.DagsterInstance, job_name: str, status: dg.DagsterRunStatus, tags: dict) -> str:
    """A run of the workspace's code location, as the webserver or the daemon would submit it."""
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin

    location = RegisteredCodeLocationOrigin(location_name="orchestration.definitions")
    origin = RemoteRepositoryOrigin(code_location_origin=location, repository_name="__repository__")
    run = dg.DagsterRun(
        job_name=job_name,
        run_id=str(uuid.uuid4()),
        status=status,
        tags=tags,
        remote_job_origin=origin.get_job_origin(job_name),
    )
    return instance.add_run(run).run_id


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def scenario(kafka_bootstrap, instance) -> LagSensorScenario:
    return LagSensorScenario(kafka_bootstrap, instance)


# -- the Kafka lag sensor -------------------------------------------------------------------------


@pytest.mark.integration
def test_lag_sensor_skips_when_no_record_waits(scenario):
    result = scenario.tick()

    assert not result.run_requests
    assert result.skip_message.startswith("0 records waiting")
    assert scenario.cursor is None


@pytest.mark.integration
def test_lag_sensor_requests_one_run_per_new_watermarks_and_records_them_in_its_cursor(scenario):
    half = len(scenario.messages) // 2
    first = scenario.produce(scenario.messages[:half])

    requested = scenario.tick()
    [request] = requested.run_requests
    assert request.tags[RECORDS_WAITING_TAG] == str(first)
    assert request.tags[TRIGGER_TAG] == "kafka_lag_sensor"
    assert records_under(scenario.cursor) == first
    assert set(json.loads(scenario.cursor)) == {spec.asset_name for spec in scenario.specs}

    again = scenario.tick()
    assert not again.run_requests
    assert "already requested a run for these watermarks" in again.skip_message

    second = scenario.produce(scenario.messages[half:])
    more = scenario.tick()
    [next_request] = more.run_requests
    assert next_request.tags[RECORDS_WAITING_TAG] == str(first + second)
    assert records_under(scenario.cursor) == first + second
    assert next_request.run_key != request.run_key


@pytest.mark.integration
@pytest.mark.parametrize(
    ("job_name", "status"),
    [
        ("microbatch", dg.DagsterRunStatus.QUEUED),
        ("microbatch", dg.DagsterRunStatus.STARTED),
        ("microbatch", dg.DagsterRunStatus.CANCELING),
        ("rebuild_silver", dg.DagsterRunStatus.STARTED),
        ("bronze_date_backfill", dg.DagsterRunStatus.QUEUED),
    ],
)
def test_lag_sensor_waits_while_a_run_that_writes_the_tables_is_in_flight(
    scenario, instance, job_name, status
):
    scenario.produce(scenario.messages)
    add_run(instance, "another_job", dg.DagsterRunStatus.STARTED, {})  # writes no table: no reason to wait
    run_id = add_run(instance, job_name, status, {})

    waiting = scenario.tick()
    assert not waiting.run_requests
    assert f"run {run_id} of {job_name} is still in flight" in waiting.skip_message
    assert scenario.cursor is None  # nothing requested, so the same watermarks still get their run

    instance.report_run_failed(instance.get_run_by_id(run_id))
    [request] = scenario.tick().run_requests
    assert request.tags[RECORDS_WAITING_TAG] == str(len(scenario.messages))


@pytest.mark.integration
def test_lag_sensor_skips_once_bronze_has_ingested_every_record(scenario, spark, tmp_lake):
    produced = scenario.produce(scenario.messages)
    [request] = scenario.tick().run_requests
    assert request.tags[RECORDS_WAITING_TAG] == str(produced)

    bronze = materialize_all(
        scenario.specs, resources(scenario.bootstrap, tmp_lake), selection=dg.AssetSelection.groups("bronze")
    )
    assert bronze.success

    after = scenario.tick()
    assert not after.run_requests
    assert after.skip_message.startswith("0 records waiting")


@pytest.mark.integration
def test_lag_sensor_requests_a_run_only_when_the_records_waiting_reach_CDC_LAG_THRESHOLD(
    scenario, monkeypatch
):
    produced = scenario.produce(scenario.messages)

    monkeypatch.setenv(THRESHOLD_VARIABLE, str(produced + 1))
    below = scenario.tick()
    assert not below.run_requests
    assert below.skip_message == f"{produced} records waiting (threshold {produced + 1})"

    monkeypatch.setenv(THRESHOLD_VARIABLE, str(produced))
    [request] = scenario.tick().run_requests
    assert request.tags[RECORDS_WAITING_TAG] == str(produced)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_lag_threshold_must_be_a_positive_number_of_records(monkeypatch, value):
    monkeypatch.setenv(THRESHOLD_VARIABLE, value)
    with pytest.raises(ValueError, match=THRESHOLD_VARIABLE):
        lag_threshold()


def test_lag_threshold_defaults_to_any_new_record(monkeypatch):
    monkeypatch.delenv(THRESHOLD_VARIABLE, raising=False)
    assert lag_threshold() == 1


# -- the micro-batch schedule ---------------------------------------------------------------------


def test_schedule_requests_a_microbatch_run_whose_config_is_valid_and_tags_mark_the_batch(instance):
    from orchestration.definitions import defs

    schedule = defs.get_schedule_def("microbatch_schedule")
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 1, 5, 8, 10, tzinfo=UTC)
    )
    [request] = schedule.evaluate_tick(context).run_requests

    job = defs.resolve_job_def("microbatch")
    assert schedule.job_name == job.name == microbatch_job.name
    assert request.tags[TRIGGER_TAG] == "schedule"
    assert job.tags[BATCH_TAG] == "microbatch"  # every run of the job carries it: the run queue limits it
    assert dg.validate_run_config(job, request.run_config) is not None


def test_every_job_runs_in_one_process_so_one_spark_context_serves_every_step():
    from orchestration.definitions import defs
    from orchestration.threaded_executor import threaded_executor

    # steps at once in threads of the run's process (orchestration.threaded_executor), never a process each
    for job in defs.resolve_all_job_defs():
        assert job.executor_def is threaded_executor, job.name


def test_schedule_cron_comes_from_CDC_MICROBATCH_CRON(monkeypatch):
    monkeypatch.setenv(CRON_VARIABLE, "*/2 * * * *")
    assert build_microbatch_schedule().cron_schedule == "*/2 * * * *"

    monkeypatch.delenv(CRON_VARIABLE)
    assert build_microbatch_schedule().cron_schedule == DEFAULT_CRON


def test_schedule_with_an_invalid_cron_names_the_variable(monkeypatch):
    monkeypatch.setenv(CRON_VARIABLE, "every five minutes")
    with pytest.raises(
        ValueError, match=f"{CRON_VARIABLE}='every five minutes' is not a valid cron schedule"
    ):
        build_microbatch_schedule()


# -- the instance settings (orchestration/dagster.yaml) -------------------------------------------


@pytest.fixture
def project_instance(tmp_path):
    """An instance from the project's dagster.yaml, as `make dev` and `make run` set it up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as project:
        yield project


def test_instance_config_limits_microbatch_runs_to_one_at_a_time(project_instance):
    concurrency = project_instance.get_concurrency_config()

    assert concurrency.run_queue_config is not None, "runs must go through the run queue"
    assert {"key": BATCH_TAG, "limit": 1} in concurrency.run_queue_config.tag_concurrency_limits
    assert concurrency.pool_config.default_pool_limit == 1  # one writer per table pool


def _dequeued(instance: dg.DagsterInstance) -> list[str]:
    """The runs Dagster's run queue daemon would launch now (its own decision, a private API)."""
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return [
        run.run_id for run in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)
    ]


def test_run_queue_launches_one_of_two_queued_microbatches(project_instance):
    queued = dg.DagsterRunStatus.QUEUED
    first = add_run(project_instance, microbatch_job.name, queued, dict(microbatch_job.tags))
    _second = add_run(project_instance, microbatch_job.name, queued, dict(microbatch_job.tags))
    other = add_run(project_instance, "another_job", queued, {})

    assert _dequeued(project_instance) == [first, other]


def test_run_queue_holds_a_microbatch_until_the_running_one_ends(project_instance):
    running = add_run(
        project_instance, microbatch_job.name, dg.DagsterRunStatus.STARTED, dict(microbatch_job.tags)
    )
    waiting = add_run(
        project_instance, microbatch_job.name, dg.DagsterRunStatus.QUEUED, dict(microbatch_job.tags)
    )
    assert _dequeued(project_instance) == []

    project_instance.report_run_failed(project_instance.get_run_by_id(running))
    assert _dequeued(project_instance) == [waiting]
