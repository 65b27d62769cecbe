"""The gold cleanup SQL (assets/gold/*.sql) on real Spark + Delta, run by the gold engine.

Silver-like views are built straight from the workload generator's TRUE final source state: the live
rows, typed by the specs' column hints, with `_commit_ts` (the row's DB_LAST_UPD) and `_sequence`. A
few rows are then edited to hold what the generator never writes but real Siebel data does (see
`with_edge_cases`). Every gold table is compared with tests/gold_expectation.py, which applies the
same cleanup rules in plain Python. Then a list-of-values display value is renamed (docs/DESIGN.md: a
translation-table change must reach every affected gold row) and the runs are repeated.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from assets.factory import load_entities
from assets.gold_spec import GoldEntity
from devtools.workload import WorkloadConfig, generate_workload, load_catalogue
from tests.gold_expectation import Silver, differences, expected_gold
from tests.pipeline import crm_specs
from transforms.decoders.column_types import typed_value
from transforms.delta_commits import current_version
from transforms.gold.engine import HASH_COLUMN, GoldError, GoldStats, refresh_entity, register_silver_views
from transforms.sequence import encode_sequence

pytestmark = pytest.mark.integration

SPECS = crm_specs()
CATALOGUE = load_catalogue()
WORKLOAD = WorkloadConfig(seed=11, initial_rows=60, changes=300)
NEWER = "2030-01-01 00:00:00"  # commit time of the rows the tests add or change after the workload
DUPLICATE_LOV_ROW_ID = "1-ZZDUP1"
SPARK_TYPES = {
    str: StringType,
    bool: BooleanType,
    Decimal: DecimalType,
    date: DateType,
    datetime: TimestampType,
}


# ---- silver-like input ------------------------------------------------------------------------------


def source_truth() -> Silver:
    """The generator's final state as silver rows: {asset name: [row + _commit_ts + _sequence]}."""
    state = generate_workload(WORKLOAD).state(as_text_values=True)
    silver: Silver = {spec.asset_name: [dict(row) for row in state[spec.table].values()] for spec in SPECS}
    ordered = sorted(  # by time: tables write DB_LAST_UPD with a space or GoldenGate's colon
        ((typed_value(row["DB_LAST_UPD"], "timestamp"), name, row["ROW_ID"]), row)
        for name, rows in silver.items()
        for row in rows
    )
    for number, (_, row) in enumerate(ordered, start=1):
        row["_commit_ts"] = row["DB_LAST_UPD"]
        row["_sequence"] = encode_sequence((number,))
    return silver


class Sequences:
    """Sequences newer than every row of the truth, for the changes the tests make."""

    def __init__(self, silver: Silver) -> None:
        self.next = sum(len(rows) for rows in silver.values()) + 1

    def __call__(self) -> str:
        self.next += 1
        return encode_sequence((self.next,))


@dataclass(frozen=True)
class EdgeCases:
    """The keys of the rows with_edge_cases edited."""

    contact_with_no_match_account: str  # PR_DEPT_OU_ID 'NoMatchRowId'
    account_with_no_match_contact: str  # PR_CON_ID 'NO MATCH ROW ID'
    contact_with_display_value_as_code: str  # PREF_COMM_METH_CD holds a VAL, not a NAME
    display_value_used_as_code: str
    contact_with_unknown_code: str  # CUST_STAT_CD 'Bogus'
    contact_with_null_flag: str  # SEND_NEWS_FLG NULL
    order_status_with_duplicate_lov_row: str  # a second ENU row for (ORDER_STATUS, this code), newer
    contact_with_two_extension_rows: str  # a second S_CONTACT_X row for it, newer


def with_edge_cases(silver: Silver, sequence: Sequences) -> tuple[Silver, EdgeCases]:
    silver = copy.deepcopy(silver)
    contacts = sorted(silver["s_contact"], key=lambda row: row["ROW_ID"])
    accounts = sorted(silver["s_org_ext"], key=lambda row: row["ROW_ID"])
    lov = silver["s_lst_of_val"]
    enu = [row for row in lov if row["LANG_ID"] == "ENU"]

    contacts[0]["PR_DEPT_OU_ID"] = "NoMatchRowId"
    accounts[0]["PR_CON_ID"] = "NO MATCH ROW ID"

    method_codes = {row["NAME"] for row in enu if row["TYPE"] == "COMM_METHOD"}
    display = next(
        row["VAL"] for row in enu if row["TYPE"] == "COMM_METHOD" and row["VAL"] not in method_codes
    )
    contacts[1]["PREF_COMM_METH_CD"] = display
    contacts[2]["CUST_STAT_CD"] = "Bogus"
    contacts[3]["SEND_NEWS_FLG"] = None

    status = sorted(silver["s_order"], key=lambda row: row["ROW_ID"])[0]["STATUS_CD"]
    original = next(row for row in enu if row["TYPE"] == "ORDER_STATUS" and row["NAME"] == status)
    lov.append(
        {
            **original,
            "ROW_ID": DUPLICATE_LOV_ROW_ID,
            "VAL": f"{original['VAL']} (newer row)",
            "DB_LAST_UPD": NEWER,
            "_commit_ts": NEWER,
            "_sequence": sequence(),
        }
    )

    extension = next(row for row in silver["s_contact_x"] if row["PAR_ROW_ID"] == contacts[4]["ROW_ID"])
    silver["s_contact_x"].append(
        {
            **extension,
            "ROW_ID": "1-ZZDUPX",
            "ATTRIB_01": "Newer extension row",
            "DB_LAST_UPD": NEWER,
            "_commit_ts": NEWER,
            "_sequence": sequence(),
        }
    )
    cases = EdgeCases(
        contact_with_no_match_account=contacts[0]["ROW_ID"],
        account_with_no_match_contact=accounts[0]["ROW_ID"],
        contact_with_display_value_as_code=contacts[1]["ROW_ID"],
        display_value_used_as_code=display,
        contact_with_unknown_code=contacts[2]["ROW_ID"],
        contact_with_null_flag=contacts[3]["ROW_ID"],
        order_status_with_duplicate_lov_row=status,
        contact_with_two_extension_rows=contacts[4]["ROW_ID"],
    )
    return silver, cases


def with_renamed_display_value(
    silver: Silver, lov_type: str, code: str, sequence: Sequences
) -> tuple[Silver, str]:
    """The S_LST_OF_VAL update that renames the ENU display value of (lov_type, code)."""
    silver = copy.deepcopy(silver)
    (row,) = [
        r for r in silver["s_lst_of_val"] if (r["TYPE"], r["NAME"], r["LANG_ID"]) == (lov_type, code, "ENU")
    ]
    new_value = f"Renamed {row['VAL']}"
    row.update(
        VAL=new_value,
        DB_LAST_UPD=NEWER,
        LAST_UPD=NEWER,
        _commit_ts=NEWER,
        _sequence=sequence(),
        MODIFICATION_NUM=str(int(row["MODIFICATION_NUM"]) + 1),
    )
    return silver, new_value


def register_views(spark, silver: Silver) -> None:
    """One temporary view per spec (its asset name): the rows typed by the spec's column hints."""
    frames = {}
    for spec in SPECS:
        columns = CATALOGUE.table_by_source(spec.table).column_names
        names = [*columns, "_commit_ts", "_sequence"]
        schema = StructType([StructField(name, StringType()) for name in names])
        types = {**spec.columns, "_commit_ts": "timestamp"}
        # the canonical text bronze holds for a typed column (transforms.decoders.column_types), as silver reads it
        rows = [
            tuple(typed_value(row[name], types.get(name, "string")) for name in names)
            for row in silver[spec.asset_name]
        ]
        frame = spark.createDataFrame(rows, schema)
        typed = [F.col(c).cast(spec.columns.get(c, "string")).alias(c) for c in columns]
        typed_frame = frame.select(*typed, F.col("_commit_ts").cast("timestamp"), "_sequence")
        # Cached in one partition: silver is a Delta scan, not a Python-fed RDD re-read by every query.
        frames[spec.asset_name] = typed_frame.coalesce(1).cache()
    for frame in frames.values():
        frame.count()
    register_silver_views(spark, frames)


# ---- running gold and reading it back ---------------------------------------------------------------


def refresh_all(
    spark, lake: Path, entities: list[GoldEntity], versions: dict[str, int]
) -> dict[str, GoldStats]:
    return {
        e.name: refresh_entity(
            spark,
            name=e.name,
            keys=e.keys,
            sql_text=e.sql_text,
            gold_path=str(lake / e.name),
            silver_versions=versions,
        )
        for e in entities
    }


def read_gold(spark, path: str, key: str) -> tuple[dict[str, dict], StructType]:
    """{key: row} with timestamps as naive UTC datetimes (the session time zone is UTC)."""
    table = spark.read.format("delta").load(path).drop(HASH_COLUMN)
    columns = [
        F.col(f"`{f.name}`").cast("timestamp_ntz").alias(f.name)
        if isinstance(f.dataType, TimestampType)
        else F.col(f"`{f.name}`")
        for f in table.schema
    ]
    rows = [row.asDict() for row in table.select(*columns).collect()]
    return {row[key]: row for row in rows}, table.schema


def type_mismatches(schema: StructType, expected: dict[str, dict]) -> list:
    """Columns whose Spark type does not hold the Python type of the expected values."""
    found = []
    for field in schema:
        kinds = {type(row[field.name]) for row in expected.values()} - {type(None)}
        for kind in kinds:
            allowed = (IntegerType, LongType) if kind is int else SPARK_TYPES[kind]
            if not isinstance(field.dataType, allowed):
                found.append((field.name, field.dataType.simpleString(), kind.__name__))
    return found


@dataclass(frozen=True)
class GoldRuns:
    entities: list[GoldEntity]
    lake: Path
    silver: Silver
    cases: EdgeCases
    expected: dict[str, dict[str, dict]]
    first: dict[str, GoldStats]
    gold: dict[str, dict[str, dict]]
    schemas: dict[str, StructType]
    renamed: tuple[str, str, str]  # lov type, code, new display value
    expected_after_rename: dict[str, dict[str, dict]]
    after_rename: dict[str, GoldStats]
    gold_after_rename: dict[str, dict[str, dict]]
    rerun: dict[str, GoldStats]
    versions_before_rerun: dict[str, int]
    versions_after_rerun: dict[str, int]


RENAME_RUN = ["customer", "product"]  # an entity the rename affects and one it does not (Spark is slow here)


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> GoldRuns:
    """Gold built once from the truth; customer and product again after a display-value rename (both
    read s_lst_of_val); then every entity rerun with the silver versions it last consumed. The views
    of the renamed silver stay registered for the tests that run the engine themselves."""
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"  # read_gold and the views rely on it
    lake = tmp_path_factory.mktemp("gold_lake")
    entities = load_entities(SPECS)
    keys = {e.name: e.keys[0] for e in entities}
    truth = source_truth()
    sequence = Sequences(truth)
    silver, cases = with_edge_cases(truth, sequence)

    def read_all(names: list[str]):
        read = {name: read_gold(spark, str(lake / name), keys[name]) for name in names}
        return {name: rows for name, (rows, _) in read.items()}, {
            name: schema for name, (_, schema) in read.items()
        }

    versions = {spec.asset_name: 1 for spec in SPECS}
    register_views(spark, silver)
    first = refresh_all(spark, lake, entities, versions)
    gold, schemas = read_all(list(keys))

    codes = [row["CUST_STAT_CD"] for row in silver["s_contact"]]
    most_used = max(sorted(set(codes) - {"Bogus"}), key=codes.count)
    renamed_silver, new_value = with_renamed_display_value(silver, "CONTACT_STATUS", most_used, sequence)
    renamed_versions = {**versions, "s_lst_of_val": 2}
    register_views(spark, renamed_silver)
    rename_run = [e for e in entities if e.name in RENAME_RUN]
    after_rename = refresh_all(spark, lake, rename_run, renamed_versions)
    gold_after_rename, _ = read_all(RENAME_RUN)

    before = {e.name: current_version(spark, str(lake / e.name)) for e in entities}
    rerun = {}
    for entity in entities:
        consumed = renamed_versions if entity.name in RENAME_RUN else versions
        rerun |= refresh_all(spark, lake, [entity], consumed)
    after = {e.name: current_version(spark, str(lake / e.name)) for e in entities}
    return GoldRuns(
        entities=entities,
        lake=lake,
        silver=silver,
        cases=cases,
        expected=expected_gold(silver),
        first=first,
        gold=gold,
        schemas=schemas,
        renamed=("CONTACT_STATUS", most_used, new_value),
        expected_after_rename=expected_gold(renamed_silver),
        after_rename=after_rename,
        gold_after_rename=gold_after_rename,
        rerun=rerun,
        versions_before_rerun=before,
        versions_after_rerun=after,
    )


ENTITIES = ["customer", "account", "order", "order_item", "product"]


# ---- the gold tables equal the cleanup rules applied to the truth -----------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
def test_gold_entity_equals_the_cleanup_rules_applied_in_python_to_the_source_truth(runs, entity):
    assert runs.first[entity].inserted == len(runs.expected[entity]) > 0
    assert differences(runs.gold[entity], runs.expected[entity]) == []
    assert type_mismatches(runs.schemas[entity], runs.expected[entity]) == []


def test_no_match_sentinel_in_any_spelling_is_null(runs):
    customer = runs.gold["customer"][runs.cases.contact_with_no_match_account]
    account = runs.gold["account"][runs.cases.account_with_no_match_contact]
    assert (customer["account_id"], customer["account_name"], account["primary_contact_id"]) == (
        None,
        None,
        None,
    )
    generated = [row for row in runs.gold["customer"].values() if row["primary_address_id"] is None]
    assert generated, "the generator writes 'No Match Row Id' into PR_PER_ADDR_ID of some contacts"
    assert all(row["address_line_1"] is None for row in generated)


def test_a_code_decodes_to_its_english_display_value_never_a_translation(runs):
    lov = [row for row in runs.silver["s_lst_of_val"] if row["ROW_ID"] != DUPLICATE_LOV_ROW_ID]
    english = {(row["TYPE"], row["NAME"]): row["VAL"] for row in lov if row["LANG_ID"] == "ENU"}
    german = {(row["TYPE"], row["NAME"]): row["VAL"] for row in lov if row["LANG_ID"] == "DEU"}
    accounts = runs.gold["account"].values()
    assert len(accounts) == len(runs.silver["s_org_ext"])
    assert [
        a for a in accounts if a["account_type"] != english[("ACCOUNT_TYPE", a["account_type_code"])]
    ] == []
    assert any(
        english[key] != german[key] for key in (("ACCOUNT_TYPE", a["account_type_code"]) for a in accounts)
    )


def test_a_code_found_only_as_a_display_value_decodes_to_that_value(runs):
    customer = runs.gold["customer"][runs.cases.contact_with_display_value_as_code]
    value = runs.cases.display_value_used_as_code
    assert (customer["preferred_contact_method_code"], customer["preferred_contact_method"]) == (value, value)


def test_a_code_missing_from_the_list_of_values_keeps_its_code_and_has_no_display_value(runs):
    customer = runs.gold["customer"][runs.cases.contact_with_unknown_code]
    assert (customer["status_code"], customer["status"]) == ("Bogus", None)


def test_a_duplicate_list_of_values_row_decodes_to_the_newest_without_multiplying_rows(runs):
    code = runs.cases.order_status_with_duplicate_lov_row
    orders = [row for row in runs.gold["order"].values() if row["status_code"] == code]
    assert orders and all(row["status"].endswith("(newer row)") for row in orders)
    assert len(runs.gold["order"]) == len(runs.expected["order"])


def test_the_newest_extension_row_is_folded_into_its_customer(runs):
    customer = runs.gold["customer"][runs.cases.contact_with_two_extension_rows]
    assert customer["attrib_01"] == "Newer extension row"


def test_flags_are_booleans_and_an_unfilled_flag_stays_null(runs):
    customers = runs.gold["customer"].values()
    assert runs.gold["customer"][runs.cases.contact_with_null_flag]["send_newsletter"] is None
    assert {row["x_supprime"] for row in customers} == {True, False}  # from CHAR(2) 'Y ' / 'N '
    assert runs.schemas["customer"]["is_employee"].dataType == BooleanType()


def test_char_padding_is_trimmed_from_every_string(runs):
    padded = [
        (entity, column, value)
        for entity, rows in runs.gold.items()
        for row in rows.values()
        for column, value in row.items()
        if isinstance(value, str) and value != value.strip(" ")
    ]
    assert padded == []
    assert any(row["market_segment"] for row in runs.gold["account"].values())  # a CHAR(30) at the source


def test_source_timestamps_are_utc_instants(runs):
    assert runs.schemas["customer"]["created_at"].dataType == TimestampType()
    contact = runs.expected["customer"][runs.cases.contact_with_unknown_code]
    assert runs.gold["customer"][contact["customer_id"]]["created_at"] == contact["created_at"]


def test_an_order_total_is_the_sum_of_the_amounts_of_its_live_lines(runs):
    lines: dict[str, list] = {}
    for item in runs.gold["order_item"].values():
        lines.setdefault(item["order_id"], []).append(item)
    for order in runs.gold["order"].values():
        mine = lines.get(order["order_id"], [])
        assert order["item_count"] == len(mine)
        assert order["total_amount"] == sum((i["net_price"] * i["quantity"] for i in mine), Decimal(0))
    assert any(order["item_count"] > 1 for order in runs.gold["order"].values())


# ---- a translation-table change, and reruns ----------------------------------------------------------


def test_a_renamed_display_value_reaches_every_affected_row_and_rewrites_no_other(runs):
    _, code, new_value = runs.renamed
    affected = {
        entity: sum(runs.expected[entity][k] != row for k, row in rows.items())
        for entity, rows in runs.expected_after_rename.items()
    }
    shown = [row for row in runs.gold_after_rename["customer"].values() if row["status"] == new_value]
    assert (
        affected["customer"]
        == len(shown)
        == sum(row["status_code"] == code for row in runs.gold["customer"].values())
        > 0
    )
    assert affected["customer"] < len(runs.gold["customer"])
    for entity in RENAME_RUN:
        stats = runs.after_rename[entity]
        assert (stats.skipped, stats.replaced, stats.inserted, stats.deleted) == (False, False, 0, 0)
        assert stats.updated == affected[entity]
        assert differences(runs.gold_after_rename[entity], runs.expected_after_rename[entity]) == []
    assert runs.after_rename["product"].updated == 0


def test_a_rerun_with_unchanged_silver_versions_writes_nothing(runs):
    assert all(stats.skipped for stats in runs.rerun.values())
    assert runs.versions_after_rerun == runs.versions_before_rerun


# ---- the engine's guards ------------------------------------------------------------------------------


def test_a_changed_sql_is_applied_even_when_silver_did_not_move(spark, tmp_lake, runs):
    """Runs on the views the `runs` fixture left registered (the renamed silver)."""
    (product,) = [e for e in runs.entities if e.name == "product"]
    path = str(tmp_lake / "product")
    versions = {"s_prod_int": 1, "s_lst_of_val": 2}

    def refresh(sql_text: str) -> GoldStats:
        return refresh_entity(
            spark,
            name="product",
            keys=product.keys,
            sql_text=sql_text,
            gold_path=path,
            silver_versions=versions,
        )

    first = refresh(product.sql_text)
    comment_only = refresh("-- reworded header\n" + product.sql_text)
    renamed_column = refresh(product.sql_text.replace("AS part_number", "AS part_no"))
    columns = spark.read.format("delta").load(path).columns
    assert (first.replaced, first.inserted) == (True, len(runs.expected_after_rename["product"]))
    assert (comment_only.skipped, comment_only.replaced, comment_only.updated) == (False, False, 0)
    assert (renamed_column.skipped, renamed_column.replaced) == (False, True)
    assert "part_no" in columns and "part_number" not in columns


def test_a_sql_that_returns_a_key_twice_is_refused(spark, tmp_lake, runs):
    """Runs on the views the `runs` fixture left registered: s_lst_of_val has ENU and DEU rows."""
    every_language = "SELECT TYPE AS lov_type, NAME AS code, VAL AS display_value FROM s_lst_of_val"
    with pytest.raises(GoldError, match="gold entity lov: its SQL returns several rows for one key"):
        refresh_entity(
            spark,
            name="lov",
            keys=["lov_type", "code"],
            sql_text=every_language,
            gold_path=str(tmp_lake / "lov"),
            silver_versions={"s_lst_of_val": 2},
        )
    assert not (tmp_lake / "lov").exists()
