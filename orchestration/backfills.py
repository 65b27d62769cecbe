"""Backfills and rebuilds a user launches from the Dagster UI.

- `bronze_date_backfill` is partitioned by day (UTC; the first day is `CDC_BACKFILL_START`, default
  2024-01-01). "Launch backfill" over a date range starts one run per day; each run rewrites that
  day's bronze partition of every table from Kafka (transforms.bronze.backfill: re-read by Kafka time,
  idempotent, the regular batches' offsets untouched, a clear failure when Kafka retention has
  deleted records the day needs). Op config: `read_before_hours` / `read_after_hours`, how far
  around the day Kafka timestamps may lie from the source commit times.
- `rebuild_silver` rebuilds silver tables from all of bronze, `rebuild_gold` gold entities from
  silver. Run config `tables: [s_contact, ...]` / `entities: [customer, ...]` chooses which; empty
  (the default): all. Each is built beside the live table, in `<layer>/_rebuild_<name>`, with the regular
  engine (silver: transforms.silver.apply_new_bronze up to the latest transaction-consistent cut;
  gold: transforms.gold.engine.refresh_entity), then the live table's content is replaced in ONE
  Delta commit that records what it reflects (silver: the bronze version and cut; gold: the silver
  versions and SQL hash), so the next micro-batch continues from there. A crash at any point leaves
  the live table whole (old or new), and a rerun starts over. Silver's change log (`_changes`) is
  replaced by the rebuilt one first; the merge engine accepts a log that is ahead of the table.
- `rebuild_projections` (run config `projections: [...]`, empty: all) rewrites Cassandra projections
  whole from the current gold: a full refresh, every row written at a newer write timestamp and every
  other row removed (transforms.projections.project). A crash leaves the projection readable; a rerun
  completes it.

Every op holds the pool of the table it writes, the same pool as the table's regular assets
(`table:<name>` for bronze and silver, `gold:<entity>`, `projection:<name>`; assets/factory.py), so a backfill or rebuild
and a micro-batch never write one table at once: whoever comes second waits. They are safe to run
with the schedule running or paused.
"""

# No `from __future__ import annotations`: Dagster reads the ops' config annotations at definition time.
import hashlib
import os
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
from pyspark.sql import SparkSession

from assets.factory import project_gold, projection_tables
from assets.gold_spec import GoldEntity
from assets.names import gold_key, gold_pool, projection_key, projection_pool, silver_key, table_pool
from resources.connections import CassandraResource, KafkaResource, LakeResource, SparkResource
from transforms.delta_commits import (
    latest_progress,
    progress_metadata,
    remove_folder,
    replace_table,
    table_exists,
)
from transforms.specs.projection import ProjectionSpec
from transforms.specs.table import TableSpec

JOB_TAG = "cdc-lakehouse/job"
BRONZE_BACKFILL_JOB = "bronze_date_backfill"
SILVER_REBUILD_JOB = "rebuild_silver"
GOLD_REBUILD_JOB = "rebuild_gold"
PROJECTION_REBUILD_JOB = "rebuild_projections"
JOB_NAMES = (BRONZE_BACKFILL_JOB, SILVER_REBUILD_JOB, GOLD_REBUILD_JOB, PROJECTION_REBUILD_JOB)
BACKFILL_START_ENV = "CDC_BACKFILL_START"
DEFAULT_BACKFILL_START = "2024-01-01"
REBUILD_PREFIX = "_rebuild_"


def side_path(table_path: str) -> str:
    """Where a rebuild builds the new state: `<layer>/_rebuild_<name>`, beside the table. Not inside the
    table's folder: Delta would take a path there for a partition of the live table."""
    parent, name = table_path.rstrip("/").rsplit("/", 1)
    return f"{parent}/{REBUILD_PREFIX}{name}"


# -- rebuilds (plain functions: no Dagster) -------------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    version: int | None  # the live table's commit that holds the rebuilt content (None: nothing to rebuild)
    reflects: dict  # what the rebuilt table reflects (its progress record)
    rows: int = 0


def rebuild_silver(
    spark: SparkSession, spec: TableSpec, bronze_path: str, silver_path: str, cut=None
) -> Rebuilt:
    """Silver from all of bronze (up to `cut`, a transforms.cut.Cut), replacing the live table in one commit."""
    from transforms.merge import change_log
    from transforms.silver import STAGE, apply_new_bronze

    side = side_path(silver_path)
    remove_folder(spark, side)
    apply_new_bronze(spark, spec, bronze_path, side, cut)
    if not table_exists(spark, side):  # bronze holds no change to apply: the live table stays as it is
        return Rebuilt(None, {})
    reflects = _rebuilt_progress(spark, side, STAGE)
    replace_table(
        spark,
        change_log.log_path(side),
        change_log.log_path(silver_path),
        progress_metadata("silver_change_log_rebuild", **reflects),
    )
    version = replace_table(spark, side, silver_path, progress_metadata(STAGE, **reflects, rebuilt=True))
    remove_folder(spark, side)
    return Rebuilt(version, reflects, spark.read.format("delta").load(silver_path).count())


def rebuild_gold(
    spark: SparkSession, entity: GoldEntity, gold_path: str, silver_paths: dict[str, str]
) -> Rebuilt:
    """A gold entity recomputed from silver, replacing the live table in one commit."""
    from transforms.gold.engine import STAGE, refresh_entity, register_silver_views, silver_version_map
    from transforms.merge import read_live_rows

    side = side_path(gold_path)
    remove_folder(spark, side)
    # versions first, rows second (as the gold asset does): a silver commit in between is read again later
    versions = silver_version_map(spark, silver_paths)
    register_silver_views(spark, {name: read_live_rows(spark, path) for name, path in silver_paths.items()})
    refresh_entity(
        spark,
        name=entity.name,
        keys=entity.keys,
        sql_text=entity.sql_text,
        gold_path=side,
        silver_versions=versions,
    )
    reflects = _rebuilt_progress(spark, side, STAGE)
    version = replace_table(spark, side, gold_path, progress_metadata(STAGE, **reflects, rebuilt=True))
    remove_folder(spark, side)
    return Rebuilt(version, reflects, spark.read.format("delta").load(gold_path).count())


def _rebuilt_progress(spark: SparkSession, side: str, stage: str) -> dict:
    progress = latest_progress(spark, side, stage)
    if progress is None:
        raise RuntimeError(
            f"the rebuild at {side} wrote no {stage} progress record; the live table was not touched"
        )
    return {key: value for key, value in progress.items() if key != "stage"}


# -- Dagster jobs ---------------------------------------------------------------------------------


def backfill_partitions() -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=os.environ.get(BACKFILL_START_ENV, DEFAULT_BACKFILL_START))


class BronzeBackfillConfig(dg.Config):
    read_before_hours: float = 1.0
    """Read Kafka records stamped up to this long BEFORE the day starts (clock skew)."""
    read_after_hours: float = 24.0
    """Read Kafka records stamped up to this long AFTER the day ends (capture lag)."""


class Chosen(dg.Config):
    chosen: bool = True
    """Set by the job's `tables` / `entities` run config."""


def _bronze_backfill_op(spec: TableSpec, specs: list[TableSpec]) -> dg.OpDefinition:
    other_tables = frozenset(s.table for s in specs if s.topic == spec.topic and s.table != spec.table)

    @dg.op(
        name=f"backfill_bronze_{spec.asset_name}",
        pool=table_pool(spec),
        description=f"Rewrite one day of bronze `{spec.asset_name}` from Kafka topic `{spec.topic}`.",
    )
    def backfill(
        context: dg.OpExecutionContext,
        config: BronzeBackfillConfig,
        kafka: KafkaResource,
        spark: SparkResource,
        lake: LakeResource,
    ) -> None:
        from assets.names import bronze_key
        from transforms.bronze.backfill import backfill_date
        from transforms.bronze.kafka_reader import make_consumer

        day = date.fromisoformat(context.partition_key)
        consumer = make_consumer(kafka.client_config(), group_id=f"cdc-lakehouse.backfill.{spec.asset_name}")
        try:
            result = backfill_date(
                spark.session(lake),
                spec,
                consumer,
                lake.table_path("bronze", spec.asset_name),
                lake.table_path("quarantine", spec.asset_name),
                day,
                other_tables_on_topic=other_tables,
                read_before=timedelta(hours=config.read_before_hours),
                read_after=timedelta(hours=config.read_after_hours),
            )
        finally:
            consumer.close()
        context.log.info(f"bronze {spec.asset_name} {day}: {result.metadata()}")
        context.log_event(
            dg.AssetObservation(
                asset_key=bronze_key(spec),
                description=f"event date {day} rewritten from Kafka",
                metadata={"backfill": dg.MetadataValue.json(result.metadata())},
            )
        )

    return backfill


def build_bronze_backfill_job(specs: list[TableSpec]) -> dg.JobDefinition:
    ops = [_bronze_backfill_op(spec, specs) for spec in specs]

    @dg.job(
        name=BRONZE_BACKFILL_JOB,
        partitions_def=backfill_partitions(),
        description="Rewrite the chosen days of every bronze table from Kafka (Launch backfill over a date range).",
        tags={JOB_TAG: BRONZE_BACKFILL_JOB},
    )
    def bronze_date_backfill():
        for op in ops:
            op()

    return bronze_date_backfill


def _choice(field: str, op_names: dict[str, str]) -> dg.ConfigMapping:
    """Run config `{field: [names]}` (empty: all; Dagster refuses unknown names) -> each op's `chosen` flag."""
    # Dagster keeps config types by name: the name carries the choices, so two sets of specs never clash
    digest = hashlib.sha256(",".join(sorted(op_names)).encode()).hexdigest()[:8]
    names = dg.Enum(f"{field}_{digest}", [dg.EnumValue(name) for name in sorted(op_names)])

    def to_op_config(config: dict) -> dict:
        chosen = set(config[field]) or set(op_names)
        return {"ops": {op: {"config": {"chosen": name in chosen}} for name, op in op_names.items()}}

    return dg.ConfigMapping(
        config_fn=to_op_config,
        config_schema={
            field: dg.Field([names], default_value=[], description=f"the {field} to rebuild; empty: all")
        },
    )


def _silver_rebuild_op(spec: TableSpec) -> dg.OpDefinition:
    @dg.op(
        name=f"rebuild_silver_{spec.asset_name}",
        pool=table_pool(spec),
        description=f"Rebuild silver `{spec.asset_name}` from all of bronze.",
    )
    def rebuild(
        context: dg.OpExecutionContext, config: Chosen, spark: SparkResource, lake: LakeResource
    ) -> None:
        from assets.factory import latest_cut

        if not config.chosen:
            return
        result = rebuild_silver(
            spark.session(lake),
            spec,
            lake.table_path("bronze", spec.asset_name),
            lake.table_path("silver", spec.asset_name),
            latest_cut(context, spec.source),
        )
        context.log.info(f"silver {spec.asset_name} rebuilt: {result}")
        if result.version is not None:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=silver_key(spec),
                    description="rebuilt from bronze",
                    metadata={
                        "rebuilt": True,
                        "silver_version": result.version,
                        "rows": result.rows,
                        "reflects": dg.MetadataValue.json(result.reflects),
                    },
                )
            )

    return rebuild


def _rebuild_job(
    name: str, field: str, ops: dict[str, dg.OpDefinition], description: str
) -> dg.JobDefinition:
    """A job running every op of `ops` ({choice name: op}); run config `{field: [names]}` picks which."""

    @dg.job(
        name=name,
        config=_choice(field, {choice: op.name for choice, op in ops.items()}),
        description=description,
        tags={JOB_TAG: name},
    )
    def rebuild_job():
        for op in ops.values():
            op()

    return rebuild_job


def build_silver_rebuild_job(specs: list[TableSpec]) -> dg.JobDefinition:
    return _rebuild_job(
        SILVER_REBUILD_JOB,
        "tables",
        {spec.asset_name: _silver_rebuild_op(spec) for spec in specs},
        "Rebuild silver tables from bronze (run config `tables`, empty: all); one commit per table.",
    )


def _gold_rebuild_op(entity: GoldEntity) -> dg.OpDefinition:
    @dg.op(
        name=f"rebuild_gold_{entity.name}",
        pool=gold_pool(entity),
        description=f"Recompute gold `{entity.name}` from silver.",
    )
    def rebuild(
        context: dg.OpExecutionContext, config: Chosen, spark: SparkResource, lake: LakeResource
    ) -> None:

        if not config.chosen:
            return
        result = rebuild_gold(
            spark.session(lake),
            entity,
            lake.table_path("gold", entity.name),
            {name: lake.table_path("silver", name) for name in entity.sources},
        )
        context.log.info(f"gold {entity.name} rebuilt: {result}")
        context.log_event(
            dg.AssetMaterialization(
                asset_key=gold_key(entity),
                description="recomputed from silver",
                metadata={
                    "rebuilt": True,
                    "gold_version": result.version,
                    "rows": result.rows,
                    "reflects": dg.MetadataValue.json(result.reflects),
                },
            )
        )

    return rebuild


def build_gold_rebuild_job(entities: list[GoldEntity]) -> dg.JobDefinition:
    return _rebuild_job(
        GOLD_REBUILD_JOB,
        "entities",
        {entity.name: _gold_rebuild_op(entity) for entity in entities},
        "Recompute gold entities from silver (run config `entities`, empty: all); one commit per entity.",
    )


def _projection_rebuild_op(
    projection: ProjectionSpec, tables: list[str], specs_by_name: dict[str, TableSpec]
):
    @dg.op(
        name=f"rebuild_projection_{projection.projection}",
        pool=projection_pool(projection),
        description=f"Rewrite Cassandra projection `{projection.projection}` whole from gold.",
    )
    def rebuild(
        context: dg.OpExecutionContext,
        config: Chosen,
        spark: SparkResource,
        lake: LakeResource,
        cassandra: CassandraResource,
    ) -> None:
        if not config.chosen:
            return
        stats = project_gold(projection, tables, specs_by_name, spark, lake, cassandra, full_refresh=True)
        context.log.info(f"projection {projection.projection} rebuilt: {stats.status} ({stats.reason})")
        if stats.status == "refused":
            raise dg.Failure(f"projection {projection.projection} was not rebuilt: {stats.reason}")
        context.log_event(
            dg.AssetMaterialization(
                asset_key=projection_key(projection),
                description="rewritten whole from gold",
                metadata={"rebuilt": True, **stats.metadata()},
            )
        )

    return rebuild


def build_projection_rebuild_job(
    projections: list[ProjectionSpec], entities: list[GoldEntity], specs: list[TableSpec]
) -> dg.JobDefinition:
    entities_by_name = {entity.name: entity for entity in entities}
    specs_by_name = {spec.asset_name: spec for spec in specs}
    ops = {
        p.projection: _projection_rebuild_op(p, projection_tables(p, entities_by_name), specs_by_name)
        for p in projections
    }
    return _rebuild_job(
        PROJECTION_REBUILD_JOB,
        "projections",
        ops,
        "Rewrite Cassandra projections whole from gold (run config `projections`, empty: all).",
    )


def build_backfill_jobs(
    specs: list[TableSpec], entities: list[GoldEntity], projections: list[ProjectionSpec]
) -> list[dg.JobDefinition]:
    return [
        build_bronze_backfill_job(specs),
        build_silver_rebuild_job(specs),
        build_gold_rebuild_job(entities),
        build_projection_rebuild_job(projections, entities, specs),
    ]
