"""The Dagster entry point (loaded by workspace.yaml): it only assembles what the other modules build."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from assets.factory import build_assets, load_entities, load_projections, load_specs
from expectations.checks import build_asset_checks
from expectations.suite import load_suites
from orchestration.automation import build_lag_sensor, microbatch_job, microbatch_schedule
from orchestration.backfills import build_backfill_jobs
from orchestration.threaded_executor import threaded_executor
from resources.connections import resources_from_env
from transforms.specs.table import TableSpec


def build_definitions(specs: list[TableSpec], resources: Mapping[str, object]) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor of `specs` (tests build them on their own topics
    and resources)."""
    entities = load_entities(specs)
    projections = load_projections(entities)
    assets = build_assets(specs, entities, projections)
    return dg.Definitions(
        assets=assets,
        # one op per suite (the defaults of `specs` and `entities` with the suite files); `assets` tells
        # each suite which tables it reads are not upstream of it
        asset_checks=build_asset_checks(load_suites(specs=specs, entities=entities), assets=assets),
        jobs=[microbatch_job, *build_backfill_jobs(specs, entities, projections)],
        schedules=[microbatch_schedule],
        sensors=[build_lag_sensor(specs)],
        resources=dict(resources),
        # one process and one SparkContext per run (the UI's launches, backfills and rebuilds too), its
        # independent steps at once in threads: a JVM per step would cost more than the steps themselves
        executor=threaded_executor,
    )


specs = load_specs()
entities = load_entities(specs)
projections = load_projections(entities)
defs = build_definitions(specs, resources_from_env())
