"""One run of the whole asset graph (bronze, cut, silver, gold, every check, Cassandra projections) in
its own process, configured only from the environment as a deployment is (resources_from_env:
CDC_KAFKA_BOOTSTRAP, CDC_LAKE_ROOT, CDC_S3_*, CDC_SPARK_MASTER, CDC_CASSANDRA_*).

    python -m tests.integration.full_pipeline_driver <topic prefix>

Prints one JSON line: whether the run succeeded, the check evaluations, the materialized assets.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from assets.factory import build_table_assets, load_entities, load_projections
from expectations.checks import build_asset_checks
from orchestration.resources import resources_from_env
from tests.pipeline import specs_on_topics


def _root_cause(error) -> str:
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:1500]


def main(prefix: str) -> None:
    specs = specs_on_topics(prefix)
    entities = load_entities(specs)
    assets = build_table_assets(specs, entities, load_projections(entities))
    checks = build_asset_checks(asset_keys=[key for asset in assets for key in asset.keys])
    result = dg.materialize([*assets, *checks], resources=resources_from_env(), raise_on_error=False)
    spark_master = resources_from_env()["spark"].session().sparkContext.master
    print(
        json.dumps(
            {
                "success": result.success,
                "spark_master": spark_master,
                "failures": [
                    f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
                    for event in result.all_events
                    if event.is_step_failure and event.step_failure_data.error is not None
                ],
                "materialized": sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events()),
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
    main(sys.argv[1])
