"""expectations.reuse without servers: when a recorded check result may be reported again, and how."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from expectations.reuse import INPUTS, REUSED_FROM_RUN, reusable, reused_result, suite_inputs, tables_of
from expectations.suite import Suite

SUITE = Suite.model_validate(
    {
        "asset": "silver/s_addr_per",
        "keys": ["ROW_ID"],
        "expectations": [
            {
                "name": "key_not_null",
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "ROW_ID"},
            },
            {"name": "fresh", "freshness": {"column": "_commit_ts", "max_lag": "1d"}, "severity": "WARN"},
            {"name": "contact_exists", "references": {"to": "silver.s_contact", "on": {"PER_ID": "ROW_ID"}}},
        ],
    }
)
KEY = dg.AssetKey(["silver", "s_addr_per"])


def evaluation(name: str, passed: bool, **metadata) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=KEY,
        check_name=name,
        passed=passed,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{name} recorded",
    )


def expectation(name: str):
    return next(e for e in SUITE.expectations if e.name == name)


def test_inputs_name_the_suite_and_the_version_of_every_table_it_reads():
    versions = {"/lake/silver/s_addr_per": 7, "/lake/silver/s_contact": None}
    inputs = suite_inputs(SUITE, lambda layer, name: f"/lake/{layer}/{name}", versions.get)
    assert inputs["tables"] == {"silver/s_addr_per": 7, "silver/s_contact": None}
    assert len(inputs["suite_sha256"]) == 64
    other = SUITE.model_copy(update={"keys": ["PER_ID"]})
    assert suite_inputs(other, lambda layer, name: f"/lake/{layer}/{name}", versions.get) != inputs


def test_a_quarantine_suite_depends_on_its_bronze_and_quarantine_tables():
    suite = Suite.model_validate(
        {
            "asset": "bronze/s_order",
            "data": "last_batch_quarantine",
            "expectations": [
                {"name": "few", "type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 10}}
            ],
        }
    )
    assert tables_of(suite) == [("bronze", "s_order"), ("quarantine", "s_order")]


def test_only_a_result_of_the_same_inputs_without_error_is_reusable():
    inputs = {"suite_sha256": "a", "tables": {"silver/s_addr_per": 7}}
    assert reusable(evaluation("key_not_null", True, **{INPUTS: dg.MetadataValue.json(inputs)}), inputs)
    moved = {"suite_sha256": "a", "tables": {"silver/s_addr_per": 8}}
    assert not reusable(evaluation("key_not_null", True, **{INPUTS: dg.MetadataValue.json(inputs)}), moved)
    assert not reusable(evaluation("key_not_null", True), inputs)  # recorded before inputs were
    failed = evaluation("key_not_null", False, error="boom", **{INPUTS: dg.MetadataValue.json(inputs)})
    assert not reusable(failed, inputs)


def test_a_reused_result_keeps_verdict_and_metadata_and_names_the_run_that_computed_it():
    recorded = evaluation("key_not_null", False, unexpected_count=3)
    result = reused_result(recorded, "run-1", expectation("key_not_null"))
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert result.metadata["unexpected_count"] == dg.MetadataValue.int(3)
    assert result.metadata[REUSED_FROM_RUN].value == "run-1"
    assert result.description == "key_not_null recorded (reused: tables unchanged since run run-1)"

    again = dg.AssetCheckEvaluation(
        asset_key=KEY,
        check_name="key_not_null",
        passed=False,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
    )
    twice = reused_result(again, "run-2", expectation("key_not_null"))
    assert twice.metadata[REUSED_FROM_RUN].value == "run-1"  # still the run that computed it
    assert twice.description == result.description


def test_freshness_is_judged_again_against_the_current_time():
    recorded = evaluation("fresh", True, observed_value="2026-06-01 12:00:00")
    assert reused_result(recorded, "run-1", expectation("fresh"), now=datetime(2026, 6, 2, 11, 0)).passed
    late = reused_result(recorded, "run-1", expectation("fresh"), now=datetime(2026, 6, 2, 12, 0, 1))
    assert not late.passed
    assert "fresh FAILED; observed 2026-06-01 12:00:00" in late.description


def test_a_freshness_value_that_cannot_be_read_is_not_reused():
    recorded = evaluation("fresh", True, observed_value="yesterday")
    assert reused_result(recorded, "run-1", expectation("fresh")) is None
