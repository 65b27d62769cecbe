"""A check result that can be reported again: the same suite, on the same table versions.

An expectation's outcome depends only on the suite's text and on the Delta versions of the tables the
suite reads; freshness also depends on the clock. Every check result records those inputs (metadata
`inputs`: the suite's sha256 and the version of each table read). When the newest completed
evaluation of a check recorded exactly the inputs the suite would read now, the check is not run
again: its result is reported again, with `reused_from_run` naming the run that computed it. So a run
in which a table did not change costs its checks no Spark job.

Freshness is judged again against the current time from the newest value it recorded (the table is
at the same version, so its newest value is the same). A result that recorded an error is never
reused. Versions are read before the data, so a table that moves during a validation is simply
validated again next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg

from expectations.data import TablePath
from expectations.suite import ExpectationSpec, Suite

INPUTS = "inputs"
REUSED_FROM_RUN = "reused_from_run"
# executions looked at for the newest evaluation: the current run's planned one comes first, and a
# run that ended before its checks leaves a planned one too
LOOK_BACK = 5


def tables_of(suite: Suite) -> list[tuple[str, str]]:
    """Every lake table the suite's outcome depends on: (layer, name)."""
    own = (
        [("bronze", suite.table), ("quarantine", suite.table)]
        if suite.data == "last_batch_quarantine"
        else [(suite.layer, suite.table)]
    )
    return sorted({*own, *suite.tables_read()})


def suite_inputs(
    suite: Suite, table_path: TablePath, version_of: Callable[[str], int | None]
) -> dict[str, Any]:
    """What the suite's outcome depends on, as recorded in each result: its sha256 and, per table,
    its current Delta version (None: no table)."""
    return {
        "suite_sha256": hashlib.sha256(suite.model_dump_json().encode("utf-8")).hexdigest(),
        "tables": {
            f"{layer}/{name}": version_of(table_path(layer, name)) for layer, name in tables_of(suite)
        },
    }


def previous_evaluation(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    """(evaluation, run id) of the check's newest evaluation among its last executions; None if none."""
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=LOOK_BACK):
        event = record.event.dagster_event if record.event is not None else None
        if event is not None and event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            return event.event_specific_data, record.run_id
    return None


def reusable(evaluation, inputs: dict[str, Any]) -> bool:
    metadata = evaluation.metadata
    recorded = metadata.get(INPUTS)
    return recorded is not None and recorded.value == inputs and "error" not in metadata


def freshness_verdict(evaluation, expectation: ExpectationSpec, now: datetime | None = None) -> bool | None:
    """Whether a freshness expectation passes at `now` (default: the current local time) from the newest
    value its evaluation recorded; None when there is none to read."""
    if expectation.freshness is None or "observed_value" not in evaluation.metadata:
        return None
    try:
        newest = datetime.fromisoformat(str(evaluation.metadata["observed_value"].value))
    except ValueError:
        return None
    return newest >= (now or datetime.now()) - expectation.freshness.lag


def reused_result(
    evaluation, run_id: str, expectation: ExpectationSpec, now: datetime | None = None
) -> dg.AssetCheckResult | None:
    """The evaluation reported again (None when it cannot be: a freshness value it cannot read).
    `run_id` is the run that recorded it; a result reused before names the run that computed it."""
    metadata = dict(evaluation.metadata)
    origin = metadata[REUSED_FROM_RUN].value if REUSED_FROM_RUN in metadata else run_id
    passed = evaluation.passed
    description = (evaluation.description or "").split(_REUSED_NOTE)[0]
    if expectation.freshness is not None and "observed_value" in metadata:
        verdict = freshness_verdict(evaluation, expectation, now)
        if verdict is None:
            return None
        passed = verdict
        newest = metadata["observed_value"].value
        description = f"{expectation.name} {'passed' if passed else 'FAILED'}; observed {newest}"
    return dg.AssetCheckResult(
        asset_key=evaluation.asset_key,
        check_name=evaluation.check_name,
        passed=passed,
        severity=evaluation.severity,
        description=f"{description}{_REUSED_NOTE}{origin})",
        metadata={**metadata, REUSED_FROM_RUN: origin},
    )


_REUSED_NOTE = " (reused: tables unchanged since run "
