"""The one factory that turns table specs and gold entities into Dagster assets.

Convention: every `assets/specs/*.yaml` file is one source table (see assets.table_spec). For each
table the factory makes `bronze/<name>` (Kafka -> Delta change log) and `silver/<name>` (current row
per key). Every entity of `transforms/gold/entities.yaml` becomes `gold/<entity>`, downstream of the
silver tables its SQL reads. Nothing here knows a particular table: everything comes from the specs.
"""


from pathlib import Path

import dagster as dg

from assets.gold_spec import GoldEntity, load_gold_entities
from assets.table_spec import TableSpec, load_table_specs
from orchestration.resources import CassandraResource, KafkaResource, LakeResource, SparkResource

SPECS_DIR = Path(__file__).parent / "specs"


class BronzeConfig(dg.Config):
    max_records_per_partition: int = 200_000
    """Cap of Kafka records read per partition in one run; the rest waits for the next run."""


def bronze_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["bronze", spec.asset_name])


def silver_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["silver", spec.asset_name])


def gold_key(entity: GoldEntity) -> dg.AssetKey:
    return dg.AssetKey(["gold", entity.name])


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
        pool=f"table:{spec.asset_name}",
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
                spark.session(),
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


def build_silver_asset(spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=silver_key(spec),
        deps=[bronze_key(spec)],
        group_name="silver",
        description=_description(spec, "silver"),
        kinds={"spark", "delta"},
        pool=f"table:{spec.asset_name}",
        metadata={"source_table": spec.table, "keys": spec.keys, "history": spec.history},
    )
    def silver(context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource) -> dg.MaterializeResult:
        from transforms.silver import apply_new_bronze

        batch = apply_new_bronze(
            spark.session(), spec, lake.table_path("bronze", spec.asset_name), lake.table_path("silver", spec.asset_name)
        )
        stats = batch.stats
        context.log.info(f"silver {spec.asset_name}: bronze versions {batch.bronze_from}..{batch.bronze_to}, {stats}")
        return dg.MaterializeResult(
            metadata={
                "bronze_versions": f"{batch.bronze_from}..{batch.bronze_to}" if batch.bronze_from is not None else "nothing new",
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
            }
        )

    return silver


def build_gold_asset(entity: GoldEntity, specs_by_name: dict[str, TableSpec]) -> dg.AssetsDefinition:
    sources = [specs_by_name[name] for name in entity.sources]

    @dg.asset(
        key=gold_key(entity),
        deps=[silver_key(spec) for spec in sources],
        group_name="gold",
        description=entity.description or f"Gold entity `{entity.name}` ({entity.sql}).",
        kinds={"spark", "delta"},
        pool=f"gold:{entity.name}",
        metadata={"keys": entity.keys, "sql_file": entity.sql, "reads": list(entity.sources)},
    )
    def gold(context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource) -> dg.MaterializeResult:
        from transforms.gold.engine import refresh_entity, register_silver_views, silver_version_map
        from transforms.merge import read_live_rows

        session = spark.session()
        paths = {spec.asset_name: lake.table_path("silver", spec.asset_name) for spec in sources}
        register_silver_views(session, {name: read_live_rows(session, path) for name, path in paths.items()})
        stats = refresh_entity(
            session,
            name=entity.name,
            keys=entity.keys,
            sql_text=entity.sql_text,
            gold_path=lake.table_path("gold", entity.name),
            silver_versions=silver_version_map(session, paths),
        )
        context.log.info(f"gold {entity.name}: {stats}")
        return dg.MaterializeResult(
            metadata={
                "skipped_unchanged_silver": stats.skipped,
                "rows": stats.rows,
                "rows_inserted": stats.inserted,
                "rows_updated": stats.updated,
                "rows_deleted": stats.deleted,
                "silver_versions": stats.silver_versions or {},
            }
        )

    return gold


def build_table_assets(specs: list[TableSpec], entities: list[GoldEntity], projections: list = ()) -> list[dg.AssetsDefinition]:
    by_name = {spec.asset_name: spec for spec in specs}
    entities_by_name = {entity.name: entity for entity in entities}
    return (
        [build_bronze_asset(spec, specs) for spec in specs]
        + [build_silver_asset(spec) for spec in specs]
        + [build_gold_asset(entity, by_name) for entity in entities]
        + [build_projection_asset(p, entities_by_name, by_name) for p in projections]
    )


def load_specs() -> list[TableSpec]:
    return load_table_specs(SPECS_DIR)


def load_entities(specs: list[TableSpec]) -> list[GoldEntity]:
    return load_gold_entities(known_tables={spec.asset_name for spec in specs})


def load_projections(entities: list[GoldEntity]):
    from assets.projection_spec import load_projection_specs

    return load_projection_specs(known_entities={entity.name for entity in entities})


def projection_key(projection) -> dg.AssetKey:
    return dg.AssetKey(["cassandra", projection.projection])


def build_projection_asset(projection, entities_by_name: dict[str, GoldEntity], specs_by_name: dict[str, TableSpec]):
    """`cassandra/<projection>`: the gold entities it reads, written to Cassandra as of their versions."""
    entities = [entities_by_name[name] for name in projection.entities]
    tables = sorted({source for entity in entities for source in entity.sources})

    @dg.asset(
        key=projection_key(projection),
        deps=[gold_key(entity) for entity in entities],
        group_name="projections",
        description=projection.description or f"Cassandra projection `{projection.projection}`.",
        kinds={"cassandra"},
        pool=f"projection:{projection.projection}",
        metadata={"partition_key": projection.partition_key, "latest_n": projection.latest_n or "all"},
    )
    def cassandra_projection(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource, cassandra: CassandraResource
    ) -> dg.MaterializeResult:
        from transforms.projections import project
        from transforms.source_position import TablePaths, reflected_position

        session = spark.session()
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
        stats = project(
            session,
            cassandra.session(),
            projection,
            {entity.name: lake.table_path("gold", entity.name) for entity in entities},
            as_of_us=position.as_of_us,
            kafka_offsets=position.kafka_offsets,
            keyspace=projection.keyspace or cassandra.keyspace,
        )
        context.log.info(f"projection {projection.projection}: {stats.status} ({stats.reason})")
        return dg.MaterializeResult(metadata=stats.metadata())

    return cassandra_projection
