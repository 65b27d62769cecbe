"""The micro-batch job, its schedule and the Kafka lag sensor.

- `microbatch` materializes every asset (bronze -> silver -> gold -> checks -> projections) in one run.
  Runs carry the tag `cdc-lakehouse/batch=microbatch`; the instance config (orchestration/dagster.yaml)
  limits runs with that tag to one at a time, and every table asset sits in the pool `table:<name>`,
  so two runs never write one table at once, whether launched by the schedule, the sensor, a backfill
  or by hand.
- The schedule runs it on `CDC_MICROBATCH_CRON` (default every 5 minutes), read when the code
  location loads.
- The sensor compares the CDC topics' high watermarks with the bronze consumer groups' offsets
  (bronze commits them after each batch) and requests a run when the records waiting reach
  `CDC_LAG_THRESHOLD` (default 1: any new data; read at every evaluation). Its cursor holds the
  watermarks it last requested a run for, so it requests one run per set of watermarks; it skips
  while a run that writes the tables (a micro-batch, a date backfill or a rebuild:
  orchestration.backfills) is queued, running or being cancelled. (Those would only make a new
  micro-batch wait on their pools; the sensor does not stack runs behind them. The schedule does not
  wait: its runs queue.) A Kafka that does not answer fails the tick (a sensor error in Dagster,
  `Kafka at host:port: ...`, after topic_lag's timeout) rather than skipping it, so an outage or a
  wrong address shows; the cursor stays, and the first tick after Kafka is back requests the run.
"""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg
from confluent_kafka import KafkaException

from orchestration.backfills import JOB_NAMES as BACKFILL_AND_REBUILD_JOBS
from orchestration.threaded_executor import threaded_executor
from resources.connections import KafkaResource
from transforms.bronze.lag import bronze_group_id, topic_lag
from transforms.specs.table import TableSpec

BATCH_TAG = "cdc-lakehouse/batch"
TRIGGER_TAG = "cdc-lakehouse/trigger"
RECORDS_WAITING_TAG = "cdc-lakehouse/records_waiting"
CRON_VARIABLE = "CDC_MICROBATCH_CRON"
DEFAULT_CRON = "*/5 * * * *"
THRESHOLD_VARIABLE = "CDC_LAG_THRESHOLD"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,  # still writing until it is CANCELED
]

microbatch_job = dg.define_asset_job(
    "microbatch",
    selection=dg.AssetSelection.all(),
    description="One micro-batch of every table: bronze -> silver -> gold -> checks -> Cassandra projections.",
    tags={BATCH_TAG: "microbatch"},
    # One process for the whole run, so one SparkContext serves every step, with independent steps
    # running at once in threads (orchestration.threaded_executor). The default multiprocess executor
    # starts a process (and a Spark JVM) per step: dozens per micro-batch.
    executor_def=threaded_executor,
)


def build_microbatch_schedule(cron: str | None = None) -> dg.ScheduleDefinition:
    """The micro-batch schedule on `cron`, else $CDC_MICROBATCH_CRON, else every 5 minutes."""
    cron = cron or os.environ.get(CRON_VARIABLE, "").strip() or DEFAULT_CRON
    try:
        return dg.ScheduleDefinition(
            name="microbatch_schedule",
            job=microbatch_job,
            cron_schedule=cron,
            tags={TRIGGER_TAG: "schedule"},
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Runs the micro-batch job on {CRON_VARIABLE} (now {cron!r}; default {DEFAULT_CRON!r}).",
        )
    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(f"{CRON_VARIABLE}={cron!r} is not a valid cron schedule: {error}") from error


microbatch_schedule = build_microbatch_schedule()


def lag_threshold() -> int:
    """$CDC_LAG_THRESHOLD: the records waiting (over all tables) that trigger a run; default 1."""
    text = os.environ.get(THRESHOLD_VARIABLE, "").strip() or "1"
    try:
        threshold = int(text)
    except ValueError:
        threshold = 0
    if threshold < 1:
        raise ValueError(
            f"{THRESHOLD_VARIABLE}={text!r}: use a whole number of records >= 1 (1 = any new data)"
        )
    return threshold


def build_lag_sensor(specs: list[TableSpec]) -> dg.SensorDefinition:
    @dg.sensor(
        name="kafka_lag_sensor",
        job=microbatch_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests a micro-batch when the CDC topics hold records bronze has not ingested yet.",
    )
    def kafka_lag_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource):
        threshold = lag_threshold()
        waiting, marks = 0, {}
        for spec in specs:
            try:
                lag = topic_lag(kafka.client_config(), spec.topic, bronze_group_id(spec.asset_name))
            except KafkaException as error:
                if not error.args[0].retriable():
                    raise
                # e.g. a partition between leaders, or a topic created a moment ago: the next tick asks again
                return dg.SkipReason(
                    f"Kafka could not tell the lag of topic {spec.topic} yet: {error.args[0].str()}"
                )
            waiting += sum(records for _, records in lag.values())
            marks[spec.asset_name] = {str(p): high for p, (high, _) in sorted(lag.items())}
        cursor = json.dumps(marks, sort_keys=True)
        if waiting < threshold:
            return dg.SkipReason(f"{waiting} records waiting (threshold {threshold})")
        if cursor == context.cursor:
            return dg.SkipReason(f"{waiting} records waiting, already requested a run for these watermarks")
        writers = {microbatch_job.name, *BACKFILL_AND_REBUILD_JOBS}
        in_flight = [
            run
            for run in context.instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
            if run.job_name in writers
        ]
        if in_flight:
            run = in_flight[0]
            return dg.SkipReason(
                f"{waiting} records waiting; run {run.run_id} of {run.job_name} is still in flight"
            )
        # The run key names the step from the last watermarks to these: a repeated tick (the daemon
        # died before it stored the cursor) is deduplicated, while watermarks seen before (topics
        # recreated) still get their run.
        run_key = hashlib.sha256(f"{context.cursor}->{cursor}".encode()).hexdigest()[:20]
        context.update_cursor(cursor)
        return dg.RunRequest(
            run_key=run_key,
            tags={TRIGGER_TAG: "kafka_lag_sensor", RECORDS_WAITING_TAG: str(waiting)},
        )

    return kafka_lag_sensor
