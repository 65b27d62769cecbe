"""What the platform's assets and pools are called: the one place that builds an asset key or a pool
name, so the factory, the checks, the backfill jobs and the loop's selection cannot drift apart.

Asset keys are `[<layer>, <name>]`: bronze/silver/<table>, cut/<source>, gold/<entity>,
cassandra/<projection>. Pools (orchestration/dagster.yaml limits each to 1) keep one writer per table:
`table:<table>` for bronze, silver and their backfills, `gold:<entity>`, `projection:<projection>`.
"""

from __future__ import annotations

import dagster as dg

from assets.gold_spec import GoldEntity
from transforms.specs.projection import ProjectionSpec
from transforms.specs.table import TableSpec


def asset_key(layer: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([layer, name])


def bronze_key(spec: TableSpec) -> dg.AssetKey:
    return asset_key("bronze", spec.asset_name)


def silver_key(spec: TableSpec) -> dg.AssetKey:
    return asset_key("silver", spec.asset_name)


def cut_key(source: str) -> dg.AssetKey:
    return asset_key("cut", source)


def gold_key(entity: GoldEntity) -> dg.AssetKey:
    return asset_key("gold", entity.name)


def projection_key(projection: ProjectionSpec) -> dg.AssetKey:
    return asset_key("cassandra", projection.projection)


def table_pool(spec: TableSpec) -> str:
    return f"table:{spec.asset_name}"


def gold_pool(entity: GoldEntity) -> str:
    return f"gold:{entity.name}"


def projection_pool(projection: ProjectionSpec) -> str:
    return f"projection:{projection.projection}"
