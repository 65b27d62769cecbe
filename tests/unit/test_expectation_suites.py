"""Expectation suites as data: the shipped suites load, and every mistake in a suite file fails at load
time naming the file and the line. The Dagster checks built from them follow each expectation's
severity. No Spark here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import pytest
import sqlglot
import yaml
from sqlglot import exp

from assets.table_spec import load_table_specs
from expectations.checks import build_asset_checks
from expectations.suite import SuiteError, load_suite, load_suites
from transforms.specs.table import parse_lag

ROOT = Path(__file__).resolve().parents[2]
GOLD_DIR = ROOT / "assets" / "gold"


@pytest.fixture(autouse=True)
def no_remembered_expectations(tmp_path, monkeypatch):
    """Every test here checks its expectations with Great Expectations (expectations.suite remembers
    those it accepted, in the user's cache folder)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
    asset: silver/s_order
    where: NOT _deleted
    keys: [ROW_ID]
    expectations:
      - name: key_not_null
        type: expect_column_values_to_not_be_null
        kwargs: {column: ROW_ID}
      - name: account_exists
        references:
          to: silver.s_org_ext
          on: {ACCNT_ID: ROW_ID}
        severity: WARN
    """


# -- the shipped suites ----------------------------------------------------------------------------


def test_every_source_table_has_a_bronze_and_a_silver_suite_and_every_gold_entity_a_gold_suite():
    assets = {suite.asset for suite in load_suites()}
    tables = [spec.asset_name for spec in load_table_specs(ROOT / "assets" / "specs")]
    entities = list(yaml.safe_load((GOLD_DIR / "entities.yaml").read_text()))

    expected = {f"{layer}/{t}" for t in tables for layer in ("bronze", "silver")} | {
        f"gold/{e}" for e in entities
    }
    assert assets == expected


def test_silver_suites_check_the_keys_of_their_table_spec():
    specs = {spec.asset_name: spec for spec in load_table_specs(ROOT / "assets" / "specs")}
    for suite in load_suites():
        if suite.layer == "silver":
            checked = {
                e.kwargs.get("column") for e in suite.expectations if e.name in ("key_not_null", "key_unique")
            }
            assert checked == set(specs[suite.table].keys) == set(suite.keys), suite.source


def _gold_columns(entity: str) -> set[str]:
    tree = sqlglot.parse_one((GOLD_DIR / f"{entity}.sql").read_text(), read="spark")
    return set(tree.named_selects) if isinstance(tree, exp.Query) else set()


def test_gold_suites_name_only_columns_the_gold_sql_selects():
    for suite in load_suites():
        if suite.layer != "gold":
            continue
        named = set(suite.keys)
        for expectation in suite.expectations:
            if "column" in expectation.kwargs:
                named.add(expectation.kwargs["column"])
            if expectation.references is not None:
                named.update(expectation.references.on)
                parent = expectation.references.to.split(".")[1]
                assert set(expectation.references.on.values()) <= _gold_columns(parent), suite.source
        missing = named - _gold_columns(suite.table)
        assert not missing, f"{suite.source} names columns gold/{suite.table} does not select: {missing}"


def test_gold_references_check_every_order_customer_and_account_and_every_item_order_and_product():
    suites = {suite.asset: suite for suite in load_suites()}
    blocking_refs = {
        asset: {
            (e.references.to, *e.references.on.items())
            for e in suites[asset].expectations
            if e.references and suites[asset].severity_of(e) == "ERROR"
        }
        for asset in ("gold/order", "gold/order_item")
    }
    assert blocking_refs["gold/order"] == {
        ("gold.customer", ("contact_id", "customer_id")),
        ("gold.account", ("account_id", "account_id")),
    }
    assert blocking_refs["gold/order_item"] == {
        ("gold.order", ("order_id", "order_id")),
        ("gold.product", ("product_id", "product_id")),
    }


# -- loading errors name the file and the line ----------------------------------------------------


def test_a_good_suite_loads_with_its_defaults(tmp_path):
    suite = load_suite(write(tmp_path, "s_order.yaml", GOOD))

    assert suite.asset == "silver/s_order" and suite.data == "table"
    assert [suite.severity_of(e) for e in suite.expectations] == ["ERROR", "WARN"]
    assert suite.expectations[1].references.on == {"ACCNT_ID": "ROW_ID"}  # `on` is not YAML 1.1's True
    assert suite.tables_read() == [("silver", "s_org_ext")]


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "broken.yaml", "asset: silver/s_order\nexpectations: [\n")

    with pytest.raises(SuiteError, match=r"broken\.yaml: not valid YAML"):
        load_suite(path)


def test_unknown_field_names_file_and_line(tmp_path):
    path = write(
        tmp_path,
        "s.yaml",
        GOOD.replace("        kwargs: {column: ROW_ID}", "        kwarg: {column: ROW_ID}"),
    )

    with pytest.raises(SuiteError, match=r"s\.yaml:7: expectations\.0\.kwarg: unknown field"):
        load_suite(path)


def test_missing_expectations_names_the_field(tmp_path):
    path = write(tmp_path, "s.yaml", "asset: gold/order\n")

    with pytest.raises(SuiteError, match=r"s\.yaml:1: expectations: required field is missing"):
        load_suite(path)


def test_unknown_expectation_type_names_file_and_line(tmp_path):
    path = write(
        tmp_path,
        "s.yaml",
        GOOD.replace("expect_column_values_to_not_be_null", "expect_column_values_to_be_nul"),
    )

    with pytest.raises(
        SuiteError,
        match=r"s\.yaml:6: .*key_not_null: unknown expectation type 'expect_column_values_to_be_nul'",
    ):
        load_suite(path)


def test_kwargs_the_expectation_does_not_take_name_file_and_line(tmp_path):
    path = write(tmp_path, "s.yaml", GOOD.replace("{column: ROW_ID}", "{column: ROW_ID, mostly: 2}"))

    with pytest.raises(
        SuiteError, match=r"s\.yaml:7: .*key_not_null: expect_column_values_to_not_be_null: mostly"
    ):
        load_suite(path)


def test_a_required_expectation_argument_that_is_missing_names_it(tmp_path):
    text = GOOD.replace("expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set")

    with pytest.raises(SuiteError, match=r"s\.yaml:7: .*value_set: field required"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_value_set_sql_stands_in_for_the_value_set(tmp_path):
    text = GOOD.replace(
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
    ).replace(
        "kwargs: {column: ROW_ID}",
        "kwargs: {column: ROW_ID}\n        value_set_sql: SELECT NAME FROM {silver.s_lst_of_val}",
    )

    suite = load_suite(write(tmp_path, "s.yaml", text))

    # (the value set comes at run time: no "value_set: field required")
    assert suite.tables_read() == [("silver", "s_lst_of_val"), ("silver", "s_org_ext")]


COMPUTED = """
      - name: few_long_comments
        computed: {comment_length: length(COMMENTS)}
        type: expect_column_values_to_be_between
        kwargs: {column: comment_length, max_value: 2000}
"""


def test_a_computed_column_loads_with_its_expression(tmp_path):
    suite = load_suite(write(tmp_path, "s.yaml", GOOD + COMPUTED))

    [comments] = [e for e in suite.expectations if e.name == "few_long_comments"]
    assert comments.computed == {"comment_length": "length(COMMENTS)"} and comments.sql is None


def test_computed_columns_beside_sql_name_their_line(tmp_path):
    text = GOOD + COMPUTED + "        sql: SELECT length(COMMENTS) AS comment_length FROM {this}\n"

    with pytest.raises(SuiteError, match=r"s\.yaml:14: expectations\.2: .*give sql or computed, not both"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_one_name_computed_two_ways_in_a_suite_is_an_error(tmp_path):
    other = (
        COMPUTED.replace("few_long_comments", "few_long_notes")
        .replace("COMMENTS)", "NOTES)")
        .replace("{comment_length:", "{COMMENT_LENGTH:")  # Spark's names ignore case
    )

    with pytest.raises(SuiteError, match=r"'COMMENT_LENGTH' of 'few_long_notes' is computed otherwise by"):
        load_suite(write(tmp_path, "s.yaml", GOOD + COMPUTED + other))


def test_a_computed_column_goes_with_type_only(tmp_path):
    text = GOOD.replace("        severity: WARN", "        severity: WARN\n        computed: {n: size(X)}")

    with pytest.raises(SuiteError, match=r"computed go with `type`, not with references"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_an_expectation_of_two_kinds_names_its_line(tmp_path):
    text = GOOD.replace(
        "        severity: WARN",
        "        severity: WARN\n        freshness: {column: _commit_ts, max_lag: 1h}",
    )

    with pytest.raises(
        SuiteError, match=r"s\.yaml:8: expectations\.1: .*exactly one of type, references, freshness"
    ):
        load_suite(write(tmp_path, "s.yaml", text))


def test_a_bad_lag_names_its_line(tmp_path):
    text = GOOD + "  - name: fresh\n        freshness: {column: _commit_ts, max_lag: soon}\n"

    with pytest.raises(SuiteError, match=r"s\.yaml:14: expectations\.2\.freshness\.max_lag: .*'soon'"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_lags_are_numbers_with_a_unit():
    assert parse_lag("90s").total_seconds() == 90
    assert parse_lag("6h").total_seconds() == 6 * 3600
    assert parse_lag("2d").days == 2


def test_a_reference_to_an_unknown_layer_names_its_line(tmp_path):
    text = GOOD.replace("to: silver.s_org_ext", "to: platinum.s_org_ext")

    with pytest.raises(SuiteError, match=r"s\.yaml:10: expectations\.1\.references\.to: .*platinum"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_an_unknown_severity_names_its_line(tmp_path):
    text = GOOD.replace("severity: WARN", "severity: FATAL")

    with pytest.raises(
        SuiteError, match=r"s\.yaml:12: expectations\.1\.severity: Input should be 'ERROR' or 'WARN'"
    ):
        load_suite(write(tmp_path, "s.yaml", text))


def test_an_expectation_name_used_twice_is_an_error(tmp_path):
    text = GOOD.replace("name: account_exists", "name: key_not_null")

    with pytest.raises(SuiteError, match=r"s\.yaml:\d+: .*'key_not_null' is used twice"):
        load_suite(write(tmp_path, "s.yaml", text))


def test_two_suites_for_one_asset_name_both_files(tmp_path):
    write(tmp_path, "a/one.yaml", GOOD)
    write(tmp_path, "b/two.yaml", GOOD)

    with pytest.raises(
        SuiteError, match=r"two\.yaml:1: asset 'silver/s_order' already has a suite: .*one\.yaml"
    ):
        load_suites(tmp_path)


def test_an_asset_that_is_not_layer_slash_name_is_an_error(tmp_path):
    text = GOOD.replace("asset: silver/s_order", "asset: s_order")

    with pytest.raises(SuiteError, match=r"s\.yaml:1: asset: .*<layer>/<name>"):
        load_suite(write(tmp_path, "s.yaml", text))


# -- the Dagster checks ------------------------------------------------------------------------------


def test_one_check_per_expectation_blocking_exactly_when_severity_is_error(tmp_path):
    suite = load_suite(write(tmp_path, "s.yaml", GOOD))

    [checks] = build_asset_checks([suite])
    specs = {spec.name: spec for spec in checks.check_specs}

    assert set(specs) == {"key_not_null", "account_exists"}
    assert specs["key_not_null"].blocking is True
    assert specs["account_exists"].blocking is False
    assert {spec.asset_key for spec in specs.values()} == {dg.AssetKey(["silver", "s_order"])}
    assert [dep.asset_key for dep in specs["account_exists"].additional_deps] == [
        dg.AssetKey(["silver", "s_org_ext"])
    ]


def test_shipped_suites_become_checks_that_load_in_definitions():
    from resources.connections import resources_from_env

    suites = load_suites()
    checks = build_asset_checks(suites)
    defs = dg.Definitions(asset_checks=checks, resources=resources_from_env())

    assert len(defs.resolve_asset_graph().asset_check_keys) == sum(len(s.expectations) for s in suites)


def test_great_expectations_checks_each_expectation_once_then_loading_does_not_import_it(
    tmp_path, monkeypatch
):
    """Importing Great Expectations costs about 10 s of CPU in every process that loads the Definitions
    (each run's worker, the code server, the loop): the first load checks every expectation with it and
    remembers those it accepted; the next loads do not import it, and a changed expectation is checked
    again (and refused here)."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys, orchestration.definitions; "
        "print(sorted(m for m in sys.modules if m.startswith('great_expectations'))[:1])"
    )
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def great_expectations_imported() -> bool:
        loaded = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=300,
            env=environment,
            check=True,
        )
        return loaded.stdout.strip() != "[]"

    assert great_expectations_imported()
    assert (tmp_path / "cache" / "cdc-lakehouse" / "accepted-expectations.json").is_file()
    assert not great_expectations_imported()

    monkeypatch.setenv("XDG_CACHE_HOME", environment["XDG_CACHE_HOME"])  # this process: the same cache
    changed = write(tmp_path, "s.yaml", GOOD.replace("{column: ROW_ID}", "{column: ROW_ID, mostly: 2}"))
    with pytest.raises(
        SuiteError, match=r"s\.yaml:7: .*key_not_null: expect_column_values_to_not_be_null: mostly"
    ):
        load_suite(changed)


def test_assets_limit_the_checks_to_assets_that_exist(tmp_path):
    suite = load_suite(write(tmp_path, "s.yaml", GOOD))

    def asset(*path: str) -> dg.AssetsDefinition:
        @dg.asset(key=dg.AssetKey(list(path)))
        def _table() -> None: ...

        return _table

    assert build_asset_checks([suite], assets=[asset("gold", "order")]) == []
    [checks] = build_asset_checks([suite], assets=[asset("silver", "s_order")])
    assert all(not spec.additional_deps for spec in checks.check_specs)


def _upstream_steps(job: dg.JobDefinition, step: str) -> set[str]:
    """Every step `step` waits for in `job`, directly or not."""
    structure = job.graph.dependency_structure
    found: set[str] = set()
    todo = [step]
    while todo:
        for output in structure.all_upstream_outputs_from_node(todo.pop()):
            if output.node_name not in found:
                found.add(output.node_name)
                todo.append(output.node_name)
    return found


def test_each_suite_is_one_step_that_only_what_is_built_from_its_asset_waits_for():
    """On the shipped graph: a projection waits for the check steps of the gold entities it reads and of
    no other gold entity; a suite that reads another gold entity waits for that entity's materialization,
    not for its checks (its ordering check, non-blocking, lets it)."""
    from orchestration.definitions import defs, entities, projections

    job = defs.resolve_job_def("microbatch")
    gold_check_steps = {f"expectations_gold_{entity.name}" for entity in entities}
    assert gold_check_steps <= set(job.graph.node_dict)
    for projection in projections:
        waits = _upstream_steps(job, f"cassandra__{projection.projection}")
        assert waits & gold_check_steps == {f"expectations_gold_{name}" for name in projection.entities}, (
            projection
        )

    order_waits = {
        output.node_name
        for output in job.graph.dependency_structure.all_upstream_outputs_from_node("expectations_gold_order")
    }
    assert {"gold__order", "gold__customer", "gold__account"} <= order_waits
    assert not order_waits & gold_check_steps

    graph = defs.resolve_asset_graph()
    ordering = {key for key in graph.asset_check_keys if key.name.startswith("read_by_")}
    assert dg.AssetCheckKey(dg.AssetKey(["gold", "customer"]), "read_by_gold_order") in ordering
    assert all(not graph.get_check_spec(key).blocking for key in ordering)
    # gold reads silver/s_lst_of_val upstream of it: no ordering check there
    assert not {key for key in ordering if key.asset_key == dg.AssetKey(["silver", "s_lst_of_val"])}
