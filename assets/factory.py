"""The one factory that turns table specs and gold entities into Dagster assets.

Convention: every `assets/specs/*.yaml` file is one source table (see assets.table_spec). For each
table the factory makes `bronze/<name>` (Kafka -> Delta change log) and `silver/<name>` (current row
per key). Every entity of `assets/gold/entities.yaml` becomes `gold/<entity>`, downstream of the
silver tables its SQL reads. Nothing here knows a particular table: everything comes from the specs.
"""

import os
from pathlib import Path

import dagster as dg

from assets.gold_spec import GoldEntity, load_gold_entities
from assets.names import (
    bronze_key,
    cut_key,
    gold_key,
    gold_pool,
    projection_key,
    projection_pool,
    silver_key,
    table_pool,
)
from assets.table_spec import load_table_specs
from resources.connections import CassandraResource, KafkaResource, LakeResource, SparkResource
from transforms.specs.table import TableSpec

SPECS_DIR = Path(__file__).parent / "specs"


class BronzeConfig(dg.Config):
    max_records_per_partition: int = 200_000
    """Cap of Kafka records read per partition in one run; the rest waits for the next run."""


def _description(spec: TableSpec, layer: str) -> str:
    what = {
        "bronze": f"Append-only change log of `{spec.table}` from Kafka topic `{spec.topic}` ({spec.format}).",
        "silver": f"Current row per key {spec.keys} of `{spec.table}` ({spec.history}).",
    }[layer]
    return f"{what}\n\n{spec.description or ''}".strip()


def build_bronze_asset(spec: TableSpec, all_specs: list[TableSpec]) -> dg.AssetsDefinition:
    other_tables = frozenset(s.table for s in all_specs if s.topic == spec.topic and s.table != spec.table)

    @dg.asset(
        key=bronze_key(spec),
        group_name="bronze",
        description=_description(spec, "bronze"),
        kinds={"kafka", "delta"},
        pool=table_pool(spec),
        metadata={"source_table": spec.table, "topic": spec.topic, "format": spec.format},
    )
    def bronze(
        context: dg.AssetExecutionContext,
        config: BronzeConfig,
        kafka: KafkaResource,
        spark: SparkResource,
        lake: LakeResource,
    ) -> dg.MaterializeResult:
        from transforms.bronze.ingest import ingest_batch
        from transforms.bronze.kafka_reader import make_consumer
        from transforms.bronze.lag import bronze_group_id

        consumer = make_consumer(kafka.client_config(), group_id=bronze_group_id(spec.asset_name))
        try:
            batch = ingest_batch(
                spark.session(lake),
                spec,
                consumer,
                lake.table_path("bronze", spec.asset_name),
                lake.table_path("quarantine", spec.asset_name),
                max_records_per_partition=config.max_records_per_partition,
                other_tables_on_topic=other_tables,
            )
        finally:
            consumer.close()
        context.log.info(
            f"bronze {spec.asset_name}: batch {batch.batch}, read {batch.records_read}, "
            f"wrote {batch.rows_written}, quarantined {batch.quarantined}"
        )
        return dg.MaterializeResult(
            metadata={
                "batch": batch.batch if batch.batch is not None else "nothing new",
                "records_read": batch.records_read,
                "rows_written": batch.rows_written,
                "quarantined": batch.quarantined,
                "quarantine_reasons": dict(batch.quarantine_reasons),
                "resumed_interrupted_batch": batch.resumed,
                "offsets_before": {str(k): v for k, v in batch.offsets_before().items()},
                "offsets_after": {str(k): v for k, v in batch.offsets_after().items()},
                "lag_remaining": sum(batch.lag_remaining.values()),
            }
        )

    return bronze


def build_cut_asset(source: str, specs: list[TableSpec]) -> dg.AssetsDefinition:
    """`cut/<source>`: the transaction-consistent position every table of the source has reached."""

    @dg.asset(
        key=cut_key(source),
        deps=[bronze_key(spec) for spec in specs],
        group_name="bronze",
        description=(
            f"Transaction-consistent cut across the bronze tables of source `{source}`: silver applies only "
            "the changes below it, so no run shows half a transaction or a child before its parent "
            "(see transforms/cut.py; CDC_CUT_IDLE_SECONDS)."
        ),
        kinds={"kafka", "delta"},
    )
    def cut(
        context: dg.AssetExecutionContext, kafka: KafkaResource, spark: SparkResource, lake: LakeResource
    ):
        import time

        from transforms.bronze.frontier import bronze_frontiers
        from transforms.bronze.kafka_reader import make_consumer, watermarks
        from transforms.cut import consistent_cut, idle_seconds_from_env
        from transforms.sequence import decode_sequence

        consumer = make_consumer(kafka.client_config(), group_id=f"cdc-lakehouse.cut.{source}")
        try:
            frontiers = [
                frontier
                for spec in specs
                for frontier in bronze_frontiers(
                    spark.session(lake),
                    lake.table_path("bronze", spec.asset_name),
                    spec.topic,
                    watermarks(consumer, spec.topic),
                )
            ]
        finally:
            consumer.close()
        cut = consistent_cut(frontiers, now_ms=int(time.time() * 1000), idle_seconds=idle_seconds_from_env())
        shown = (
            "none (every partition idle)"
            if cut.position is None
            else ("nothing yet" if not cut.position else str(decode_sequence(cut.position)[0]))
        )
        context.log.info(f"cut {source}: below commit position {shown}, held by {list(cut.held_by)}")
        return dg.MaterializeResult(
            metadata={
                CUT_METADATA: dg.MetadataValue.json({"position": cut.position, "held_by": list(cut.held_by)}),
                "below_commit_position": shown,
                "held_by": ", ".join(cut.held_by) or "-",
                "partitions": len(frontiers),
            }
        )

    return cut


CUT_METADATA = "cut"


def latest_cut(context: dg.AssetExecutionContext, source: str):
    """The cut last materialized for `source` (None: none yet, so no bound)."""
    from transforms.cut import Cut

    event = context.instance.get_latest_materialization_event(cut_key(source))
    if event is None or event.asset_materialization is None:
        return None
    recorded = event.asset_materialization.metadata[CUT_METADATA].value
    return Cut(recorded["position"], tuple(recorded["held_by"]))


def build_silver_asset(spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=silver_key(spec),
        deps=[bronze_key(spec), cut_key(spec.source)],
        group_name="silver",
        description=_description(spec, "silver"),
        kinds={"spark", "delta"},
        pool=table_pool(spec),
        metadata={"source_table": spec.table, "keys": spec.keys, "history": spec.history},
    )
    def silver(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        from transforms.silver import apply_new_bronze

        cut = latest_cut(context, spec.source)
        batch = apply_new_bronze(
            spark.session(lake),
            spec,
            lake.table_path("bronze", spec.asset_name),
            lake.table_path("silver", spec.asset_name),
            cut,
        )
        stats = batch.stats
        context.log.info(
            f"silver {spec.asset_name}: bronze versions {batch.bronze_from}..{batch.bronze_to}, {stats}"
        )
        return dg.MaterializeResult(
            metadata={
                "bronze_versions": f"{batch.bronze_from}..{batch.bronze_to}"
                if batch.bronze_from is not None
                else "nothing new",
                "changes_read": stats.changes_read,
                "rows_inserted": stats.rows_inserted,
                "rows_updated": stats.rows_updated,
                "rows_deleted": stats.rows_deleted,
                "changes_without_effect": stats.keys_without_effect,
                "duplicates": stats.duplicates,
                "incomplete_rows": stats.incomplete_rows,
                "position_ties": stats.position_ties,
                "new_columns": list(stats.new_columns),
                "silver_version": stats.table_version if stats.table_version is not None else "unchanged",
                "cut": "none" if cut is None or cut.position is None else ", ".join(cut.held_by),
            }
        )

    return silver


def build_gold_asset(entity: GoldEntity, specs_by_name: dict[str, TableSpec]) -> dg.AssetsDefinition:
    sources = [specs_by_name[name] for name in entity.sources]

    @dg.asset(
        key=gold_key(entity),
        deps=[silver_key(spec) for spec in sources],
        group_name="gold",
        description=entity.description or f"Gold entity `{entity.name}` ({entity.sql_file}).",
        kinds={"spark", "delta"},
        pool=gold_pool(entity),
        metadata={
            "keys": entity.keys,
            "sql_file": entity.sql_file,
            "reads": list(entity.sources),
            "incremental": entity.affected_keys is not None,
        },
    )
    def gold(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        from transforms.gold.engine import (
            SKIPPED,
            GoldStats,
            refresh_entity,
            register_silver_views,
            silver_version_map,
            up_to_date,
        )
        from transforms.merge import read_live_rows

        session = spark.session(lake)
        paths = {spec.asset_name: lake.table_path("silver", spec.asset_name) for spec in sources}
        gold_path = lake.table_path("gold", entity.name)
        # Versions first, rows second: the views hold at least the versions recorded, and whatever
        # silver commits in between is read again (from its change data feed) by the next run.
        versions = silver_version_map(session, paths)
        unwritten = sorted(name for name, version in versions.items() if version is None)
        if unwritten:
            # A silver table nothing has been written to yet (its source has sent no change so far):
            # the entity waits for its first rows instead of failing on a table that is not there.
            stats = GoldStats(SKIPPED, silver_versions=versions)
            return gold_materialization(context, stats, waiting_for=[f"silver/{name}" for name in unwritten])
        if up_to_date(session, gold_path, entity.sql_text, versions):  # no silver table read
            return gold_materialization(context, GoldStats(SKIPPED, silver_versions=versions))
        register_silver_views(session, {name: read_live_rows(session, path) for name, path in paths.items()})
        stats = refresh_entity(
            session,
            name=entity.name,
            keys=entity.keys,
            sql_text=entity.sql_text,
            gold_path=gold_path,
            silver_versions=versions,
            silver_paths=paths,
            affected_keys=entity.affected_keys,
        )
        return gold_materialization(context, stats)

    def gold_materialization(
        context: dg.AssetExecutionContext, stats, waiting_for: list[str] | None = None
    ) -> dg.MaterializeResult:
        waiting = f", waiting for the first rows of {', '.join(waiting_for)}" if waiting_for else ""
        context.log.info(f"gold {entity.name}: {stats}{waiting}")
        metadata = {
            "mode": stats.mode,
            "full_recompute_reason": stats.reason or "-",
            "keys_recomputed": stats.keys_recomputed,
            "rows_inserted": stats.inserted,
            "rows_updated": stats.updated,
            "rows_deleted": stats.deleted,
            "silver_versions": stats.silver_versions or {},
        }
        if waiting_for:
            metadata["waiting_for"] = waiting_for
        return dg.MaterializeResult(metadata=metadata)

    return gold


def build_assets(
    specs: list[TableSpec], entities: list[GoldEntity], projections: list = ()
) -> list[dg.AssetsDefinition]:
    by_name = {spec.asset_name: spec for spec in specs}
    entities_by_name = {entity.name: entity for entity in entities}
    return (
        [build_bronze_asset(spec, specs) for spec in specs]
        + [
            build_cut_asset(source, [s for s in specs if s.source == source])
            for source in sorted({s.source for s in specs})
        ]
        + [build_silver_asset(spec) for spec in specs]
        + [build_gold_asset(entity, by_name) for entity in entities]
        + [build_projection_asset(p, entities_by_name, by_name) for p in projections]
    )


def load_specs() -> list[TableSpec]:
    """The table specs of `$CDC_SPECS_DIR` if set (gold entities still read the tables they name), else
    the shipped ones."""
    return load_table_specs(Path(os.environ.get("CDC_SPECS_DIR") or SPECS_DIR))


def load_entities(specs: list[TableSpec]) -> list[GoldEntity]:
    """The gold entities `specs` feed: those whose silver tables all have a spec among them (a test or a
    deployment may run one source's tables only, e.g. with $CDC_SPECS_DIR). An entity's SQL may read only
    tables that a spec defines, given or shipped: a misspelled table is an error, never a silently
    missing entity."""
    given = {spec.asset_name for spec in specs}
    known = given | {spec.asset_name for spec in load_table_specs(SPECS_DIR)}
    return [entity for entity in load_gold_entities(known_tables=known) if set(entity.sources) <= given]


def load_projections(entities: list[GoldEntity]):
    """The projections `entities` feed (all of the gold entities each reads are among them); a
    projection may read only the shipped entities."""
    from assets.projection_spec import load_projection_specs

    given = {entity.name for entity in entities}
    known = given | {entity.name for entity in load_gold_entities()}
    return [p for p in load_projection_specs(known_entities=known) if set(p.entities) <= given]


def projection_tables(projection, entities_by_name: dict[str, GoldEntity]) -> list[str]:
    """The silver tables a projection reflects (through the gold entities it reads)."""
    return sorted({source for name in projection.entities for source in entities_by_name[name].sources})


def project_gold(
    projection,
    tables: list[str],
    specs_by_name: dict[str, TableSpec],
    spark: SparkResource,
    lake: LakeResource,
    cassandra: CassandraResource,
    full_refresh: bool = False,
):
    """Write a projection's gold entities to Cassandra, as of the source position their silver tables
    reflect (transforms.projections.project; `full_refresh`: rewrite it whole)."""
    from transforms.projections import already_projected, project
    from transforms.source_position import TablePaths, reflected_position

    session = spark.session(lake)
    gold_paths = {entity: lake.table_path("gold", entity) for entity in projection.entities}
    keyspace = projection.keyspace or cassandra.keyspace
    if not full_refresh:
        unchanged = already_projected(session, cassandra.session(), projection, gold_paths, keyspace)
        if unchanged is not None:
            return unchanged
    position = reflected_position(
        session,
        {
            name: TablePaths(
                specs_by_name[name].topic, lake.table_path("bronze", name), lake.table_path("silver", name)
            )
            for name in tables
        },
    )
    if position.as_of_us is None:
        raise dg.Failure(f"projection {projection.projection}: its silver tables {tables} hold no change yet")
    return project(
        session,
        cassandra.session(),
        projection,
        gold_paths,
        as_of_us=position.as_of_us,
        kafka_offsets=position.kafka_offsets,
        keyspace=keyspace,
        full_refresh=full_refresh,
    )


def build_projection_asset(
    projection, entities_by_name: dict[str, GoldEntity], specs_by_name: dict[str, TableSpec]
):
    """`cassandra/<projection>`: the gold entities it reads, written to Cassandra as of their versions."""
    entities = [entities_by_name[name] for name in projection.entities]
    tables = projection_tables(projection, entities_by_name)

    @dg.asset(
        key=projection_key(projection),
        deps=[gold_key(entity) for entity in entities],
        group_name="projections",
        description=projection.description or f"Cassandra projection `{projection.projection}`.",
        kinds={"cassandra"},
        pool=projection_pool(projection),
        metadata={"partition_key": projection.partition_key, "latest_n": projection.latest_n or "all"},
    )
    def cassandra_projection(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        cassandra: CassandraResource,
    ) -> dg.MaterializeResult:
        from transforms.delta_commits import current_version

        session = spark.session(lake)
        unwritten = [
            e for e in projection.entities if current_version(session, lake.table_path("gold", e)) is None
        ]
        if unwritten:  # see the gold asset: its entities wait for their silver tables' first rows
            waiting_for = [f"gold/{entity}" for entity in unwritten]
            context.log.info(
                f"projection {projection.projection}: waiting for the first rows of {waiting_for}"
            )
            return dg.MaterializeResult(metadata={"status": "waiting", "waiting_for": waiting_for})
        stats = project_gold(projection, tables, specs_by_name, spark, lake, cassandra)
        context.log.info(f"projection {projection.projection}: {stats.status} ({stats.reason})")
        return dg.MaterializeResult(metadata=stats.metadata())

    return cassandra_projection
