"""Dagster asset checks generated from the suites (defaults and files, expectations.suite): one
check per expectation, one op per suite.

Each expectation becomes one AssetCheckSpec on the asset its suite names (`silver/s_order` ->
AssetKey(["silver", "s_order"])); the checks of a suite share one `@multi_asset_check` op,
`expectations_<layer>_<table>` (one Dagster step):

- severity ERROR -> `blocking=True`, a failure has AssetCheckSeverity.ERROR: Dagster fails that step,
  and the steps of the assets downstream of the checked asset, which wait for it, do not run. Nothing
  else waits for it, so nothing else is held back.
- severity WARN -> not blocking, a failure has AssetCheckSeverity.WARN: shown, nothing stops.

The other tables a suite reads (the parent of a reference, the list of values of a value set) are
the check's `additional_deps`: in a run that also materializes them, the suite's step runs after
them. Dagster would also make that step wait for their blocking checks, so that one failing check on
gold/customer would hold gold/order's checks, hence order's projections (and two suites reading each
other's tables would wait for each other: a cycle). For a table the suite reads that is not upstream
of its asset (a same-layer parent: an order's customer, a customer's account), the suite's op also
holds an ORDERING CHECK on that table, named after the suite (gold/customer `read_by_gold_order`),
non-blocking, passing when the table exists and recording the version the suite read. Dagster does not hold an op back on the blocking
checks of an asset it checks itself (assets/job/asset_job.py, build_node_deps), so the suite's step
runs after that table's materialization, not after its checks. What this costs: when that table does
not materialize in a run (its own upstream failed a blocking check, or its step failed), the suites
that read it do not run either, and what is built from their assets waits for the next run.
A table upstream of the suite's asset (gold reads silver) needs no ordering check: the asset itself
waits for it.

Each result's metadata carries the expectation, the observed value, the unexpected count, a few
sample keys of failing rows, and its inputs (the table versions it read). A check whose tables did
not change since its last result reports that result again instead of running (expectations.reuse).
Resources: `spark` (SparkResource) and `lake` (LakeResource); one Spark session serves every op of a run.
"""

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence

import dagster as dg

from assets.names import asset_key
from expectations.reuse import INPUTS, previous_evaluation, reusable, reused_result, suite_inputs
from expectations.suite import Suite, load_suites
from expectations.validate import Outcome, run_suite
from resources.connections import LakeResource, SparkResource
from transforms.delta_commits import current_version

SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}
ORDERING_PREFIX = "read_by_"


def suite_asset_key(suite: Suite) -> dg.AssetKey:
    return asset_key(suite.layer, suite.table)


def op_name(suite: Suite) -> str:
    """The suite's op, and its step in a run: `expectations_<layer>_<table>`."""
    return f"expectations_{suite.layer}_{suite.table}"


def ordering_check_name(suite: Suite) -> str:
    """The name of the suite's ordering check on each table it reads (module docstring)."""
    return f"{ORDERING_PREFIX}{suite.layer}_{suite.table}"


def upstream_keys(assets: Iterable[dg.AssetsDefinition]) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    """Every asset key of `assets` -> the keys it is built from, directly or not."""
    direct: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for assets_def in assets:
        for key, deps in assets_def.asset_deps.items():
            direct.setdefault(key, set()).update(deps)

    @functools.cache
    def upstream(key: dg.AssetKey) -> frozenset[dg.AssetKey]:
        found = set(direct.get(key, ()))
        for dep in direct.get(key, ()):
            found |= upstream(dep)
        return frozenset(found)

    return {key: set(upstream(key)) for key in direct}


def build_asset_checks(
    suites: list[Suite] | None = None,
    assets: Sequence[dg.AssetsDefinition] | None = None,
) -> list[dg.AssetChecksDefinition]:
    """The checks of every suite (default: expectations.suite.load_suites(), the defaults of the specs
    merged with `expectations/suites/`), one op per suite.

    `assets`: the asset definitions the checks go with (what orchestration.definitions assembles).
    Only the suites of their assets, and only dependencies among them; each suite gets an ordering
    check on every table it reads that is not upstream of its asset (module docstring). Without
    `assets`, every suite, without ordering checks: a table a suite reads then holds the suite back on
    its blocking checks, Dagster's default, and two suites that read each other's assets cannot be in
    one job.
    """
    suites = load_suites() if suites is None else suites
    if assets is None:
        return [build_suite_checks(suite, None, None) for suite in suites]
    known = {key for assets_def in assets for key in assets_def.keys}
    upstream = upstream_keys(assets)
    return [build_suite_checks(suite, known, upstream) for suite in suites if suite_asset_key(suite) in known]


def ordered_reads(
    suite: Suite, known: set[dg.AssetKey] | None, upstream: Mapping[dg.AssetKey, set[dg.AssetKey]] | None
) -> list[dg.AssetKey]:
    """The tables that get the suite's ordering check: read by the suite, assets of the graph, not
    upstream of the suite's asset. None without the graph (`upstream` None)."""
    if upstream is None:
        return []
    own = suite_asset_key(suite)
    reads = {asset_key(*table) for table in suite.tables_read() if table[0] != "quarantine"}
    return sorted(
        key
        for key in reads
        if key != own and (known is None or key in known) and key not in upstream.get(own, set())
    )


def ordering_checks_for(suites: Iterable[Suite], checks: Iterable[dg.AssetCheckKey]) -> set[dg.AssetCheckKey]:
    """The ordering checks a run holding `checks` needs: for each of them that reads another table,
    the ordering check of its suite on that table (some may not exist: the table is upstream of the
    suite's asset; intersect with the graph's check keys). A subset of the checks without them holds
    the suites back on the blocking checks of the tables they read, and fails to build when two suites
    read each other's assets."""
    by_asset = {suite_asset_key(suite): suite for suite in suites}
    needed = set()
    for key in checks:
        suite = by_asset.get(key.asset_key)
        expectation = next((e for e in suite.expectations if e.name == key.name), None) if suite else None
        if expectation is None:
            continue
        for table in expectation.tables_read():
            if table[0] != "quarantine" and asset_key(*table) != key.asset_key:
                needed.add(dg.AssetCheckKey(asset_key(*table), ordering_check_name(suite)))
    return needed


def build_suite_checks(
    suite: Suite,
    known: set[dg.AssetKey] | None = None,
    upstream: Mapping[dg.AssetKey, set[dg.AssetKey]] | None = None,
) -> dg.AssetChecksDefinition:
    own_key = suite_asset_key(suite)
    specs = []
    for expectation in suite.expectations:
        reads = [asset_key(*t) for t in expectation.tables_read() if t[0] != "quarantine"]
        specs.append(
            dg.AssetCheckSpec(
                name=expectation.name,
                asset=own_key,
                description=expectation.description or _describe_expectation(suite, expectation),
                blocking=suite.severity_of(expectation) == "ERROR",
                additional_deps=[k for k in reads if k != own_key and (known is None or k in known)],
                metadata={"severity": suite.severity_of(expectation), "suite": suite.source},
            )
        )
    ordered = ordered_reads(suite, known, upstream)
    ordering_name = ordering_check_name(suite)
    readers = {table: _readers(suite, table) for table in ordered}
    for table in ordered:
        specs.append(
            dg.AssetCheckSpec(
                name=ordering_name,
                asset=table,
                description=(
                    f"Runs the checks of {suite.asset} that read this table ({', '.join(readers[table])}) after "
                    f"this table's materialization, without holding them back on this table's blocking "
                    f"checks (expectations/checks.py). Passes when the table exists; records the version read."
                ),
                blocking=False,
                metadata={"severity": "WARN", "suite": suite.source, "read_by": suite.asset},
            )
        )

    @dg.multi_asset_check(
        name=op_name(suite),
        specs=specs,
        can_subset=True,
        description=f"Great Expectations suite of {suite.asset} ({suite.source or 'expectations/suites/'})",
        compute_kind="great_expectations",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        session = spark.session(lake)
        version_of = functools.cache(lambda path: current_version(session, path))  # checks share tables
        for table in ordered:
            if dg.AssetCheckKey(table, ordering_name) in context.selected_asset_check_keys:
                yield ordering_result(suite, table, version_of(lake.table_path(*table.path)), readers[table])
        selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == own_key}
        if not selected:
            return
        if version_of(lake.table_path(suite.layer, suite.table)) is None:
            # Nothing has been written to the table yet (its source has sent no change so far: a new
            # source whose connector has not started, say). Its checks have no rows to judge: they wait
            # for the first ones, reported as not evaluated rather than failed (or passed).
            context.log.info(
                f"{own_key.to_user_string()} has no Delta table yet (nothing written to it so far): its "
                f"{len(selected)} checks wait for its first rows"
            )
            return
        inputs = suite_inputs(suite, lake.table_path, version_of)
        to_run = set()
        for expectation in suite.expectations:
            if expectation.name not in selected:
                continue
            reused = None
            previous = previous_evaluation(context.instance, dg.AssetCheckKey(own_key, expectation.name))
            if previous is not None and reusable(previous[0], inputs):
                reused = reused_result(*previous, expectation)
            if reused is None:
                to_run.add(expectation.name)
            else:
                yield reused
        if to_run:
            for outcome in run_suite(session, suite, lake.table_path, only=to_run):
                context.log.info(outcome.summary())
                yield check_result(own_key, outcome, inputs)

    return _checks


def _readers(suite: Suite, table: dg.AssetKey) -> list[str]:
    """The suite's expectations that read `table`."""
    return [e.name for e in suite.expectations if tuple(table.path) in e.tables_read()]


def ordering_result(
    suite: Suite, table: dg.AssetKey, version: int | None, readers: list[str]
) -> dg.AssetCheckResult:
    shown = table.to_user_string()
    metadata = {
        "read_by": suite.asset,
        "checks": dg.MetadataValue.json(readers),
        "version": version if version is not None else "no table",
    }
    if version is None:
        description = f"{shown} has no Delta table: the checks of {suite.asset} that read it ({', '.join(readers)}) fail"
    else:
        description = (
            f"the checks of {suite.asset} that read {shown} ({', '.join(readers)}) read its version {version}"
        )
    return dg.AssetCheckResult(
        asset_key=table,
        check_name=ordering_check_name(suite),
        passed=version is not None,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


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
