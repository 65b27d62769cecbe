"""Run a suite with Great Expectations 1.x on the Spark DataFrames of its rows and report one Outcome per
expectation.

Expectations that read the same DataFrame are validated together as one GX ExpectationSuite on one
batch, so GX computes their metrics together: the suite's rows, with one column per reference check
(does the row's parent exist) and the expectations' computed columns, serve the plain, computed and
reference expectations; a SQL view serves its own. Each GX validation on Spark costs a handful of
Spark jobs whatever it holds, so fewer frames, fewer jobs.

Spark always builds the rows (joins, computed columns, SQL views). A frame of at most DRIVER_CELLS
values (rows times columns) is then collected to the driver in one Spark job and validated by GX's
pandas engine, which answers a small table in a fraction of the Spark engine's time; a bigger frame is
validated by GX's Spark engine where it is. Both give the same verdicts: the collected rows keep the
values Spark gives (Python ints, Decimals, datetimes in a column of objects, None for null), and the
expectations whose meaning depends on the engine (ENGINE_DEPENDENT: Java against Python regular
expressions, Spark against pandas type names, Spark's approximate quantiles, row order) and frames
with floating-point columns (pandas counts NaN as null, Spark does not) are validated on Spark
whatever their size.

A GX error inside an expectation, or a table that is missing, is a FAILED outcome with the error,
never a pass.
"""

from __future__ import annotations

import functools
import operator
import queue
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType

from expectations.data import (
    MissingTable,
    TablePath,
    children,
    run_sql,
    suite_rows,
    with_parent_found,
)
from expectations.suite import ExpectationSpec, Suite, gx_expectation
from transforms.delta_commits import table_size_and_properties
from transforms.sql_text import quote_identifier

if TYPE_CHECKING:  # pandas is imported by the validations that use it, as Great Expectations is
    import pandas as pd

SAMPLE_SIZE = 5
# A frame of at most this many values (rows times columns) is validated on the driver by GX's pandas
# engine (module docstring). Measured on the shipped suites over the lake `make run` leaves (a few
# hundred rows per table, 2 cores): 7.8-9.8 s for every suite warm against 18.3-23.9 s on Spark,
# 10.0-13.4 s against 56.4-59.6 s in a new process. Bounded in values, not rows, since CRM tables run from ten columns to hundreds:
# 500,000 values (12,500 rows of 40 columns, 2,500 of 200) are some 50 MB of Python objects.
DRIVER_CELLS = 500_000
# A suite's table holding more data than this (Delta's own size, read without a Spark job) has more
# values than DRIVER_CELLS: its frames go to Spark without a collect that would read and join it first.
DRIVER_TABLE_BYTES = 64 * 1024 * 1024
# Expectations whose verdict could differ between GX's engines: they run on Spark whatever the size.
ENGINE_DEPENDENT = {
    # Java's regular expressions (Spark's rlike) against Python's (pandas), and SQL LIKE
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_regex_list",
    "expect_column_values_to_not_match_regex_list",
    "expect_column_values_to_match_like_pattern",
    "expect_column_values_to_not_match_like_pattern",
    "expect_column_values_to_match_like_pattern_list",
    "expect_column_values_to_not_match_like_pattern_list",
    # Spark's type names against pandas' dtypes
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
    "expect_column_type_to_be",
    # Spark's approximate quantiles against pandas' exact ones
    "expect_column_quantile_values_to_be_between",
    "expect_column_median_to_be_between",
    # the order of the rows, which a collected frame might not keep
    "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_decreasing",
}
# A reference check's column on the suite's rows, + a number (expectations.data.with_parent_found).
PARENT_FOUND = "_parent_found_"
# Expectations on the table's columns themselves: they must not see the reference checks' columns, nor
# the computed ones.
TABLE_COLUMNS_EXPECTATIONS = {
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
}
# Sample values and keys of a failed expectation come from a second GX pass; with
# `unexpected_index_column_names` it collects EVERY unexpected row's keys to the driver, so keys are
# asked for only below this many.
KEYED_SAMPLE_LIMIT = 1000
# GX's Spark table metrics (`table.columns`, `table.column_types`) give a column whose name holds a dot
# backquoted (`X.Y` as "`X.Y`"), so the expectations that look a column up among them are given such a
# name that way; the others read the column itself and take the name as it is.
COLUMNS_LOOKED_UP_IN_TABLE_METRICS = {
    "expect_column_to_exist": "column",
    "expect_column_values_to_be_of_type": "column",
    "expect_column_values_to_be_in_type_list": "column",
    "expect_table_columns_to_match_set": "column_set",
    "expect_table_columns_to_match_ordered_list": "column_list",
}


@dataclass(frozen=True)
class Outcome:
    """What one expectation found."""

    name: str
    severity: str  # ERROR | WARN
    success: bool
    expectation: str  # the GX expectation type that ran
    kwargs: dict[str, Any] = field(default_factory=dict)
    observed_value: Any = None
    element_count: int | None = None  # rows looked at
    unexpected_count: int | None = None  # rows that broke the expectation
    unexpected_percent: float | None = None
    sample_keys: list[dict[str, Any]] = field(default_factory=list)  # a few failing rows, by key
    sample_values: list[Any] = field(default_factory=list)  # a few failing values
    error: str | None = None  # the expectation could not run
    note: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: could not run: {self.error}"
        verdict = "passed" if self.success else "FAILED"
        parts = [f"{self.name} {verdict}"]
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} of {self.element_count} rows unexpected")
        if self.observed_value is not None:
            parts.append(f"observed {self.observed_value}")
        if self.sample_keys and not self.success:
            parts.append(f"e.g. {self.sample_keys[0]}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def run_suite(
    spark: SparkSession,
    suite: Suite,
    table_path: TablePath,
    *,
    only: set[str] | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Validate `suite` (its expectations named in `only`, else all). `now` anchors freshness
    (default: the current local time, the zone pyspark gives collected timestamps in)."""
    chosen = [e for e in suite.expectations if only is None or e.name in only]
    try:
        rows = suite_rows(spark, suite, table_path)
    except MissingTable as exc:
        return [_failed(suite, e, str(exc)) for e in chosen]
    plain = [e for e in chosen if e.kind != "references" and e.sql is None and not e.computed]
    outcomes: dict[str, Outcome] = {}
    small = (
        suite.data != "table"  # the newest batch's quarantine: small
        or table_size_and_properties(spark, table_path(suite.layer, suite.table))[0] <= DRIVER_TABLE_BYTES
    )
    # The reference and computed checks run with the plain ones on one frame: the suite's rows, each
    # with a column saying whether its parent exists (one left join per reference) and the computed
    # columns, so GX computes all their metrics together. Not when a plain expectation looks at the
    # table's columns: it would see those.
    extended, found = rows, {}
    for expectation in (e for e in chosen if e.references is not None):
        column = f"{PARENT_FOUND}{len(found)}"
        try:
            extended = with_parent_found(spark, extended, expectation.references, table_path, column)
        except MissingTable as exc:
            outcomes[expectation.name] = _failed(suite, expectation, str(exc))
            continue
        found[expectation.name] = column
    computed: list[ExpectationSpec] = []
    added: dict[str, str] = {}
    for expectation in (e for e in chosen if e.computed):
        try:
            extended = with_computed(extended, expectation.computed, added)
        except (ComputedColumnError, AnalysisException) as exc:
            outcomes[expectation.name] = _failed(suite, expectation, f"computed columns: {exc}")
            continue
        computed.append(expectation)
    referenced = [e for e in chosen if e.name in found]
    if any(e.type in TABLE_COLUMNS_EXPECTATIONS for e in plain):
        groups = [(rows, plain), (extended, computed + referenced)]
    else:
        groups = [(extended, plain + computed + referenced)]
    frames = []
    try:
        for frame, group in groups:
            frames.append(frame)
            outcomes.update(_validate_group(suite, frame, group, table_path, spark, now, found, small))
        for expectation in (e for e in chosen if e.sql is not None):
            try:
                frame = run_sql(spark, expectation.sql, rows, table_path)
            except MissingTable as exc:
                outcomes[expectation.name] = _failed(suite, expectation, str(exc))
                continue
            frames.append(frame)
            outcomes.update(
                _validate_group(suite, frame, [expectation], table_path, spark, now, found, small)
            )
    finally:
        # GX persists every frame it validates and never lets go: held, they would fill the memory of a
        # long-running session and answer later reads of the same table with these rows, even after a
        # RESTORE of it (which does not refresh Spark's cache, unlike this session's writes)
        for frame in frames:
            frame.unpersist()
    return [outcomes[e.name] for e in chosen]


class ComputedColumnError(ValueError):
    """An expectation's computed column clashes with a column of the rows or another computed one."""


def with_computed(frame: DataFrame, computed: dict[str, str], added: dict[str, str]) -> DataFrame:
    """`frame` with the `computed` columns (name -> Spark SQL expression) added. `added`: the columns
    earlier expectations computed (name in lower case -> expression), updated; one computed alike is
    not added again. Names compare as Spark compares them, ignoring case. Spark analyses the
    expressions here: a bad one raises AnalysisException."""
    taken = {c.lower() for c in frame.columns} - set(added)
    for name, expression in computed.items():
        if name.lower() in taken:
            raise ComputedColumnError(f"{name!r} is a column of the rows already; give it another name")
        if added.get(name.lower(), expression) != expression:
            raise ComputedColumnError(
                f"{name!r} is computed otherwise by another expectation ({added[name.lower()]!r}); "
                "give it another name"
            )
    new = {name: F.expr(sql) for name, sql in computed.items() if name.lower() not in added}
    frame = frame.withColumns(new) if new else frame
    added.update((name.lower(), sql) for name, sql in computed.items())
    return frame


def _validate_group(
    suite: Suite,
    frame: DataFrame,
    chosen: list[ExpectationSpec],
    table_path: TablePath,
    spark: SparkSession,
    now: datetime | None,
    found: dict[str, str],
    small: bool,
) -> dict[str, Outcome]:
    """`chosen` validated on `frame`: on its rows collected to the driver when it is small, the
    ENGINE_DEPENDENT expectations and big frames on Spark (module docstring), one GX validation per
    engine. `found`: reference check -> its parent-found column. `small`: the suite's table may be
    small enough to collect (else nothing is collected)."""
    import great_expectations as gx

    outcomes: dict[str, Outcome] = {}
    columns = set(frame.columns)
    for data, expectations in _batches(frame, chosen, small):
        on_spark = isinstance(data, DataFrame)
        built = {}
        for expectation in expectations:
            try:
                built[expectation.name] = _build(expectation, frame, table_path, spark, now, found, on_spark)
            except MissingTable as exc:
                outcomes[expectation.name] = _failed(suite, expectation, str(exc))
        if not built:
            continue
        gx_suite = gx.ExpectationSuite(
            name=f"{suite.asset}:{sorted(built)[0]}", expectations=list(built.values())
        )
        # counts only: the samples of a failed expectation come from a second pass (_with_samples)
        results = _validate(data, gx_suite, {"result_format": "BASIC", "partial_unexpected_count": 0})
        by_name = {result.expectation_config.meta.get("check"): result for result in results.results}
        for expectation in (e for e in expectations if e.name in built):
            outcome = _outcome(suite, expectation, by_name[expectation.name])
            wanted = [*suite.keys, *(expectation.references.on if expectation.references else ())]
            sample_columns = list(dict.fromkeys(c for c in wanted if c in columns))
            outcomes[expectation.name] = _with_samples(
                outcome, expectation, built[expectation.name], frame, data, sample_columns, found
            )
    return outcomes


def _batches(
    frame: DataFrame, chosen: list[ExpectationSpec], small: bool
) -> list[tuple[DataFrame | pd.DataFrame, list[ExpectationSpec]]]:
    """What each GX validation of `chosen` reads: the frame's rows on the driver for the expectations
    that may run anywhere, when it is small, and the frame itself for the rest."""
    anywhere = [e for e in chosen if e.type not in ENGINE_DEPENDENT]
    rows = _rows_on_driver(frame) if anywhere and small else None
    if rows is None:
        return [(frame, chosen)] if chosen else []
    on_spark = [e for e in chosen if e.type in ENGINE_DEPENDENT]
    return [(rows, anywhere), *([(frame, on_spark)] if on_spark else [])]


def _rows_on_driver(frame: DataFrame) -> pd.DataFrame | None:
    """The frame's rows for GX's pandas engine, collected in one Spark job, or None when they stay on
    Spark: more than DRIVER_CELLS values (rows times columns), or a floating-point column. The values
    are the ones Spark gives (a column of Python objects: ints stay ints, Decimals and datetimes stay
    as collected, null is None)."""
    import pandas as pd

    if any(isinstance(field.dataType, FloatType | DoubleType) for field in frame.schema):
        return None
    most = DRIVER_CELLS // max(len(frame.columns), 1)
    rows = frame.limit(most + 1).collect()
    if len(rows) > most:
        return None
    return pd.DataFrame([tuple(row) for row in rows], columns=frame.columns, dtype=object)


def _with_samples(
    outcome: Outcome,
    expectation: ExpectationSpec,
    built,
    frame: DataFrame,
    data: DataFrame | pd.DataFrame,
    sample_columns: list[str],
    found: dict[str, str],
) -> Outcome:
    """A few values and keys of the failing rows, from a second pass that runs only when the expectation
    failed: the first pass collects no sample, which saves a Spark job per expectation. Bounded: never
    collects more than KEYED_SAMPLE_LIMIT rows' keys. `data`: what the first pass validated."""
    if outcome.success or outcome.error or not outcome.unexpected_count:
        return outcome
    if expectation.references is not None:
        if not sample_columns:
            return outcome
        orphans = (
            frame.where(children(expectation.references) & F.col(found[expectation.name]).isNull())
            .select(*[quote_identifier(c) for c in sample_columns])
            .limit(SAMPLE_SIZE)
        )
        return replace(outcome, sample_keys=[_plain(row.asDict()) for row in orphans.collect()])
    import great_expectations as gx

    keyed = bool(sample_columns) and outcome.unexpected_count <= KEYED_SAMPLE_LIMIT
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    if keyed:
        result_format["unexpected_index_column_names"] = sample_columns
    [result] = _validate(
        data, gx.ExpectationSuite(name=f"samples:{expectation.name}", expectations=[built]), result_format
    ).results
    details = result.result or {}
    values = _plain(list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE])
    index_list = (details.get("partial_unexpected_index_list") or []) if keyed else []
    keys = [_plain(dict(k)) for k in index_list[:SAMPLE_SIZE] if isinstance(k, dict)]
    note = None
    if sample_columns and not keyed:
        note = f"sample keys not collected: more than {KEYED_SAMPLE_LIMIT} unexpected rows"
    return replace(outcome, sample_values=values, sample_keys=keys, note=note)


def _build(
    expectation: ExpectationSpec,
    frame: DataFrame,
    table_path: TablePath,
    spark: SparkSession,
    now,
    found: dict[str, str],
    on_spark: bool,
):
    """The GX expectation of `expectation`, its column names as GX's Spark engine (`on_spark`) or its
    pandas engine reads them."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    def named(column: str) -> str:
        return _gx_column(column) if on_spark else column

    meta = {"check": expectation.name}
    if expectation.references is not None:  # on its children: the rows whose reference columns are set
        conditions = [Column(name=named(c)).is_not_null() for c in expectation.references.on]
        return gxe.ExpectColumnValuesToNotBeNull(
            column=found[expectation.name],
            row_condition=functools.reduce(operator.and_, conditions),
            meta=meta,
        )
    if expectation.freshness is not None:
        oldest_allowed = (now or datetime.now()) - expectation.freshness.lag
        return gxe.ExpectColumnMaxToBeBetween(
            column=expectation.freshness.column, min_value=oldest_allowed, meta=meta
        )
    overrides = _table_metric_names(expectation) if on_spark else {}
    if expectation.value_set_sql is not None:
        values = run_sql(spark, expectation.value_set_sql, frame, table_path).collect()
        overrides["value_set"] = sorted({row[0] for row in values if row[0] is not None}, key=str)
    return gx_expectation(expectation, overrides)


def _table_metric_names(expectation: ExpectationSpec) -> dict[str, Any]:
    """The column argument(s) as GX's Spark table metrics name them (COLUMNS_LOOKED_UP_IN_TABLE_METRICS)."""
    argument = COLUMNS_LOOKED_UP_IN_TABLE_METRICS.get(expectation.type or "")
    given = expectation.kwargs.get(argument) if argument else None
    if given is None:
        return {}

    return {argument: _gx_column(given) if isinstance(given, str) else [_gx_column(c) for c in given]}


def _gx_column(column: str) -> str:
    """A column name as GX's Spark engine reads it: a name holding a dot backquoted, else as it is."""
    return (
        f"`{column}`" if "." in column and not (column.startswith("`") and column.endswith("`")) else column
    )


# Idle GX batch definitions per engine (Spark, pandas), each of its own ephemeral GX context: a
# validation takes one (or makes one) and gives it back, so steps validating at once in threads
# (orchestration.threaded_executor) never share a context, and a process makes only as many as ever
# ran at once.
_idle_batch_definitions: dict[bool, queue.SimpleQueue] = {
    True: queue.SimpleQueue(),
    False: queue.SimpleQueue(),
}


def _validate(data: DataFrame | pd.DataFrame, gx_suite, result_format: dict):
    """One GX validation of `gx_suite` on `data`, a Spark or a pandas DataFrame."""
    on_spark = isinstance(data, DataFrame)
    try:
        batch_definition = _idle_batch_definitions[on_spark].get_nowait()
    except queue.Empty:
        batch_definition = _new_batch_definition(on_spark)
    try:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
        return batch.validate(gx_suite, result_format=result_format)
    finally:
        _idle_batch_definitions[on_spark].put(batch_definition)


def _new_batch_definition(on_spark: bool):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    sources = context.data_sources
    source = sources.add_spark(name="lake") if on_spark else sources.add_pandas(name="lake")
    return source.add_dataframe_asset(name="rows").add_batch_definition_whole_dataframe("whole")


def _outcome(suite: Suite, expectation: ExpectationSpec, result) -> Outcome:
    config = result.expectation_config
    details = result.result or {}
    exception = result.exception_info or {}
    if "raised_exception" not in exception:  # suite results key exceptions by metric
        exception = next(
            (v for v in exception.values() if isinstance(v, dict) and v.get("raised_exception")), {}
        )
    error = exception.get("exception_message") if exception.get("raised_exception") else None
    element_count, unexpected_count = details.get("element_count"), details.get("unexpected_count")
    if unexpected_count is None and element_count == 0:
        unexpected_count = 0  # nothing to check: GX's Spark engine says 0, its pandas engine nothing
    kwargs = dict(config.kwargs)
    argument = COLUMNS_LOOKED_UP_IN_TABLE_METRICS.get(expectation.type or "")
    if argument in expectation.kwargs:  # the column as the suite names it, whichever engine read it
        kwargs[argument] = expectation.kwargs[argument]
    return Outcome(
        name=expectation.name,
        severity=suite.severity_of(expectation),
        success=bool(result.success) and error is None,
        expectation=config.type,
        kwargs=_plain(kwargs),
        observed_value=_plain(details.get("observed_value")),
        element_count=element_count,
        unexpected_count=unexpected_count,
        unexpected_percent=details.get("unexpected_percent"),
        error=error,
    )


def _failed(suite: Suite, expectation: ExpectationSpec, error: str) -> Outcome:
    return Outcome(
        name=expectation.name,
        severity=suite.severity_of(expectation),
        success=False,
        expectation=expectation.type or expectation.kind,
        error=error,
    )


def _plain(value: Any) -> Any:
    """JSON-friendly: datetimes and decimals as text, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
