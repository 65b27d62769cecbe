"""Expectation suites: the checks of one asset, its defaults plus an optional YAML file.

Every table gets default checks derived from its spec (expectations/defaults.py: bronze quarantine,
silver keys, sequence, incomplete rows and freshness, gold keys; their parameters are the spec's
`checks:` block). A file `expectations/suites/<layer>/<name>.yaml` adds what only that table has
(references, value sets, formats...). Merging a file into its asset's defaults (`load_suites`):

- the file's expectations come after the defaults; one with the NAME of a default replaces that
  default, in its place (the file's expectation wins, whole: give its kind, kwargs and severity);
- the file's `where`, `keys` and `data`, when given, replace the defaults' for the whole suite (the
  defaults then run on those rows too); its `severity` is the default of its own expectations only;
- a file for an asset without defaults is the whole suite, as written.

A file names the asset its checks attach to, which rows they look at, and the expectations::

    asset: silver/s_order            # <layer>/<name>: the Dagster asset [layer, name] and its Delta table
    data: table                      # or last_batch_quarantine (bronze: rows the last batch quarantined)
    where: NOT _deleted              # optional Spark SQL filter: the rows every expectation sees
    keys: [ROW_ID]                   # columns that identify a failing row in the samples
    severity: ERROR                  # default for the expectations below (ERROR blocks, WARN shows)
                                     # (data, where, keys: the defaults' unless given; see above)
    expectations:
      - name: order_number_set       # the Dagster check name (unique in the suite)
        type: expect_column_values_to_not_be_null     # any Great Expectations 1.x expectation
        kwargs: {column: ORDER_NUM}
      - name: account_exists         # referential integrity: an orphan is a row whose parent is missing
        references:
          to: silver.s_org_ext       # <layer>.<name> of the parent table
          on: {ACCNT_ID: ROW_ID}     # this table's column -> the parent's column
          where: NOT _deleted        # optional filter of the parent's rows
        severity: WARN
      - name: fresh                  # the newest value of `column` is at most `max_lag` old (this
                                     # name replaces silver's default `fresh`)
        freshness: {column: _commit_ts, max_lag: 6h}
      - name: status_code_known      # kwargs.value_set taken from a query at run time
        type: expect_column_values_to_be_in_set
        kwargs: {column: STATUS_CD}
        value_set_sql: SELECT NAME FROM {silver.s_lst_of_val} WHERE TYPE = 'ORDER_STATUS'
      - name: few_long_comments      # `computed`: columns added to the suite's rows for this check
        computed: {comment_length: length(COMMENTS)}      # name: Spark SQL expression over a row
        type: expect_column_values_to_be_between
        kwargs: {column: comment_length, max_value: 2000, mostly: 0.99}
      - name: one_primary_phone_each # `sql`: the expectation runs on this view instead of the rows
        sql: SELECT CONTACT_ID, count(*) AS primaries FROM {this} WHERE PRIMARY_FLG = 'Y' GROUP BY CONTACT_ID
        type: expect_column_values_to_be_between
        kwargs: {column: primaries, max_value: 1}

In `sql` and `value_set_sql`, `{this}` is the suite's rows (after `where`) and `{layer.name}` is
another lake table as stored (e.g. `{silver.s_lst_of_val}`, tombstones included). A query that uses
`{this}` is formatted by pyspark (`spark.sql(query, this=rows)`): write other literal braces doubled.
A value computed from each row alone belongs in `computed`, not in `sql`: the suite's rows, with every
computed column, serve all of its expectations but the `sql` ones in one Great Expectations validation,
while each `sql` view is a validation of its own (a few Spark jobs more). A computed column must not
be named like a column of the rows; two expectations computing one name must compute it alike.

Everything is checked when the file loads, without Spark: unknown or missing fields, an unknown
expectation type, kwargs the expectation does not take, a bad lag. Errors name the file and line.
Whether Great Expectations accepts an expectation takes Great Expectations itself, whose import costs
about 10 s of CPU in every process that loads the Definitions (each run's worker, the code server, the
loop). So the expectations it accepted are remembered, by Great Expectations version, type and kwargs,
in `$XDG_CACHE_HOME/cdc-lakehouse/accepted-expectations.json` (default `~/.cache`): a process whose
suites hold only remembered expectations does not import it; a new or changed one is checked as ever.
"""

from __future__ import annotations

import functools
import json
import os
import re
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assets.yaml_loader import line_of, read_mapping, validate
from transforms.specs.table import parse_lag

SUITES_DIR = Path(__file__).parent / "suites"
LAYERS = ("bronze", "silver", "gold", "quarantine")
NAME = r"[a-z][a-z0-9_]*"
TABLE_PLACEHOLDER = re.compile(r"\{(" + "|".join(LAYERS) + r")\.(" + NAME + r")\}")
THIS_PLACEHOLDER = "{this}"

Severity = Literal["ERROR", "WARN"]


class SuiteError(ValueError):
    """A suite file is wrong. The message names the file and the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def table_ref(text: str) -> tuple[str, str]:
    """`silver.s_order` -> ("silver", "s_order")."""
    layer, _, name = text.partition(".")
    if layer not in LAYERS or not re.fullmatch(NAME, name):
        raise ValueError(f"table {text!r} is not <layer>.<name> with layer one of {', '.join(LAYERS)}")
    return layer, name


class Reference(_Strict):
    to: str
    on: dict[str, str] = Field(min_length=1)
    where: str | None = None

    @field_validator("to")
    @classmethod
    def _table(cls, to: str) -> str:
        table_ref(to)
        return to


class Freshness(_Strict):
    column: str = Field(min_length=1)
    max_lag: str

    @field_validator("max_lag", mode="before")
    @classmethod
    def _lag(cls, max_lag: Any) -> str:
        parse_lag(str(max_lag))
        return str(max_lag)

    @property
    def lag(self) -> timedelta:
        return parse_lag(self.max_lag)


class ExpectationSpec(_Strict):
    name: str = Field(pattern=f"^{NAME}$")
    description: str | None = None
    severity: Severity | None = None  # None: the suite's
    type: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    references: Reference | None = None
    freshness: Freshness | None = None
    sql: str | None = None
    value_set_sql: str | None = None
    computed: dict[str, str] = Field(default_factory=dict)  # column name -> Spark SQL over a row

    @model_validator(mode="after")
    def _one_kind(self) -> ExpectationSpec:
        kinds = [k for k in ("type", "references", "freshness") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of type, references, freshness (found: {kinds or 'none'})")
        if self.type is None and (self.kwargs or self.value_set_sql or self.sql or self.computed):
            raise ValueError(f"kwargs, sql, value_set_sql and computed go with `type`, not with {kinds[0]}")
        if self.sql is not None and self.computed:
            raise ValueError(
                "give sql or computed, not both (computed columns are added to the suite's rows)"
            )
        if any(not name or not expression.strip() for name, expression in self.computed.items()):
            raise ValueError("every computed column needs a name and a Spark SQL expression")
        if self.value_set_sql is not None and "value_set" in self.kwargs:
            raise ValueError("give kwargs.value_set or value_set_sql, not both")
        return self

    @property
    def kind(self) -> str:
        return "references" if self.references else "freshness" if self.freshness else "expectation"

    def tables_read(self) -> list[tuple[str, str]]:
        """Other lake tables this expectation reads: (layer, name)."""
        tables = [table_ref(self.references.to)] if self.references else []
        for text in (self.sql, self.value_set_sql):
            tables += TABLE_PLACEHOLDER.findall(text or "")
        return sorted(set(tables))


class Suite(_Strict):
    asset: str
    data: Literal["table", "last_batch_quarantine"] = "table"
    where: str | None = None
    keys: list[str] = Field(default_factory=list)
    severity: Severity = "ERROR"
    description: str | None = None
    expectations: list[ExpectationSpec] = Field(min_length=1)
    source: str = ""  # the file it was loaded from

    @field_validator("asset")
    @classmethod
    def _asset(cls, asset: str) -> str:
        layer, _, name = asset.partition("/")
        if layer not in LAYERS or not re.fullmatch(NAME, name):
            raise ValueError(f"asset {asset!r} is not <layer>/<name> with layer one of {', '.join(LAYERS)}")
        return asset

    @model_validator(mode="after")
    def _names_unique(self) -> Suite:
        seen: set[str] = set()
        # computed column, in lower case as Spark compares names -> (expression, expectation)
        computed: dict[str, tuple[str, str]] = {}
        for expectation in self.expectations:
            if expectation.name in seen:
                raise ValueError(f"expectation name {expectation.name!r} is used twice")
            seen.add(expectation.name)
            for column, expression in expectation.computed.items():
                earlier = computed.setdefault(column.lower(), (expression, expectation.name))
                if earlier[0] != expression:
                    raise ValueError(
                        f"computed column {column!r} of {expectation.name!r} is computed otherwise by "
                        f"{earlier[1]!r} ({earlier[0]!r}); give it another name"
                    )
        return self

    @property
    def layer(self) -> str:
        return self.asset.split("/")[0]

    @property
    def table(self) -> str:
        return self.asset.split("/")[1]

    def severity_of(self, expectation: ExpectationSpec) -> Severity:
        return expectation.severity or self.severity

    def tables_read(self) -> list[tuple[str, str]]:
        """Lake tables other than its own that the suite reads: (layer, name)."""
        own = (self.layer, self.table)
        return sorted({t for e in self.expectations for t in e.tables_read()} - {own})


def load_suite(path: Path) -> Suite:
    data, root = read_mapping(path, "a suite is a mapping (asset, expectations, ...)", SuiteError)
    suite = validate(Suite, {**data, "source": str(path)}, path, root, SuiteError)
    accepted = _accepted_expectations()
    checked = set()
    for index, expectation in enumerate(suite.expectations):
        if expectation.type is not None and _acceptance_key(expectation) not in accepted:
            _check_gx_expectation(path, root, index, expectation)
            checked.add(_acceptance_key(expectation))
    if checked:
        _remember_accepted(accepted | checked)
    return suite


def accepted_expectations_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cdc-lakehouse" / "accepted-expectations.json"


@functools.cache
def _gx_version() -> str:
    return version("great-expectations")


def _acceptance_key(expectation: ExpectationSpec) -> str:
    """What Great Expectations' verdict on an expectation depends on."""
    return json.dumps(
        [_gx_version(), expectation.type, expectation.kwargs, expectation.value_set_sql is not None],
        sort_keys=True,
        default=str,
    )


def _accepted_expectations() -> set[str]:
    try:
        return set(json.loads(accepted_expectations_file().read_text()))
    except (OSError, ValueError, TypeError):  # none yet, unreadable or damaged: check everything again
        return set()


def _remember_accepted(keys: set[str]) -> None:
    """Best effort (a read-only home only means checking again): written whole, then renamed."""
    target = accepted_expectations_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(sorted(keys), indent=0))
        os.replace(partial, target)
    except OSError:
        pass


def load_suites(
    folder: Path = SUITES_DIR, specs: list | None = None, entities: list | None = None
) -> list[Suite]:
    """The suite of every asset with checks: the defaults of `specs` (assets.table_spec.TableSpec) and
    `entities` (assets.gold_spec.GoldEntity) merged with the `*.yaml` files under `folder`
    (recursively; module docstring). Default specs: assets.factory.load_specs() (`$CDC_SPECS_DIR` or the
    shipped ones); default entities: those of the specs. Sorted by asset. Two files for one asset are
    an error naming both files."""
    from expectations.defaults import default_suites

    if specs is None:
        from assets.factory import load_specs

        specs = load_specs()
    if entities is None:
        from assets.factory import load_entities

        entities = load_entities(specs)
    files = {}
    for path in sorted(folder.rglob("*.yaml")):
        suite = load_suite(path)
        if suite.asset in files:
            raise SuiteError(
                f"{suite.source}:1: asset {suite.asset!r} already has a suite: {files[suite.asset].source}"
            )
        files[suite.asset] = suite
    suites = {suite.asset: suite for suite in default_suites(specs, entities)}
    for asset, file in files.items():
        suites[asset] = merge_suite(suites[asset], file) if asset in suites else file
    return [suites[asset] for asset in sorted(suites)]


def merge_suite(defaults: Suite, file: Suite) -> Suite:
    """`file` (a suite file) added to the `defaults` of its asset (module docstring)."""
    own = {
        e.name: e
        if e.severity is not None or "severity" not in file.model_fields_set
        # the file's severity is the default of its own expectations, not of the defaults
        else e.model_copy(update={"severity": file.severity})
        for e in file.expectations
    }
    expectations = [own.pop(e.name, e) for e in defaults.expectations] + list(own.values())
    rows = {
        field: getattr(file, field) for field in ("data", "where", "keys") if field in file.model_fields_set
    }
    return defaults.model_copy(update={**rows, "expectations": expectations, "source": file.source})


def gx_expectation(expectation: ExpectationSpec, kwargs: dict[str, Any] | None = None):
    """The Great Expectations object for a `type` expectation (kwargs: overrides, e.g. a value_set)."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    merged = {**expectation.kwargs, **(kwargs or {})}
    configuration = ExpectationConfiguration(
        type=expectation.type, kwargs=merged, meta={"check": expectation.name}
    )
    return configuration.to_domain_obj()


def _check_gx_expectation(path: Path, root: yaml.Node, index: int, expectation: ExpectationSpec) -> None:
    from great_expectations.exceptions import ExpectationNotFoundError

    loc: tuple = ("expectations", index, "type")
    placeholder = {"value_set": []} if expectation.value_set_sql is not None else {}
    try:
        gx_expectation(expectation, placeholder)
    except ExpectationNotFoundError:
        raise SuiteError(
            f"{path}:{line_of(root, loc)}: expectations[{index}] {expectation.name}: unknown expectation type "
            f"{expectation.type!r} (a Great Expectations 1.x type such as expect_column_values_to_not_be_null)"
        ) from None
    except Exception as exc:  # GX validates kwargs with its own (pydantic v1) models
        problems = []
        for error in getattr(exc, "errors", lambda: [])():
            field_name = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{field_name}: {error.get('msg')}")
        detail = "; ".join(problems) or str(exc)
        kwargs_loc = ("expectations", index, "kwargs")
        line = line_of(root, kwargs_loc if expectation.kwargs else loc)
        raise SuiteError(
            f"{path}:{line}: expectations[{index}] {expectation.name}: {expectation.type}: {detail}"
        ) from None
