"""Test helpers: run the real asset graph against the test stack."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg

from assets.factory import build_assets, load_entities, load_specs
from devtools.source_specs import write_source_specs
from devtools.workload import Workload, WorkloadConfig, generate_workload
from devtools.workload.producer import produce_messages
from resources.connections import CassandraResource, KafkaResource, LakeResource, SparkResource
from transforms.specs.table import TableSpec


def crm_specs() -> list[TableSpec]:
    """The project's specs of the CRM, the source the CRM workload generator simulates (the order
    service's tables are tested with their own workload: tests/integration/test_make_run.py)."""
    return [spec for spec in load_specs() if spec.source == "crm"]


def specs_on_topics(prefix: str) -> list[TableSpec]:
    """The project's CRM specs, reading topics `<prefix>.<TABLE>` (so tests never share topics)."""
    return [
        spec.model_copy(update={"topic": f"{prefix}.{spec.table.split('.')[-1]}"}) for spec in crm_specs()
    ]


def crm_specs_folder(folder: Path) -> Path:
    """A specs folder (for $CDC_SPECS_DIR) holding the shipped CRM specs and their source file only: a
    test that runs the project's definitions on a CRM workload leaves the order service's tables out."""
    write_source_specs(folder / "crm_specs", "crm")
    return folder / "crm_specs"


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def small_crm_workload(prefix: str) -> Workload:
    """The small CRM workload of the whole-flow tests (40 initial rows, 150 change transactions, an initial
    load overlapping the stream) on topics `<prefix>.<TABLE>`."""
    config = WorkloadConfig(
        seed=5, initial_rows=40, changes=150, initial_load=True, overlap=3, topic_template=prefix + ".{table}"
    )
    return generate_workload(config)


def produce_small_crm_workload(kafka_bootstrap: str, prefix: str) -> Workload:
    """small_crm_workload, produced over 3 partitions."""
    workload = small_crm_workload(prefix)
    produce_messages(kafka_bootstrap, workload.messages, partitions=3)
    return workload


def resources(kafka_bootstrap: str, lake: Path, cassandra_port: int | None = None) -> dict:
    result = {
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap),
        "spark": SparkResource(),
        "lake": LakeResource(root=str(lake)),
    }
    if cassandra_port is not None:
        result["cassandra"] = CassandraResource(contact_points=["127.0.0.1"], port=cassandra_port)
    return result


def materialize_all(
    specs: list[TableSpec], res: dict, selection: str | None = None
) -> dg.ExecuteInProcessResult:
    assets = build_assets(specs, load_entities(specs))
    return dg.materialize(assets, resources=res, selection=selection, raise_on_error=True)


def error_text(error) -> str:
    """A Dagster step failure's error (SerializableErrorInfo) with its causes, one message a line."""
    text = []
    while error is not None:
        text.append(error.message)
        error = error.cause
    return "\n".join(text)
