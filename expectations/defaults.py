"""The default checks every table gets, derived from its table spec or gold entity.

- bronze/<table> (every table spec): `few_quarantined_in_last_batch`, WARN: the newest batch
  quarantined at most `checks.quarantined_max` records (default 10).
- silver/<table> (every table spec), on the live rows (SCD1: not `_deleted`; SCD2: `_is_current`),
  ERROR unless said: the spec's keys present and unique (`key_not_null`, `key_unique`), the sequence
  present (`sequence_not_null`), `few_incomplete_rows` (at least `checks.incomplete_mostly` of the rows,
  default 0.95, have every column known) and `fresh`, WARN (the newest change is at most
  `checks.fresh_max_lag` old, default 1d). An outbox table (`outbox:` in its spec) also: its aggregate
  type, aggregate id and event type present on every event (`event_aggregate_type_not_null`,
  `event_aggregate_id_not_null`, `event_type_not_null`).
- gold/<entity> (every entity of assets/gold/entities.yaml), ERROR: its keys present and unique.

A single key column gives `key_not_null` and `key_unique`; several give `key_<column>_not_null` per
column and one `key_unique` on the combination. The parameters are the spec's `checks:` block
(transforms.specs.table.ChecksSpec holds the defaults); nothing here knows a particular table. A suite file
under expectations/suites/ adds the table's own expectations and may replace a default by giving an
expectation of the same name (expectations.suite.load_suites merges them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from assets.gold_spec import GoldEntity
from expectations.suite import ExpectationSpec, Suite
from transforms.merge.layout import (
    COMMIT_TS,
    DELETED,
    INCOMPLETE,
    IS_CURRENT,
    SEQUENCE,
    VALID_FROM_SEQ,
    VALID_FROM_TS,
    silver_column,
)
from transforms.specs.table import TableSpec

SOURCE = str(Path(__file__))  # a suite made only of defaults names this file as its source
QUARANTINE_KEYS = ["topic", "partition", "offset"]  # identify a quarantined Kafka record
# the live rows of a silver table and its columns of sequence and commit time, by `history`
LIVE_ROWS = {"scd1": f"NOT {DELETED}", "scd2": IS_CURRENT}
SEQUENCE_COLUMN = {"scd1": SEQUENCE, "scd2": VALID_FROM_SEQ}
COMMIT_TS_COLUMN = {"scd1": COMMIT_TS, "scd2": VALID_FROM_TS}


def default_suites(specs: Iterable[TableSpec], entities: Iterable[GoldEntity]) -> list[Suite]:
    """The default suite of every bronze and silver table of `specs` and every gold entity."""
    suites = []
    for spec in specs:
        suites += [bronze_defaults(spec), silver_defaults(spec)]
    return suites + [gold_defaults(entity) for entity in entities]


def bronze_defaults(spec: TableSpec) -> Suite:
    most = spec.checks.quarantined_max
    return Suite(
        asset=f"bronze/{spec.asset_name}",
        data="last_batch_quarantine",
        keys=QUARANTINE_KEYS,
        severity="WARN",
        expectations=[
            ExpectationSpec(
                name="few_quarantined_in_last_batch",
                description=f"The newest bronze batch quarantined at most {most} records.",
                type="expect_table_row_count_to_be_between",
                kwargs={"min_value": 0, "max_value": most},
            )
        ],
        source=SOURCE,
    )


def silver_defaults(spec: TableSpec) -> Suite:
    keys = [silver_column(key) for key in spec.keys]
    mostly = spec.checks.incomplete_mostly
    share = f"{round((1 - mostly) * 100, 4):g}%"
    return Suite(
        asset=f"silver/{spec.asset_name}",
        where=LIVE_ROWS[spec.history],
        keys=keys,
        severity="ERROR",
        expectations=[
            *key_expectations(keys),
            ExpectationSpec(
                name="sequence_not_null",
                type="expect_column_values_to_not_be_null",
                kwargs={"column": SEQUENCE_COLUMN[spec.history]},
            ),
            ExpectationSpec(
                name="few_incomplete_rows",
                description=f"At most {share} of the live rows were created by a partial update and still miss columns.",
                computed={"_unknown_columns": f"size({INCOMPLETE})"},
                type="expect_column_values_to_be_between",
                kwargs={"column": "_unknown_columns", "max_value": 0, "mostly": mostly},
            ),
            ExpectationSpec(
                name="fresh",
                freshness={"column": COMMIT_TS_COLUMN[spec.history], "max_lag": spec.checks.fresh_max_lag},
                severity="WARN",
            ),
            *outbox_expectations(spec),
        ],
        source=SOURCE,
    )


def outbox_expectations(spec: TableSpec) -> list[ExpectationSpec]:
    """An outbox table's events each name their aggregate and type (what a consumer routes them by)."""
    if spec.outbox is None:
        return []
    columns = {
        "event_aggregate_type_not_null": spec.outbox.aggregate_type,
        "event_aggregate_id_not_null": spec.outbox.aggregate_id,
        "event_type_not_null": spec.outbox.event_type,
    }
    return [
        ExpectationSpec(
            name=name, type="expect_column_values_to_not_be_null", kwargs={"column": silver_column(column)}
        )
        for name, column in columns.items()
    ]


def gold_defaults(entity: GoldEntity) -> Suite:
    return Suite(
        asset=f"gold/{entity.name}",
        keys=entity.keys,
        severity="ERROR",
        expectations=key_expectations(entity.keys),
        source=SOURCE,
    )


def key_expectations(keys: list[str]) -> list[ExpectationSpec]:
    """Every key column present; the key (the combination, when several) unique."""
    if len(keys) == 1:
        not_null = [
            ExpectationSpec(
                name="key_not_null", type="expect_column_values_to_not_be_null", kwargs={"column": keys[0]}
            )
        ]
        unique = ExpectationSpec(
            name="key_unique", type="expect_column_values_to_be_unique", kwargs={"column": keys[0]}
        )
    else:
        not_null = [
            ExpectationSpec(
                name=f"key_{_name_part(key)}_not_null",
                type="expect_column_values_to_not_be_null",
                kwargs={"column": key},
            )
            for key in keys
        ]
        unique = ExpectationSpec(
            name="key_unique", type="expect_compound_columns_to_be_unique", kwargs={"column_list": keys}
        )
    return [*not_null, unique]


def _name_part(column: str) -> str:
    """A column name as part of a check name (lower snake_case)."""
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_") or "column"
