"""The shipped expectation suites on real Spark + Delta tables, and their Dagster checks gating a run.

Each test writes small Delta tables shaped like silver (source columns + `_deleted`, `_incomplete`,
`_sequence`, `_commit_ts`), gold (snake_case entities) and bronze/quarantine, then runs the shipped
suites (the defaults derived from the specs with `expectations/suites/`) on them. A defect is injected into otherwise clean tables and the test asserts
that exactly the check for that rule fails, with the right unexpected count and sample keys.

The last test runs the project's real Definitions (orchestration.definitions.build_definitions: every
asset, check and the `microbatch` job) on Kafka, Spark + Delta and Cassandra of the test stack, breaks
gold/customer and checks what a failing check holds back.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pyspark.sql import DataFrame

from expectations import validate as validate_module
from expectations.checks import build_asset_checks
from expectations.suite import ExpectationSpec, load_suites
from expectations.validate import KEYED_SAMPLE_LIMIT, run_suite
from resources.connections import LakeResource, SparkResource
from transforms.bronze_rows import BRONZE_SCHEMA, QUARANTINE_SCHEMA
from transforms.delta_commits import current_version, progress_metadata

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, 0)
SUITES = {suite.asset: suite for suite in load_suites()}

SILVER_CONTACT = (
    "ROW_ID STRING, FST_NAME STRING, EMAIL_ADDR STRING, "
    "_deleted BOOLEAN, _incomplete ARRAY<STRING>, _sequence STRING, _commit_ts TIMESTAMP"
)
SILVER_LOV = (
    "ROW_ID STRING, TYPE STRING, NAME STRING, VAL STRING, LANG_ID STRING, ACTIVE_FLG STRING, "
    "_deleted BOOLEAN, _incomplete ARRAY<STRING>, _sequence STRING, _commit_ts TIMESTAMP"
)
GOLD = {
    "customer": (
        "customer_id STRING, email STRING, work_phone STRING, mobile_phone STRING, "
        "contact_type_code STRING, status_code STRING, preferred_contact_method_code STRING, "
        "segment_code STRING, is_employee BOOLEAN, suppress_mail BOOLEAN, suppress_calls BOOLEAN, "
        "send_newsletter BOOLEAN, is_private BOOLEAN, account_id STRING"
    ),
    "account": (
        "account_id STRING, main_phone STRING, account_type_code STRING, status_code STRING, "
        "is_internal BOOLEAN, is_prospect BOOLEAN, is_active BOOLEAN, primary_contact_id STRING"
    ),
    "order": (
        "order_id STRING, contact_id STRING, account_id STRING, billing_account_id STRING, "
        "status_code STRING, category_code STRING, on_hold BOOLEAN"
    ),
    "order_item": "order_item_id STRING, order_id STRING, product_id STRING, action_code STRING, status_code STRING",
    "product": (
        "product_id STRING, product_type_code STRING, unit_of_measure_code STRING, status_code STRING, "
        "is_sales_product BOOLEAN, is_orderable BOOLEAN, vendor_account_id STRING"
    ),
}
LOV_CODES = {
    "CONTACT_TYPE": "Customer",
    "CONTACT_STATUS": "Active",
    "COMM_METHOD": "Email",
    "CUSTOMER_SEGMENT": "GOLD",
    "ACCOUNT_TYPE": "Customer",
    "ACCOUNT_STATUS": "Active",
    "ORDER_STATUS": "Open",
    "ORDER_CATEGORY": "Sales",
    "ORDER_ITEM_ACTION": "Add",
    "ORDER_ITEM_STATUS": "Open",
    "PRODUCT_TYPE": "Product",
    "UNIT_OF_MEASURE": "Each",
    "PRODUCT_STATUS": "Active",
}


def _ts(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def clean_silver_contact() -> list[tuple]:
    return [
        ("1-A", "Ann", "ann.1@acme.example.com", False, [], "0001", _ts(3)),
        ("1-B", "Bob", None, False, [], "0002", _ts(2)),
        ("1-C", "Cyd", "cyd.7@zeta.example.com", False, [], "0003", _ts(1)),
        ("1-D", "Dan", "dan@x.example.com", True, [], "0004", _ts(1)),  # deleted: a tombstone
        (None, None, None, True, [], "0005", _ts(1)),  # the table row (truncate barrier) is a tombstone
    ]


def clean_lov() -> list[tuple]:
    rows = [
        (f"L-{i}", lov_type, code, code, "ENU", "Y", False, [], f"{i:04d}", _ts(24))
        for i, (lov_type, code) in enumerate(LOV_CODES.items())
    ]
    rows.append(
        ("L-99", "ORDER_STATUS", "Retired", "Retired", "ENU", "Y", True, [], "0099", _ts(24))
    )  # deleted
    return rows


def clean_gold() -> dict[str, list[tuple]]:
    return {
        "customer": [
            (
                "1-A",
                "ann.1@acme.example.com",
                "+46 123 4567890",
                None,
                "Customer",
                "Active",
                "Email",
                "GOLD",
                False,
                False,
                True,
                True,
                False,
                "2-X",
            ),
            (
                "1-B",
                None,
                None,
                "+1 555 1234567",
                "Customer",
                "Active",
                None,
                None,
                False,
                True,
                False,
                False,
                False,
                None,
            ),
        ],
        "account": [("2-X", "+49 301 2345678", "Customer", "Active", False, True, True, "1-A")],
        "order": [
            ("3-1", "1-A", "2-X", None, "Open", "Sales", False),
            ("3-2", "1-B", "2-X", "2-X", "Open", "Sales", True),
        ],
        "order_item": [("4-1", "3-1", "5-P", "Add", "Open"), ("4-2", "3-2", "5-P", "Add", "Open")],
        "product": [("5-P", "Product", "Each", "Active", True, True, None)],
    }


class Lake:
    """A folder of Delta tables laid out like LakeResource (<root>/<layer>/<name>). A table this lake
    has not written is read from `fallback` (the clean lake shared by the module), so a test writes
    only the tables it changes.

    With `both_engines`, each suite is validated twice over the same tables: as these small tables are
    (their rows collected to the driver for GX's pandas engine), and with every frame on GX's Spark
    engine, as a table over validate.DRIVER_CELLS values is. The two must give equal outcomes."""

    def __init__(self, spark, root, fallback: Lake | None = None, both_engines: bool = False):
        self.spark = spark
        self.resource = LakeResource(root=str(root))
        self.fallback = fallback
        self.both_engines = both_engines
        self.written: set[tuple[str, str]] = set()

    def path(self, layer: str, name: str) -> str:
        if self.fallback is not None and (layer, name) not in self.written:
            return self.fallback.path(layer, name)
        return self.resource.table_path(layer, name)

    def write(
        self, layer: str, name: str, rows: list[tuple], schema, mode: str = "overwrite", **options
    ) -> None:
        self.written.add((layer, name))
        writer = self.spark.createDataFrame(rows, schema).write.format("delta").mode(mode)
        for key, value in options.items():
            writer = writer.option(key, value)
        writer.save(self.path(layer, name))

    def run(self, asset: str, **kwargs):
        return self.run_suite(SUITES[asset], **kwargs)

    def run_suite(self, suite, **kwargs) -> dict:
        """The suite's outcomes by expectation name (on both engines, equal, with `both_engines`)."""

        def validated() -> dict:
            return {o.name: o for o in run_suite(self.spark, suite, self.path, now=NOW, **kwargs)}

        outcomes = validated()
        if self.both_engines:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(validate_module, "_rows_on_driver", lambda frame: None)
                on_spark = validated()
            on_driver, on_spark = without_expression_ids(outcomes), without_expression_ids(on_spark)
            assert on_spark == on_driver, {
                name: (on_driver[name], on_spark.get(name))
                for name in on_driver
                if on_spark.get(name) != on_driver[name]
            }
        return outcomes


def without_expression_ids(outcomes: dict) -> dict:
    """The outcomes with the expression ids of an analysis error's plan (`ROW_ID#83077`) masked: Spark
    numbers them anew in each analysis."""
    return {
        name: replace(o, error=re.sub(r"#\d+", "#", o.error)) if o.error else o
        for name, o in outcomes.items()
    }


def failed(outcomes: dict) -> set[str]:
    return {name for name, outcome in outcomes.items() if not outcome.success}


@pytest.fixture(scope="module")
def clean_lake(spark, tmp_path_factory):
    lake = Lake(spark, tmp_path_factory.mktemp("clean_lake"))
    lake.write("silver", "s_contact", clean_silver_contact(), SILVER_CONTACT)
    lake.write("silver", "s_lst_of_val", clean_lov(), SILVER_LOV)
    for entity, rows in clean_gold().items():
        lake.write("gold", entity, rows, GOLD[entity])
    return lake


@pytest.fixture
def lake(spark, tmp_lake, clean_lake):
    """A test's lake: its suites validated on both engines, with equal outcomes (Lake)."""
    return Lake(spark, tmp_lake, fallback=clean_lake, both_engines=True)


@pytest.fixture
def one_engine_lake(spark, tmp_lake, clean_lake):
    """A lake whose suites are validated once, as these small tables are: for the tests of which engine
    a frame goes to and of what a check holds back in a run (the tests on `lake` prove the outcomes
    equal on both engines)."""
    return Lake(spark, tmp_lake, fallback=clean_lake)


def test_clean_tables_pass_every_check_of_their_suites(lake):
    for asset in ["silver/s_contact", "silver/s_lst_of_val", *[f"gold/{entity}" for entity in GOLD]]:
        outcomes = lake.run(asset)
        assert failed(outcomes) == set(), (asset, [o.summary() for o in outcomes.values() if not o.success])
        assert set(outcomes) == {e.name for e in SUITES[asset].expectations}


def test_duplicate_live_key_fails_key_unique_only(lake):
    rows = clean_silver_contact() + [("1-A", "Ann", "ann.2@acme.example.com", False, [], "0006", _ts(1))]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)

    outcomes = lake.run("silver/s_contact")

    assert failed(outcomes) == {"key_unique"}
    assert outcomes["key_unique"].unexpected_count == 2  # both rows holding the key
    assert {k["ROW_ID"] for k in outcomes["key_unique"].sample_keys} == {"1-A"}
    assert outcomes["key_unique"].severity == "ERROR"


def test_null_key_among_live_rows_fails_key_not_null_only(lake):
    rows = clean_silver_contact() + [(None, "Eve", None, False, [], "0006", _ts(1))]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)

    outcomes = lake.run("silver/s_contact")

    assert failed(outcomes) == {"key_not_null"}
    assert outcomes["key_not_null"].unexpected_count == 1
    assert outcomes["key_not_null"].element_count == 4  # live rows only: tombstones are not checked


def test_many_failures_report_the_count_but_collect_no_keys(lake):
    nulls = [(None, "Eve", None, False, [], f"{i:05d}", _ts(1)) for i in range(KEYED_SAMPLE_LIMIT + 1)]
    lake.write("silver", "s_contact", clean_silver_contact() + nulls, SILVER_CONTACT)

    outcome = lake.run("silver/s_contact", only={"key_not_null"})["key_not_null"]

    assert not outcome.success and outcome.unexpected_count == KEYED_SAMPLE_LIMIT + 1
    assert outcome.sample_keys == [] and "sample keys not collected" in outcome.note


def test_null_sequence_fails_sequence_not_null(lake):
    rows = clean_silver_contact() + [("1-E", "Eve", None, False, [], None, _ts(1))]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)

    outcomes = lake.run("silver/s_contact")

    assert failed(outcomes) == {"sequence_not_null"}
    assert outcomes["sequence_not_null"].sample_keys == [{"ROW_ID": "1-E", "_sequence": None}]


def test_incomplete_rows_above_the_threshold_fail_few_incomplete_rows(lake):
    rows = clean_silver_contact() + [("1-F", None, None, False, ["EMAIL_ADDR", "FST_NAME"], "0007", _ts(1))]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)

    outcomes = lake.run("silver/s_contact")  # 1 of 4 live rows incomplete: 25% > the 5% allowed

    assert failed(outcomes) == {"few_incomplete_rows"}
    assert outcomes["few_incomplete_rows"].unexpected_count == 1
    assert outcomes["few_incomplete_rows"].sample_keys[0]["ROW_ID"] == "1-F"


def test_stale_table_fails_freshness_as_a_warning(lake):
    rows = [row[:-1] + (_ts(48),) for row in clean_silver_contact()]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)

    outcomes = lake.run("silver/s_contact")  # newest change 48h old, 1d allowed

    assert failed(outcomes) == {"fresh"}
    assert outcomes["fresh"].severity == "WARN"
    assert outcomes["fresh"].observed_value.startswith(str(_ts(48).date()))


def test_orphan_order_fails_customer_exists_and_clears_when_the_parent_arrives(lake):
    orphan = ("3-9", "1-Z", "2-X", None, "Open", "Sales", False)  # its customer 1-Z has not arrived
    lake.write("gold", "order", clean_gold()["order"] + [orphan], GOLD["order"])

    before = lake.run("gold/order")

    assert failed(before) == {"customer_exists"}
    assert before["customer_exists"].unexpected_count == 1
    assert before["customer_exists"].element_count == 3
    assert before["customer_exists"].sample_keys == [{"order_id": "3-9", "contact_id": "1-Z"}]

    parent = (
        "1-Z",
        None,
        None,
        None,
        "Customer",
        "Active",
        None,
        None,
        False,
        False,
        False,
        False,
        False,
        None,
    )
    lake.write("gold", "customer", clean_gold()["customer"] + [parent], GOLD["customer"])

    after = lake.run("gold/order")

    assert failed(after) == set()
    assert after["customer_exists"].unexpected_count == 0


def test_order_item_of_a_missing_order_and_product_fails_both_references(lake):
    orphan = ("4-9", "3-404", "5-404", "Add", "Open")
    lake.write("gold", "order_item", clean_gold()["order_item"] + [orphan], GOLD["order_item"])

    outcomes = lake.run("gold/order_item")

    assert failed(outcomes) == {"order_exists", "product_exists"}
    assert outcomes["order_exists"].sample_keys == [{"order_item_id": "4-9", "order_id": "3-404"}]
    assert outcomes["product_exists"].sample_keys == [{"order_item_id": "4-9", "product_id": "5-404"}]


def gx_engines(monkeypatch) -> dict[str, list[str]]:
    """Each GX validation from now on: its suite name -> the engines it ran on (spark, pandas)."""
    engines: dict[str, list[str]] = {}
    real = validate_module._validate

    def recorded(data, gx_suite, result_format):
        engine = "pandas" if isinstance(data, pd.DataFrame) else "spark"
        engines.setdefault(gx_suite.name, []).append(engine)
        return real(data, gx_suite, result_format)

    monkeypatch.setattr(validate_module, "_validate", recorded)
    return engines


def test_small_frames_are_validated_on_the_driver_and_engine_dependent_expectations_on_spark(
    one_engine_lake, monkeypatch
):
    """gold/customer (two rows): its regular expressions (Java's in Spark, ENGINE_DEPENDENT) on Spark, the
    rest of the suite on its rows collected to the driver; with DRIVER_CELLS under one row's values, or
    the table over DRIVER_TABLE_BYTES, the whole suite in one validation on Spark. The outcomes are the
    same."""
    lake = one_engine_lake
    suite = SUITES["gold/customer"]
    regex = sorted(e.name for e in suite.expectations if e.type == "expect_column_values_to_match_regex")
    assert regex and len(regex) < len(suite.expectations)
    engines = gx_engines(monkeypatch)

    small = lake.run("gold/customer")

    assert sorted(engines.values()) == [["pandas"], ["spark"]], engines
    [on_spark] = [name for name, ran in engines.items() if ran == ["spark"]]
    assert on_spark == f"gold/customer:{regex[0]}"  # the validation of the regular expressions alone
    engines.clear()
    monkeypatch.setattr(validate_module, "DRIVER_CELLS", 1)

    many_values = lake.run("gold/customer")

    assert list(engines.values()) == [["spark"]], engines
    assert many_values == small and failed(small) == set()
    # a table bigger than DRIVER_TABLE_BYTES: its rows are not even collected to be counted
    engines.clear()
    collected: list[DataFrame] = []
    real_rows_on_driver = validate_module._rows_on_driver
    monkeypatch.setattr(
        validate_module,
        "_rows_on_driver",
        lambda frame: collected.append(frame) or real_rows_on_driver(frame),
    )
    monkeypatch.setattr(validate_module, "DRIVER_TABLE_BYTES", 0)

    big_table = lake.run("gold/customer")

    assert list(engines.values()) == [["spark"]] and collected == [], (engines, collected)
    assert big_table == small


def test_a_frame_with_a_floating_point_column_is_validated_on_spark(one_engine_lake, monkeypatch):
    """pandas counts NaN as null, Spark does not: a frame with a double column (here holding a NaN) stays
    on Spark whatever its size."""
    lake = one_engine_lake
    rows = [(*row, float("nan")) for row in clean_gold()["product"]]
    lake.write("gold", "product", rows, GOLD["product"] + ", weight DOUBLE")
    engines = gx_engines(monkeypatch)

    outcomes = lake.run("gold/product")

    assert engines and {engine for ran in engines.values() for engine in ran} == {"spark"}, engines
    assert failed(outcomes) == set()


def test_reference_checks_share_one_gx_validation_with_the_plain_checks(lake, monkeypatch):
    """gold/order's three reference checks and its plain ones: one GX validation on each engine, not one
    per reference (each validation costs a handful of Spark jobs)."""
    engines = gx_engines(monkeypatch)
    suite = SUITES["gold/order"]
    assert sum(1 for e in suite.expectations if e.references) == 3 and not any(
        e.sql for e in suite.expectations
    )

    outcomes = lake.run("gold/order")

    assert failed(outcomes) == set()
    assert list(engines.values()) == [["pandas", "spark"]], engines


def test_a_table_columns_expectation_does_not_see_the_reference_checks_columns(lake):
    """A suite that checks the table's own columns gets them as they are, and its reference checks
    still find the orphan."""
    orphan = ("3-9", "1-Z", "2-X", None, "Open", "Sales", False)
    lake.write("gold", "order", clean_gold()["order"] + [orphan], GOLD["order"])
    columns = [field.split()[0] for field in GOLD["order"].split(", ")]
    shape = ExpectationSpec(
        name="columns_as_declared",
        type="expect_table_columns_to_match_ordered_list",
        kwargs={"column_list": columns},
    )
    suite = SUITES["gold/order"].model_copy(
        update={"expectations": [shape, *SUITES["gold/order"].expectations]}
    )

    outcomes = lake.run_suite(suite)

    assert failed(outcomes) == {"customer_exists"}
    assert outcomes["columns_as_declared"].success
    assert outcomes["customer_exists"].unexpected_count == 1
    assert outcomes["customer_exists"].element_count == 3
    assert outcomes["customer_exists"].sample_keys == [{"order_id": "3-9", "contact_id": "1-Z"}]


def test_a_silver_suite_with_its_computed_column_is_one_gx_validation(lake, monkeypatch):
    """silver's defaults, `few_incomplete_rows` (a computed column) among them, run in one validation on
    each engine."""
    engines = gx_engines(monkeypatch)
    suite = SUITES["silver/s_contact"]
    assert any(e.computed for e in suite.expectations) and not any(e.sql for e in suite.expectations)

    outcomes = lake.run("silver/s_contact")

    assert failed(outcomes) == set()
    assert outcomes["few_incomplete_rows"].element_count == 3  # the live rows
    assert list(engines.values()) == [["pandas", "spark"]], engines


def test_a_computed_column_that_clashes_or_does_not_analyse_fails_only_its_own_check(lake):
    def computed(name: str, column: str, sql: str) -> ExpectationSpec:
        kwargs = {"column": column, "max_value": 100}
        computed = {column: sql}
        return ExpectationSpec(
            name=name, computed=computed, type="expect_column_values_to_be_between", kwargs=kwargs
        )

    added = [
        computed("name_again", "fst_name", "length(FST_NAME)"),  # Spark's names ignore case
        computed("no_such_column", "email_length", "length(NO_SUCH_COLUMN)"),
        computed("other_way", "_UNKNOWN_COLUMNS", "size(_incomplete) + 1"),  # not the default's
        computed("alike", "_unknown_columns", "size(_incomplete)"),  # the default's, computed once
    ]
    suite = SUITES["silver/s_contact"]  # a file merged into the defaults is not validated as a whole
    suite = suite.model_copy(update={"expectations": [*suite.expectations, *added]})

    outcomes = lake.run_suite(suite)

    assert failed(outcomes) == {"name_again", "no_such_column", "other_way"}
    assert "'fst_name' is a column of the rows already" in outcomes["name_again"].error
    assert "NO_SUCH_COLUMN" in outcomes["no_such_column"].error
    assert "'_UNKNOWN_COLUMNS' is computed otherwise" in outcomes["other_way"].error
    assert outcomes["alike"].success and outcomes["alike"].element_count == 3
    assert outcomes["few_incomplete_rows"].success


def test_a_table_columns_expectation_does_not_see_the_computed_columns(lake):
    rows = clean_silver_contact() + [("1-F", None, None, False, ["EMAIL_ADDR", "FST_NAME"], "0007", _ts(1))]
    lake.write("silver", "s_contact", rows, SILVER_CONTACT)
    columns = [field.split()[0] for field in SILVER_CONTACT.split(", ")]
    shape = ExpectationSpec(
        name="columns_as_declared", type="expect_table_columns_to_match_set", kwargs={"column_set": columns}
    )
    suite = SUITES["silver/s_contact"]
    suite = suite.model_copy(update={"expectations": [shape, *suite.expectations]})

    outcomes = lake.run_suite(suite)

    assert failed(outcomes) == {"few_incomplete_rows"}
    assert outcomes["columns_as_declared"].success
    assert outcomes["few_incomplete_rows"].unexpected_count == 1
    assert outcomes["few_incomplete_rows"].sample_keys[0]["ROW_ID"] == "1-F"


def test_unknown_code_fails_status_code_known(lake):
    unknown = ("3-8", "1-A", "2-X", None, "Bogus", "Sales", False)
    retired = ("3-7", "1-A", "2-X", None, "Retired", "Sales", False)  # its LOV row is deleted in silver
    lake.write("gold", "order", clean_gold()["order"] + [unknown, retired], GOLD["order"])

    outcomes = lake.run("gold/order")

    assert failed(outcomes) == {"status_code_known"}
    assert outcomes["status_code_known"].unexpected_count == 2
    assert sorted(outcomes["status_code_known"].sample_values) == ["Bogus", "Retired"]


def test_malformed_email_fails_email_format_as_a_warning(lake):
    customers = clean_gold()["customer"]
    customers[1] = customers[1][:1] + ("not-an-email",) + customers[1][2:]
    lake.write("gold", "customer", customers, GOLD["customer"])

    outcomes = lake.run("gold/customer")

    assert failed(outcomes) == {"email_format"}
    assert outcomes["email_format"].severity == "WARN"
    assert outcomes["email_format"].sample_values == ["not-an-email"]


def test_missing_table_fails_every_check_with_the_reason(lake):
    outcomes = lake.run("silver/s_order")  # never written

    assert failed(outcomes) == set(outcomes)
    assert all("no Delta table" in outcome.error for outcome in outcomes.values())


def _bronze_batch(lake: Lake, batch: int, quarantined: int) -> None:
    """What bronze ingest writes for one batch: quarantine rows first (if any), then the bronze
    commit, both tagged with the batch number."""
    metadata = progress_metadata("bronze", batch=batch, topic="crm.S_CONTACT", ranges={"0": [0, 1]})
    moment = datetime(2026, 6, 1, 12, 0, batch)
    if quarantined:
        rows = [
            (
                "SIEBEL.S_CONTACT",
                "crm.S_CONTACT",
                0,
                batch * 100 + i,
                moment,
                None,
                b"{",
                "malformed JSON",
                moment.date(),
                moment,
            )
            for i in range(quarantined)
        ]
        lake.write("quarantine", "s_contact", rows, QUARANTINE_SCHEMA, mode="append", userMetadata=metadata)
    change = (
        "SIEBEL.S_CONTACT",
        "I",
        '{"ROW_ID":"1-A"}',
        None,
        None,
        '{"ROW_ID":"1-A"}',
        True,
        f"{batch:04d}",
        moment,
        None,
        "crm.S_CONTACT",
        0,
        batch * 100,
        moment,
        None,
        moment.date(),
        moment,
    )
    lake.write("bronze", "s_contact", [change], BRONZE_SCHEMA, mode="append", userMetadata=metadata)


def test_quarantine_check_counts_only_the_newest_batch(lake):
    _bronze_batch(lake, 1, quarantined=12)
    _bronze_batch(lake, 2, quarantined=3)
    outcome = lake.run("bronze/s_contact")["few_quarantined_in_last_batch"]
    assert outcome.success and outcome.observed_value == 3

    _bronze_batch(lake, 3, quarantined=0)
    assert lake.run("bronze/s_contact")["few_quarantined_in_last_batch"].observed_value == 0

    _bronze_batch(lake, 4, quarantined=11)
    outcome = lake.run("bronze/s_contact")["few_quarantined_in_last_batch"]
    assert not outcome.success and outcome.observed_value == 11 and outcome.severity == "WARN"


# -- Dagster: the checks gate the run -------------------------------------------------------------


def _gated_run(lake: Lake, order_rows: list[tuple] | None) -> dg.ExecuteInProcessResult:
    """Materialize gold/order (writing `order_rows`; None: writing nothing, as when its source has sent
    nothing yet), its suite's checks and a projection downstream, in a lake that holds the tables the
    checks read besides gold/order."""
    for entity in ("customer", "account"):
        lake.write("gold", entity, clean_gold()[entity], GOLD[entity])
    lake.write("silver", "s_lst_of_val", clean_lov(), SILVER_LOV)

    @dg.asset(key=["gold", "order"])
    def gold_order(spark: SparkResource, lake: LakeResource) -> None:
        if order_rows is None:
            return
        frame = spark.session().createDataFrame(order_rows, GOLD["order"])
        frame.write.format("delta").mode("overwrite").save(lake.table_path("gold", "order"))

    @dg.asset(key=["cassandra", "orders_by_customer"], deps=[gold_order])
    def projection() -> None:
        pass

    checks = build_asset_checks([SUITES["gold/order"]])
    return dg.materialize(
        [gold_order, projection, *checks],
        resources={"spark": SparkResource(), "lake": lake.resource},
        raise_on_error=False,
    )


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_blocking_check_failure_stops_the_downstream_projection(one_engine_lake):
    orphan = ("3-9", "1-Z", "2-X", None, "Open", "Sales", False)

    result = _gated_run(one_engine_lake, clean_gold()["order"] + [orphan])

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["customer_exists"].passed is False
    assert evaluations["customer_exists"].severity == dg.AssetCheckSeverity.ERROR
    metadata = evaluations["customer_exists"].metadata
    assert metadata["unexpected_count"].value == 1
    assert metadata["sample_keys"].value == [{"order_id": "3-9", "contact_id": "1-Z"}]
    assert evaluations["account_exists"].passed is True
    assert _materialized(result) == {"gold/order"}  # the projection did not run


def test_warning_failure_does_not_stop_the_downstream_projection(one_engine_lake):
    on_hold_unknown = ("3-5", "1-A", "2-X", None, "Open", "Sales", None)

    result = _gated_run(one_engine_lake, clean_gold()["order"] + [on_hold_unknown])

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {name for name, e in evaluations.items() if not e.passed} == {"on_hold_not_null"}
    assert evaluations["on_hold_not_null"].severity == dg.AssetCheckSeverity.WARN
    assert evaluations["on_hold_not_null"].metadata["sample_keys"].value == [
        {"order_id": "3-5", "on_hold": None}
    ]
    assert _materialized(result) == {"gold/order", "cassandra/orders_by_customer"}
    assert result.success


def test_checks_of_a_table_nothing_was_written_to_yet_wait_for_its_rows_and_hold_nothing_back(
    one_engine_lake,
):
    """A source that has sent nothing yet (a new one, its connector not started) leaves its tables
    unwritten: their checks are not evaluated (neither failed nor passed) and the run succeeds."""
    result = _gated_run(one_engine_lake, None)

    assert not Path(one_engine_lake.resource.table_path("gold", "order")).exists()
    assert result.get_asset_check_evaluations() == []
    assert result.success
    assert _materialized(result) == {"gold/order", "cassandra/orders_by_customer"}


def test_a_check_whose_tables_did_not_change_reports_its_last_result_again(one_engine_lake):
    """Reuse (expectations.reuse): a second run over the same table versions runs no expectation and
    reports the first run's results; once a table the suite reads changes, every check runs again."""
    for entity in ("customer", "account"):
        one_engine_lake.write("gold", entity, clean_gold()[entity], GOLD[entity])
    one_engine_lake.write("silver", "s_lst_of_val", clean_lov(), SILVER_LOV)
    orphan = ("3-9", "1-Z", "2-X", None, "Open", "Sales", False)
    one_engine_lake.write("gold", "order", clean_gold()["order"] + [orphan], GOLD["order"])

    @dg.asset(key=["gold", "order"])
    def gold_order() -> None:
        """Written by the test before each run."""

    checks = build_asset_checks([SUITES["gold/order"]])
    instance = dg.DagsterInstance.ephemeral()

    def evaluations() -> tuple[str, dict[str, dg.AssetCheckEvaluation]]:
        result = dg.materialize(
            [gold_order, *checks],
            resources={"spark": SparkResource(), "lake": one_engine_lake.resource},
            instance=instance,
            raise_on_error=False,
        )
        return result.run_id, {e.check_name: e for e in result.get_asset_check_evaluations()}

    first_run, first = evaluations()
    assert (
        not first["customer_exists"].passed
        and first["customer_exists"].metadata["unexpected_count"].value == 1
    )
    assert all("reused_from_run" not in e.metadata for e in first.values())
    recorded = first["customer_exists"].metadata["inputs"].value["tables"]
    assert set(recorded) == {"gold/order", "gold/customer", "gold/account", "silver/s_lst_of_val"}

    _, second = evaluations()
    assert set(second) == set(first)
    for name, evaluation in second.items():
        assert evaluation.metadata["reused_from_run"].value == first_run, name
        assert evaluation.passed == first[name].passed, name
        assert evaluation.metadata["inputs"].value == first[name].metadata["inputs"].value
    assert "reused: tables unchanged since run" in second["customer_exists"].description

    one_engine_lake.write(
        "gold", "order", clean_gold()["order"], GOLD["order"]
    )  # the orphan is gone: a new version
    _, third = evaluations()
    assert all("reused_from_run" not in e.metadata for e in third.values())
    assert third["customer_exists"].passed
    assert (
        third["customer_exists"].metadata["inputs"].value["tables"]["gold/order"]
        == recorded["gold/order"] + 1
    )


# -- the real graph: a failing check holds back only what is built from its asset ---------------------

PROJECTIONS = {"cassandra/customer_by_id", "cassandra/order_by_id", "cassandra/orders_by_customer"}


def test_a_failing_gold_check_holds_back_only_what_is_built_from_its_entity(spark, stack, tmp_lake):
    """The `microbatch` job of the real Definitions, three runs on one Dagster instance:

    1. the CRM workload from Kafka through every layer: everything materializes;
    2. one duplicate row appended to gold/customer (key_unique, ERROR): the run fails, its failed step
       is gold/customer's check step with key_unique and the duplicate key among its sample keys, and
       cassandra/customer_by_id waits for it and does not materialize; order_by_id and
       orders_by_customer (built from gold/order and gold/order_item) materialize in the same run, after
       gold/order's checks, which read gold/customer after its materialization and pass;
    3. the duplicate removed and one customer's e-mail broken (email_format, WARN): the run succeeds,
       key_unique passes again, email_format fails as a warning, and customer_by_id materializes again:
       a warning holds nothing back."""
    from orchestration.definitions import build_definitions
    from orchestration.loop import describe, not_materialized
    from resources.connections import CassandraResource, KafkaResource
    from tests.pipeline import error_text, produce_small_crm_workload, specs_on_topics, unique_prefix

    prefix = unique_prefix()
    produce_small_crm_workload(stack.kafka_bootstrap, prefix)
    resources = {
        "kafka": KafkaResource(bootstrap_servers=stack.kafka_bootstrap),
        "spark": SparkResource(),
        "lake": LakeResource(root=str(tmp_lake)),
        "cassandra": CassandraResource(
            contact_points=[stack.cassandra_host],
            port=stack.cassandra_port,
            keyspace=f"checks_{uuid.uuid4().hex[:8]}",
        ),
    }
    job = build_definitions(specs_on_topics(prefix), resources).resolve_job_def("microbatch")
    instance = dg.DagsterInstance.ephemeral()

    def microbatch() -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )

    def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
        return {
            f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()
        }

    first = microbatch()
    assert first.success, [error_text(e.step_failure_data.error) for e in first.get_step_failure_events()]
    assert PROJECTIONS <= _materialized(first)

    customer = str(tmp_lake / "gold" / "customer")
    clean = current_version(spark, customer)
    spark.read.format("delta").load(customer).limit(1).write.format("delta").mode("append").save(customer)
    [duplicate] = {
        row["customer_id"]
        for row in spark.read.format("delta")
        .load(customer)
        .groupBy("customer_id")
        .count()
        .where("count > 1")
        .collect()
    }

    held = microbatch()

    assert not held.success
    checks = evaluations(held)
    key_unique = checks["gold/customer:key_unique"]
    assert not key_unique.passed and key_unique.severity == dg.AssetCheckSeverity.ERROR
    assert {"customer_id": duplicate} in key_unique.metadata["sample_keys"].value
    [failure] = held.get_step_failure_events()
    assert failure.step_key == "expectations_gold_customer"
    assert "gold/customer: key_unique" in error_text(failure.step_failure_data.error)
    materialized = _materialized(held)
    assert "cassandra/customer_by_id" not in materialized
    assert {"gold/customer", "cassandra/order_by_id", "cassandra/orders_by_customer"} <= materialized
    events = held.all_events
    started = {e.step_key: i for i, e in enumerate(events) if e.event_type == dg.DagsterEventType.STEP_START}
    assert "cassandra__customer_by_id" not in started
    [customer_written] = [
        i
        for i, e in enumerate(events)
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key == dg.AssetKey(["gold", "customer"])
    ]
    assert started["expectations_gold_order"] > customer_written
    assert checks["gold/order:customer_exists"].passed and checks["gold/customer:read_by_gold_order"].passed
    assert [
        e
        for e in held.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ] == [key_unique]
    logs = [entry.user_message for entry in instance.all_logs(held.run_id)]
    assert any("cassandra__customer_by_id" in m and "expectations_gold_customer" in m for m in logs), (
        "no event says why customer_by_id did not run"
    )
    assert not_materialized(held) == ["cassandra/customer_by_id"]
    line = describe(held, 1.0)  # the loop's line
    assert "FAILED" in line and "gold/customer:key_unique" in line
    assert line.endswith("not materialized: cassandra/customer_by_id")

    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, customer).restoreToVersion(clean)  # the duplicate is gone
    DeltaTable.forPath(spark, customer).update(f"customer_id = '{duplicate}'", {"email": "'not-an-email'"})

    repaired = microbatch()

    assert repaired.success
    assert PROJECTIONS <= _materialized(repaired)
    checks = evaluations(repaired)
    assert checks["gold/customer:key_unique"].passed
    email = checks["gold/customer:email_format"]
    assert not email.passed and email.severity == dg.AssetCheckSeverity.WARN
