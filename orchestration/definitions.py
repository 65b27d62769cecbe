"""The Dagster entry point (loaded by workspace.yaml): it only assembles what the other modules build."""

from __future__ import annotations

import dagster as dg

from assets.factory import build_table_assets, load_entities, load_projections, load_specs
from expectations.checks import build_asset_checks
from orchestration.automation import build_lag_sensor, microbatch_job, microbatch_schedule
from orchestration.backfills import build_backfill_jobs
from orchestration.resources import resources_from_env

specs = load_specs()
entities = load_entities(specs)
projections = load_projections(entities)
assets = build_table_assets(specs, entities, projections)

defs = dg.Definitions(
    assets=assets,
    asset_checks=build_asset_checks(asset_keys=[key for a in assets for key in a.keys]),
    jobs=[microbatch_job, *build_backfill_jobs(specs, entities, projections)],
    schedules=[microbatch_schedule],
    sensors=[build_lag_sensor(specs)],
    resources=resources_from_env(),
    # one process and one Spark session per run (the UI's launches, backfills and rebuilds too): a JVM
    # per step would cost more than the steps themselves
    executor=dg.in_process_executor,
)
