"""The micro-batch job, its schedule and the Kafka lag sensor.

- `microbatch` materializes every asset (bronze -> silver -> gold -> checks -> projections) in one run.
  Runs carry the tag `cdc-lakehouse/batch=microbatch`; the instance config (orchestration/dagster.yaml)
  limits runs with that tag to one at a time, and every table asset sits in the pool `table:<name>`,
  so two runs never write one table at once, whether launched by the schedule, the sensor, a backfill
  or by hand.
- The schedule runs it on `CDC_MICROBATCH_CRON` (default every 5 minutes).
- The sensor compares the CDC topics' high watermarks with the bronze consumer groups' offsets
  (bronze commits them after each batch) and requests a run when the records waiting reach
  `CDC_LAG_THRESHOLD` (default 1: any new data). Its cursor holds the watermarks it last acted on; it
  skips while a micro-batch is queued or running.
"""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg

from assets.table_spec import TableSpec
from orchestration.resources import KafkaResource
from transforms.bronze.lag import bronze_group_id, topic_lag

BATCH_TAG = "cdc-lakehouse/batch"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

microbatch_job = dg.define_asset_job(
    "microbatch",
    selection=dg.AssetSelection.all(),
    description="One micro-batch of every table: bronze -> silver -> gold -> checks -> Cassandra projections.",
    tags={BATCH_TAG: "microbatch"},
)

microbatch_schedule = dg.ScheduleDefinition(
    name="microbatch_schedule",
    job=microbatch_job,
    cron_schedule=os.environ.get("CDC_MICROBATCH_CRON", "*/5 * * * *"),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Runs the micro-batch job on CDC_MICROBATCH_CRON (default every 5 minutes).",
)


def build_lag_sensor(specs: list[TableSpec]) -> dg.SensorDefinition:
    @dg.sensor(
        name="kafka_lag_sensor",
        job=microbatch_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests a micro-batch when the CDC topics hold records bronze has not ingested yet.",
    )
    def kafka_lag_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource):
        threshold = int(os.environ.get("CDC_LAG_THRESHOLD", "1"))
        waiting, marks = 0, {}
        for spec in specs:
            lag = topic_lag(kafka.client_config(), spec.topic, bronze_group_id(spec.asset_name))
            waiting += sum(records for _, records in lag.values())
            marks[spec.asset_name] = {str(p): high for p, (high, _) in sorted(lag.items())}
        cursor = json.dumps(marks, sort_keys=True)
        if waiting < threshold:
            return dg.SkipReason(f"{waiting} records waiting (threshold {threshold})")
        if cursor == context.cursor:
            return dg.SkipReason(f"{waiting} records waiting, already requested a run for these watermarks")
        in_flight = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=microbatch_job.name, statuses=IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason(f"{waiting} records waiting; run {in_flight[0].run_id} is still in flight")
        context.update_cursor(cursor)
        return dg.RunRequest(
            run_key=hashlib.sha256(cursor.encode()).hexdigest()[:20],
            tags={"cdc-lakehouse/records_waiting": str(waiting)},
        )

    return kafka_lag_sensor
