"""The one factory that turns table specs into Dagster assets.

Convention: every `assets/specs/*.yaml` file is one source table (see assets.table_spec). For each
table the factory makes `bronze/<name>` (Kafka -> Delta change log) and `silver/<name>` (current row
per key). Nothing here knows a particular table: everything comes from the spec.
"""


from pathlib import Path

import dagster as dg

from assets.table_spec import TableSpec, load_table_specs
from orchestration.resources import KafkaResource, LakeResource, SparkResource

SPECS_DIR = Path(__file__).parent / "specs"


class BronzeConfig(dg.Config):
    max_records_per_partition: int = 200_000
    """Cap of Kafka records read per partition in one run; the rest waits for the next run."""


def bronze_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["bronze", spec.asset_name])


def silver_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["silver", spec.asset_name])


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


def build_table_assets(specs: list[TableSpec]) -> list[dg.AssetsDefinition]:
    return [build_bronze_asset(spec, specs) for spec in specs]


def load_specs() -> list[TableSpec]:
    return load_table_specs(SPECS_DIR)
