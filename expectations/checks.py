"""Dagster asset checks generated from the suites: one check per expectation, one op per layer.

Each expectation becomes one AssetCheckSpec on the asset its suite names (`silver/s_order` ->
AssetKey(["silver", "s_order"])); the suites of a layer share one `@multi_asset_check` op:

- severity ERROR -> `blocking=True`, a failure has AssetCheckSeverity.ERROR: assets downstream of the
  checked asset do not materialize in that run.
- severity WARN -> not blocking, a failure has AssetCheckSeverity.WARN: shown, nothing stops.

The other tables a suite reads (the parent of a reference, the list of values of a value set) are
the check's `additional_deps`, so in a run that also materializes them the check runs after them.
Each result's metadata carries the expectation, the observed value, the unexpected count, a few
sample keys of failing rows, and its inputs (the table versions it read). A check whose tables did
not change since its last result reports that result again instead of running (expectations.reuse).
Resources: `spark` (SparkResource) and `lake` (LakeResource).
"""

import functools
from collections.abc import Iterable, Iterator

import dagster as dg

from expectations.reuse import INPUTS, previous_evaluation, reusable, reused_result, suite_inputs
from expectations.suite import Suite, load_suites
from expectations.validate import Outcome, run_suite
from orchestration.resources import LakeResource, SparkResource
from transforms.delta_commits import current_version

SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def asset_key_of(layer: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([layer, name])


def suite_asset_key(suite: Suite) -> dg.AssetKey:
    return asset_key_of(suite.layer, suite.table)


def build_asset_checks(
    suites: list[Suite] | None = None, asset_keys: Iterable[dg.AssetKey] | None = None
) -> list[dg.AssetChecksDefinition]:
    """The checks of every suite (default: all of `expectations/suites/`), one op per layer. With
    `asset_keys`, only the suites whose asset is among them, and only the dependencies that are.

    One op per layer, not per suite: suites of one layer read each other's tables (an order's
    customer, a customer's account), and a blocking check must run after every table it reads. Per
    suite, two suites that reference each other's assets would wait for each other (a cycle); per
    layer, the op simply runs after all of the layer's assets it reads, and each check still gates
    only its own asset's downstream.
    """
    suites = load_suites() if suites is None else suites
    known = set(asset_keys) if asset_keys is not None else None
    selected = [suite for suite in suites if known is None or suite_asset_key(suite) in known]
    layers = sorted({suite.layer for suite in selected})
    return [build_layer_checks(layer, [s for s in selected if s.layer == layer], known) for layer in layers]


def build_layer_checks(layer: str, suites: list[Suite], known: set[dg.AssetKey] | None = None) -> dg.AssetChecksDefinition:
    specs = []
    for suite in suites:
        asset_key = suite_asset_key(suite)
        for expectation in suite.expectations:
            reads = [asset_key_of(*t) for t in expectation.tables_read() if t[0] != "quarantine"]
            specs.append(
                dg.AssetCheckSpec(
                    name=expectation.name,
                    asset=asset_key,
                    description=expectation.description or _describe_expectation(suite, expectation),
                    blocking=suite.severity_of(expectation) == "ERROR",
                    additional_deps=[k for k in reads if k != asset_key and (known is None or k in known)],
                    metadata={"severity": suite.severity_of(expectation), "suite": suite.source},
                )
            )

    @dg.multi_asset_check(
        name=f"expectations_{layer}",
        specs=specs,
        can_subset=True,
        description=f"Great Expectations suites of the {layer} layer (expectations/suites/{layer}/)",
        compute_kind="great_expectations",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        session = spark.session(lake)
        version_of = functools.cache(lambda path: current_version(session, path))  # suites share tables
        for suite in suites:
            asset_key = suite_asset_key(suite)
            selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == asset_key}
            if not selected:
                continue
            inputs = suite_inputs(suite, lake.table_path, version_of)
            to_run = set()
            for expectation in suite.expectations:
                if expectation.name not in selected:
                    continue
                reused = None
                previous = previous_evaluation(context.instance, dg.AssetCheckKey(asset_key, expectation.name))
                if previous is not None and reusable(previous[0], inputs):
                    reused = reused_result(*previous, expectation)
                if reused is None:
                    to_run.add(expectation.name)
                else:
                    yield reused
            if to_run:
                for outcome in run_suite(session, suite, lake.table_path, only=to_run):
                    context.log.info(outcome.summary())
                    yield check_result(asset_key, outcome, inputs)

    return _checks


def check_result(asset_key: dg.AssetKey, outcome: Outcome, inputs: dict | None = None) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        "expectation": outcome.expectation,
        "kwargs": dg.MetadataValue.json(outcome.kwargs),
    }
    if inputs is not None:
        metadata[INPUTS] = dg.MetadataValue.json(inputs)
    if outcome.observed_value is not None:
        metadata["observed_value"] = _metadata_value(outcome.observed_value)
    if outcome.unexpected_count is not None:
        metadata["unexpected_count"] = outcome.unexpected_count
        metadata["element_count"] = outcome.element_count or 0
        metadata["unexpected_percent"] = float(outcome.unexpected_percent or 0.0)
    if outcome.sample_keys:
        metadata["sample_keys"] = dg.MetadataValue.json(outcome.sample_keys)
    if outcome.sample_values:
        metadata["sample_values"] = dg.MetadataValue.json(outcome.sample_values)
    if outcome.error:
        metadata["error"] = dg.MetadataValue.text(outcome.error)
    if outcome.note:
        metadata["note"] = dg.MetadataValue.text(outcome.note)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.name,
        passed=outcome.success,
        severity=SEVERITY[outcome.severity],
        description=outcome.summary(),
        metadata=metadata,
    )


def _metadata_value(value: object):
    if isinstance(value, bool | int | float | str):
        return value
    return dg.MetadataValue.json(value)


def _describe_expectation(suite: Suite, expectation) -> str:
    if expectation.references is not None:
        ref = expectation.references
        joins = ", ".join(f"{child} -> {ref.to}.{parent}" for child, parent in ref.on.items())
        return f"Every row's parent exists ({joins}); orphans are counted with sample keys."
    if expectation.freshness is not None:
        return f"Newest {expectation.freshness.column} is at most {expectation.freshness.max_lag} old."
    return f"{expectation.type} {expectation.kwargs}"
