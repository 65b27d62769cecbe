"""Default checks derived from the specs (expectations.defaults): every table gets them, with or
without a suite file; a suite file adds its own expectations and replaces a default of the same name;
the shipped tables keep the names, severities, kwargs and rows of the checks they had. No Spark here."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.gold_spec import load_gold_entities
from assets.table_spec import load_table_spec, load_table_specs
from assets.yaml_loader import SpecError
from expectations.checks import build_asset_checks
from expectations.defaults import default_suites
from expectations.suite import gx_expectation, load_suites
from tests.unit.test_expectation_suites import no_remembered_expectations, write  # noqa: F401 (an autouse fixture)

ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = ROOT / "assets" / "specs"
WIDGET = """\
table: SHOP.WIDGET_LINE
topic: shop.WIDGET_LINE
format: goldengate_json
keys: [WIDGET_ID, LINE]
"""


QUARANTINE_CHECK = {
    "few_quarantined_in_last_batch": (
        "WARN",
        "expectation",
        "expect_table_row_count_to_be_between",
        {"min_value": 0, "max_value": 10},
    )
}


def by_asset(suites) -> dict:
    return {suite.asset: suite for suite in suites}


def summary(suite) -> dict[str, tuple]:
    """name -> (effective severity, kind, type, kwargs) of each expectation, in order."""
    return {
        e.name: (
            suite.severity_of(e),
            e.kind,
            e.type,
            e.freshness.model_dump() if e.freshness else e.kwargs,
        )
        for e in suite.expectations
    }


def widget_suites(tmp_path: Path, spec_text: str = WIDGET, suites_dir: Path | None = None):
    spec = load_table_spec(write(tmp_path / "specs", "widget_line.yaml", spec_text))
    folder = suites_dir or (tmp_path / "no-suites")
    folder.mkdir(parents=True, exist_ok=True)
    return by_asset(load_suites(folder, specs=[spec], entities=[]))


# -- a table without a suite file ----------------------------------------------------------------


def test_a_table_without_a_suite_file_gets_its_bronze_and_silver_defaults(tmp_path):
    suites = widget_suites(tmp_path)

    assert set(suites) == {"bronze/widget_line", "silver/widget_line"}
    bronze, silver = suites["bronze/widget_line"], suites["silver/widget_line"]
    assert (bronze.data, bronze.keys, bronze.where) == (
        "last_batch_quarantine",
        ["topic", "partition", "offset"],
        None,
    )
    assert summary(bronze) == QUARANTINE_CHECK
    assert (silver.data, silver.keys, silver.where) == ("table", ["WIDGET_ID", "LINE"], "NOT _deleted")
    # several key columns: one not-null check per column, one uniqueness check of the combination
    assert summary(silver) == {
        "key_widget_id_not_null": (
            "ERROR",
            "expectation",
            "expect_column_values_to_not_be_null",
            {"column": "WIDGET_ID"},
        ),
        "key_line_not_null": (
            "ERROR",
            "expectation",
            "expect_column_values_to_not_be_null",
            {"column": "LINE"},
        ),
        "key_unique": (
            "ERROR",
            "expectation",
            "expect_compound_columns_to_be_unique",
            {"column_list": ["WIDGET_ID", "LINE"]},
        ),
        "sequence_not_null": (
            "ERROR",
            "expectation",
            "expect_column_values_to_not_be_null",
            {"column": "_sequence"},
        ),
        "few_incomplete_rows": (
            "ERROR",
            "expectation",
            "expect_column_values_to_be_between",
            {"column": "_unknown_columns", "max_value": 0, "mostly": 0.95},
        ),
        "fresh": ("WARN", "freshness", None, {"column": "_commit_ts", "max_lag": "1d"}),
    }
    incomplete = next(e for e in silver.expectations if e.name == "few_incomplete_rows")
    assert incomplete.sql is None and incomplete.computed == {"_unknown_columns": "size(_incomplete)"}


def test_great_expectations_accepts_every_default_expectation(tmp_path):
    specs = load_table_specs(SPECS_DIR)
    entities = load_gold_entities(known_tables={spec.asset_name for spec in specs})
    defaults = [*widget_suites(tmp_path).values(), *default_suites(specs, entities)]
    for suite in defaults:
        for expectation in suite.expectations:
            if expectation.type is not None:
                gx_expectation(expectation)  # raises on an unknown type or kwargs it does not take


def test_an_scd2_table_is_checked_on_its_current_versions(tmp_path):
    silver = widget_suites(tmp_path, WIDGET + "history: scd2\n")["silver/widget_line"]

    assert silver.where == "_is_current"
    columns = {
        e.name: e.kwargs.get("column") or (e.freshness and e.freshness.column) for e in silver.expectations
    }
    assert columns["sequence_not_null"] == "_valid_from_seq"
    assert columns["fresh"] == "_valid_from_ts"


def test_an_outbox_table_is_checked_for_the_aggregate_and_type_of_every_event(tmp_path):
    outbox = "table: svc.events\ntopic: svc.events\nformat: debezium_json\nkeys: [event_id]\n"
    outbox += "outbox: {event_id: event_id, aggregate_id: order_ref}\n"
    (tmp_path / "specs").mkdir()
    spec = load_table_spec(write(tmp_path / "specs", "events.yaml", outbox))
    [silver] = [s for s in default_suites([spec], []) if s.asset == "silver/events"]
    columns = {e.name: e.kwargs.get("column") for e in silver.expectations}
    assert {name: columns[name] for name in columns if name.startswith("event_")} == {
        "event_aggregate_type_not_null": "aggregatetype",
        "event_aggregate_id_not_null": "order_ref",
        "event_type_not_null": "type",
    }
    plain = load_table_spec(write(tmp_path / "specs", "plain.yaml", WIDGET))
    [plain_silver] = [s for s in default_suites([plain], []) if s.asset.startswith("silver/")]
    assert not [e for e in plain_silver.expectations if e.name.startswith("event_")]


def test_the_spec_checks_block_sets_the_parameters_of_the_defaults(tmp_path):
    text = WIDGET + "checks:\n  quarantined_max: 3\n  incomplete_mostly: 0.99\n  fresh_max_lag: 6h\n"
    suites = widget_suites(tmp_path, text)

    [quarantine] = suites["bronze/widget_line"].expectations
    assert quarantine.kwargs == {"min_value": 0, "max_value": 3}
    assert quarantine.description == "The newest bronze batch quarantined at most 3 records."
    silver = {e.name: e for e in suites["silver/widget_line"].expectations}
    assert silver["few_incomplete_rows"].kwargs["mostly"] == 0.99
    assert silver["few_incomplete_rows"].description.startswith("At most 1% of the live rows")
    assert silver["fresh"].freshness.max_lag == "6h"


def test_a_bad_checks_block_names_the_spec_file_and_line(tmp_path):
    path = write(tmp_path, "w.yaml", WIDGET + "checks:\n  fresh_max_lag: soon\n")
    with pytest.raises(SpecError, match=r"w\.yaml:6: checks\.fresh_max_lag: .*'soon'"):
        load_table_spec(path)
    path = write(tmp_path, "w.yaml", WIDGET + "checks:\n  fresh_lag: 2d\n")
    with pytest.raises(
        SpecError, match=r"w\.yaml:6: checks\.fresh_lag: unknown field \(allowed: quarantined_max"
    ):
        load_table_spec(path)


def test_a_gold_entity_gets_its_key_checks():
    specs = load_table_specs(SPECS_DIR)
    entities = load_gold_entities(known_tables={spec.asset_name for spec in specs})
    suites = by_asset(load_suites(ROOT / "tests" / "no-such-folder", specs=[], entities=entities))

    assert set(suites) == {f"gold/{entity.name}" for entity in entities}
    assert summary(suites["gold/customer"]) == {
        "key_not_null": (
            "ERROR",
            "expectation",
            "expect_column_values_to_not_be_null",
            {"column": "customer_id"},
        ),
        "key_unique": (
            "ERROR",
            "expectation",
            "expect_column_values_to_be_unique",
            {"column": "customer_id"},
        ),
    }


def test_a_table_added_through_cdc_specs_dir_has_default_checks_in_the_definitions(tmp_path, monkeypatch):
    from orchestration.definitions import build_definitions
    from resources.connections import resources_from_env

    specs_dir = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, specs_dir)
    write(specs_dir, "widget_line.yaml", WIDGET)
    monkeypatch.setenv("CDC_SPECS_DIR", str(specs_dir))
    from assets.factory import load_specs

    graph = build_definitions(load_specs(), resources_from_env()).resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}

    assert ("bronze/widget_line", "few_quarantined_in_last_batch") in checks
    assert {name for asset, name in checks if asset == "silver/widget_line"} == {
        "key_widget_id_not_null",
        "key_line_not_null",
        "key_unique",
        "sequence_not_null",
        "few_incomplete_rows",
        "fresh",
    }
    assert ("silver/s_order", "account_exists") in checks  # the shipped tables keep theirs


# -- a suite file beside the defaults ------------------------------------------------------------


def test_a_file_adds_its_expectations_after_the_defaults_and_one_of_the_same_name_replaces_the_default(
    tmp_path,
):
    suites_dir = tmp_path / "suites"
    write(
        suites_dir,
        "silver/widget_line.yaml",
        """
        asset: silver/widget_line
        severity: WARN
        expectations:
          - name: fresh
            freshness: {column: _commit_ts, max_lag: 2h}
            severity: ERROR
          - name: line_positive
            type: expect_column_values_to_be_between
            kwargs: {column: LINE, min_value: 1}
        """,
    )

    silver = widget_suites(tmp_path, suites_dir=suites_dir)["silver/widget_line"]

    assert [e.name for e in silver.expectations] == [
        "key_widget_id_not_null",
        "key_line_not_null",
        "key_unique",
        "sequence_not_null",
        "few_incomplete_rows",
        "fresh",  # the file's, in the default's place
        "line_positive",
    ]
    fresh = next(e for e in silver.expectations if e.name == "fresh")
    assert (fresh.freshness.max_lag, silver.severity_of(fresh)) == ("2h", "ERROR")
    # the file's severity is that of its own expectations, not of the defaults
    severities = {e.name: silver.severity_of(e) for e in silver.expectations}
    assert severities["line_positive"] == "WARN"
    assert severities["key_unique"] == "ERROR"
    assert silver.where == "NOT _deleted" and silver.source.endswith("widget_line.yaml")


def test_the_shipped_checks_keep_their_names_severities_and_parameters():
    suites = by_asset(load_suites())

    for table in ("s_order", "s_contact", "s_lst_of_val"):
        bronze = suites[f"bronze/{table}"]
        assert summary(bronze) == QUARANTINE_CHECK
    order = suites["silver/s_order"]
    assert (order.where, order.keys) == ("NOT _deleted", ["ROW_ID"])
    assert {name: s[0] for name, s in summary(order).items()} == {
        "key_not_null": "ERROR",
        "key_unique": "ERROR",
        "sequence_not_null": "ERROR",
        "few_incomplete_rows": "ERROR",
        "fresh": "WARN",
        "account_exists": "WARN",
        "contact_exists": "WARN",
    }
    incomplete = next(e for e in order.expectations if e.name == "few_incomplete_rows")
    assert (
        incomplete.description
        == "At most 5% of the live rows were created by a partial update and still miss columns."
    )
    assert incomplete.sql is None and incomplete.computed == {"_unknown_columns": "size(_incomplete)"}
    lags = {asset: e.freshness.max_lag for asset, s in suites.items() for e in s.expectations if e.freshness}
    assert lags.pop("silver/s_lst_of_val") == "30d"  # its spec's checks block
    assert set(lags.values()) == {"1d"}

    [checks] = build_asset_checks([suites["gold/order"]])
    blocking = {spec.name: spec.blocking for spec in checks.check_specs}
    assert blocking["key_not_null"] and blocking["key_unique"] and not blocking["billing_account_exists"]
    assert {spec.asset_key for spec in checks.check_specs} == {dg.AssetKey(["gold", "order"])}
