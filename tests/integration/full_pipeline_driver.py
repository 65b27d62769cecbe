"""One run of the whole asset graph (bronze, cut, silver, gold, every check, Cassandra projections) in
its own process, configured only from the environment as a deployment is (resources_from_env:
CDC_KAFKA_BOOTSTRAP, CDC_LAKE_ROOT, CDC_S3_*, CDC_SPARK_MASTER, CDC_CASSANDRA_*).

    python -m tests.integration.full_pipeline_driver <topic prefix> [--rebuild-projections]

Prints one JSON line: whether the run succeeded, the check evaluations, the materialized assets, the
Spark master, application id and number of executors; with --rebuild-projections, then runs the
`rebuild_projections` job and adds what each of its ops did.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from assets.factory import build_assets, load_entities, load_projections
from expectations.checks import build_asset_checks
from orchestration.backfills import build_projection_rebuild_job
from resources.connections import resources_from_env
from tests.pipeline import specs_on_topics


def _root_cause(error) -> str:
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:1500]


def _rebuild_projections(specs, entities, projections) -> dict:
    job = build_projection_rebuild_job(projections, entities, specs)
    result = job.execute_in_process(resources=resources_from_env(), raise_on_error=False)
    return {
        "success": result.success,
        "rebuilt": {
            event.asset_key.to_user_string(): {
                key: value.value
                for key, value in event.event_specific_data.materialization.metadata.items()
                if key in ("status", "full_refresh", "rows_written", "partitions_cleared")
            }
            for event in result.get_asset_materialization_events()
        },
    }


def main(prefix: str, rebuild_projections: bool) -> None:
    specs = specs_on_topics(prefix)
    entities = load_entities(specs)
    projections = load_projections(entities)
    assets = build_assets(specs, entities, projections)
    checks = build_asset_checks(assets=assets)
    result = dg.materialize([*assets, *checks], resources=resources_from_env(), raise_on_error=False)
    context = resources_from_env()["spark"].session().sparkContext
    block_managers = context._jsc.sc().getExecutorMemoryStatus().size()  # the driver's among them
    rebuild = (
        _rebuild_projections(specs, entities, projections) if rebuild_projections and result.success else None
    )
    print(
        json.dumps(
            {
                "rebuild_projections": rebuild,
                "success": result.success,
                "spark_master": context.master,
                "spark_application": context.applicationId,
                "executors": block_managers - 1,
                "failures": [
                    f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
                    for event in result.all_events
                    if event.is_step_failure and event.step_failure_data.error is not None
                ],
                "materialized": sorted(
                    e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
                ),
                "checks": [
                    {
                        "check": f"{e.asset_key.to_user_string()}:{e.check_name}",
                        "passed": e.passed,
                        "severity": e.severity.value,
                    }
                    for e in result.get_asset_check_evaluations()
                ],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], "--rebuild-projections" in sys.argv[2:])
