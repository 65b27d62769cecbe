"""Test helpers: run the real asset graph against the test stack, and compare silver with the truth."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg

from assets.factory import build_table_assets, load_entities, load_specs
from assets.table_spec import TableSpec
from orchestration.resources import CassandraResource, KafkaResource, LakeResource, SparkResource


def specs_on_topics(prefix: str) -> list[TableSpec]:
    """The project's CRM specs, reading topics `<prefix>.<TABLE>` (so tests never share topics)."""
    return [spec.model_copy(update={"topic": f"{prefix}.{spec.table.split('.')[-1]}"}) for spec in load_specs()]


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def resources(kafka_bootstrap: str, lake: Path, cassandra_port: int | None = None) -> dict:
    result = {
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap),
        "spark": SparkResource(),
        "lake": LakeResource(root=str(lake)),
    }
    if cassandra_port is not None:
        result["cassandra"] = CassandraResource(contact_points=["127.0.0.1"], port=cassandra_port)
    return result


def materialize_all(specs: list[TableSpec], res: dict, selection: str | None = None) -> dg.ExecuteInProcessResult:
    assets = build_table_assets(specs, load_entities(specs))
    return dg.materialize(assets, resources=res, selection=selection, raise_on_error=True)


def typed(value: str | None, type_name: str):
    """A truth value (source text) as the Python value of a silver column of `type_name`."""
    if value is None:
        return None
    if type_name.startswith("decimal"):
        return Decimal(value)
    if type_name in ("long", "int"):
        return int(Decimal(value))
    if type_name == "timestamp":
        return datetime.fromisoformat(value.replace(":", " ", 1) if value[10:11] == ":" else value)
    if type_name == "date":
        return date.fromisoformat(value[:10])
    if type_name == "double":
        return float(value)
    return value


def silver_rows(spark, path: str, spec: TableSpec) -> dict[str, dict]:
    from transforms.merge import read_live_rows

    frame = read_live_rows(spark, path)
    users = [c for c in frame.columns if not c.startswith("_")]
    rows = {}
    for row in frame.select(*users).collect():
        values = row.asDict()
        values = {k: (Decimal(v).normalize() if isinstance(v, Decimal) else v) for k, v in values.items()}
        rows[values[spec.keys[0]]] = values
    return rows


def truth_rows(truth: dict[str, dict], spec: TableSpec) -> dict[str, dict]:
    rows = {}
    for row_id, row in truth.items():
        converted = {}
        for column, value in row.items():
            v = typed(value, spec.columns.get(column, "string"))
            converted[column] = v.normalize() if isinstance(v, Decimal) else v
        rows[row_id] = converted
    return rows
