"""Schema change at the source, through real Kafka, Dagster runs, Spark/Delta and the checks (README, "Schema
change at the source"): the CRM product table S_PROD_INT, its gold entity `product` and their suites.

1. Before: the spec types MODIFICATION_NUM as `int` and X_LIST_PRICE as `decimal(12,2)`; three products.
2. The source widens both columns (the spec follows: `long`, `decimal(22,7)`), drops X_PROD_FAMILY and
   renames NAME to PROD_NAME. A partial update of P1 carries values only the wider types hold and the
   new name; a new product P4 comes as a full image without the dropped and the old column.
   Silver: the columns are widened in place and hold the values whole; the dropped column and the old
   name keep P1's values (absent is not null) and are NULL in P4's full image; the new column is a new
   column, NULL in the rows fully imaged before it existed. Gold's result columns take the
   wider types, so `product` is rewritten in full once, with the new values. The run, every check
   included, succeeds.
3. A spec that narrows a column back is refused before any write, naming table, column and both types.
4. Back on the wider spec, gold runs incrementally again.
"""

from __future__ import annotations

import json
from decimal import Decimal

import dagster as dg
import pytest
from delta.tables import DeltaTable

from assets.factory import build_assets
from assets.gold_spec import load_gold_entities
from devtools.workload.capture import WorkloadMessage
from devtools.workload.producer import produce_messages
from expectations.checks import build_asset_checks
from expectations.suite import load_suites
from tests.pipeline import error_text, resources, specs_on_topics, unique_prefix
from transforms.merge import read_live_rows

pytestmark = pytest.mark.integration

BEYOND_INT = 3_000_000_000
PRICE = "1234567890.1234567"  # 17 digits, 7 after the point: beyond decimal(12,2)


def gg(table: str, op: str, position: int, after: dict) -> WorkloadMessage:
    message = {
        "table": f"SIEBEL.{table}",
        "op_type": op,
        "op_ts": f"2026-12-01 10:00:{position:02d}.000000",
        "current_ts": f"2026-12-01T10:00:{position:02d}.500000",
        "csn": f"{1000 + position}",
        "pos": f"{position:020d}",
        "primary_keys": ["ROW_ID"],
        "after": after,
    }
    return WorkloadMessage(table, after["ROW_ID"].encode(), json.dumps(message).encode())


def product(row_id: str, **columns: str) -> dict:
    """A full row of S_PROD_INT: every column product.sql reads but NAME and X_PROD_FAMILY, plus `columns`."""
    return {
        "ROW_ID": row_id,
        "PART_NUM": f"PN-{row_id}",
        "DESC_TEXT": None,
        "PROD_TYPE_CD": None,
        "UOM_CD": None,
        "STATUS_CD": "Active",
        "SALES_PROD_FLG": "Y",
        "ORDERABLE_FLG": "Y",
        "EFF_START_DT": "2026-01-01:00:00:00",
        "EFF_END_DT": None,
        "VENDR_OU_ID": None,
        "CREATED": "2026-12-01:10:00:00",
        "CREATED_BY": "0-1",
        "LAST_UPD": "2026-12-01:10:00:00",
        "LAST_UPD_BY": "0-1",
        **columns,
    }


def with_columns(spec, **types: str):
    return spec.model_copy(update={"columns": {**spec.columns, **types}})


def test_widened_dropped_and_renamed_columns_through_kafka_dagster_silver_gold_and_checks(
    spark, kafka_bootstrap, tmp_lake
):
    prefix = unique_prefix()
    crm = {spec.table.split(".")[-1]: spec for spec in specs_on_topics(prefix)}
    lov = crm["S_LST_OF_VAL"]
    narrow = with_columns(crm["S_PROD_INT"], MODIFICATION_NUM="int", X_LIST_PRICE="decimal(12,2)")
    wide = with_columns(crm["S_PROD_INT"], MODIFICATION_NUM="long", X_LIST_PRICE="decimal(22,7)")
    refused = with_columns(crm["S_PROD_INT"], MODIFICATION_NUM="long", X_LIST_PRICE="decimal(12,2)")
    [entity] = [e for e in load_gold_entities() if e.name == "product"]
    instance = dg.DagsterInstance.ephemeral()

    def produce(*messages: WorkloadMessage) -> None:
        produce_messages(
            kafka_bootstrap,
            [WorkloadMessage(f"{prefix}.{m.topic}", m.key, m.value) for m in messages],
            partitions=1,
        )

    def run(prod_spec) -> dg.ExecuteInProcessResult:
        specs = [lov, prod_spec]
        assets = build_assets(specs, [entity])
        checks = build_asset_checks(load_suites(specs=specs, entities=[entity]), assets=assets)
        return dg.materialize(
            [*assets, *checks],
            resources=resources(kafka_bootstrap, tmp_lake),
            instance=instance,
            raise_on_error=False,
        )

    def gold_metadata(result) -> dict:
        [event] = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["gold", "product"])
        ]
        return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}

    def blocking_failures(result) -> list[str]:
        return [
            f"{e.asset_key.to_user_string()}:{e.check_name}"
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        ]

    silver = str(tmp_lake / "silver" / "s_prod_int")
    gold = str(tmp_lake / "gold" / "product")

    # 1. before the change
    produce(
        gg(
            "S_LST_OF_VAL",
            "I",
            1,
            {
                "ROW_ID": "L1",
                "TYPE": "PRODUCT_STATUS",
                "NAME": "Active",
                "VAL": "Active",
                "LANG_ID": "ENU",
                "ACTIVE_FLG": "Y",
            },
        ),
        *[
            gg(
                "S_PROD_INT",
                "I",
                1 + n,
                product(
                    f"P{n}",
                    NAME=f"Name {n}",
                    X_PROD_FAMILY="Hardware",
                    X_LIST_PRICE="10.50",
                    MODIFICATION_NUM="1",
                ),
            )
            for n in (1, 2, 3)
        ],
    )
    first = run(narrow)
    assert first.success and not blocking_failures(first)
    assert dict(read_live_rows(spark, silver).dtypes)["MODIFICATION_NUM"] == "int"

    # 2. widened, dropped, renamed at the source
    produce(
        gg(
            "S_PROD_INT",
            "U",
            10,
            {
                "ROW_ID": "P1",
                "MODIFICATION_NUM": str(BEYOND_INT),
                "X_LIST_PRICE": PRICE,
                "PROD_NAME": "Renamed 1",
            },
        ),
        gg(
            "S_PROD_INT", "I", 11, product("P4", PROD_NAME="New 4", X_LIST_PRICE="7.25", MODIFICATION_NUM="1")
        ),
    )
    second = run(wide)
    assert second.success and not blocking_failures(second)
    frame = read_live_rows(spark, silver)
    types = dict(frame.dtypes)
    assert (types["MODIFICATION_NUM"], types["X_LIST_PRICE"], types["PROD_NAME"]) == (
        "bigint",
        "decimal(22,7)",
        "string",
    )
    rows = {r["ROW_ID"]: r.asDict() for r in frame.collect()}
    assert (rows["P1"]["MODIFICATION_NUM"], rows["P1"]["X_LIST_PRICE"]) == (BEYOND_INT, Decimal(PRICE))
    # absent is not null: the dropped column and the old name keep P1's values
    assert (rows["P1"]["X_PROD_FAMILY"], rows["P1"]["NAME"], rows["P1"]["PROD_NAME"]) == (
        "Hardware",
        "Name 1",
        "Renamed 1",
    )
    # a full image is the whole row: what it lacks is NULL
    assert (rows["P4"]["X_PROD_FAMILY"], rows["P4"]["NAME"], rows["P4"]["PROD_NAME"]) == (None, None, "New 4")
    # the new column: NULL in the rows fully imaged before it existed (a full image is the whole row)
    assert (rows["P2"]["PROD_NAME"], rows["P2"]["_incomplete"], rows["P4"]["_incomplete"]) == (None, [], [])
    widened = gold_metadata(second)
    # gold's columns take the wider types too: the entity is rewritten in full, once
    assert (widened["mode"], widened["full_recompute_reason"]) == ("full", "the SQL's result columns changed")
    gold_rows = {r["product_id"]: r.asDict() for r in spark.read.format("delta").load(gold).collect()}
    assert (gold_rows["P1"]["modification_number"], gold_rows["P1"]["list_price"]) == (
        BEYOND_INT,
        Decimal(PRICE),
    )
    assert gold_rows["P1"]["name"] == "Name 1"  # the SQL names NAME: it shows what NAME holds
    assert set(gold_rows) == {"P1", "P2", "P3", "P4"}

    # 3. a narrowing is refused before any write
    version = DeltaTable.forPath(spark, silver).history(1).collect()[0]["version"]
    produce(gg("S_PROD_INT", "U", 20, {"ROW_ID": "P2", "X_LIST_PRICE": "3.10"}))
    narrowed = run(refused)
    assert not narrowed.success
    [failure] = [e for e in narrowed.get_step_failure_events() if e.step_key == "silver__s_prod_int"]
    message = error_text(failure.step_failure_data.error)
    assert all(
        text in message for text in ("s_prod_int", "X_LIST_PRICE", "decimal(22,7)", "decimal(12,2)")
    ), message
    assert DeltaTable.forPath(spark, silver).history(1).collect()[0]["version"] == version

    # 4. back on the wider spec: the held change applies and gold runs incrementally again
    again = run(wide)
    assert again.success and not blocking_failures(again)
    incremental = gold_metadata(again)
    assert (incremental["mode"], incremental["keys_recomputed"]) == ("incremental", 1), incremental
    [price] = [r["X_LIST_PRICE"] for r in read_live_rows(spark, silver).where("ROW_ID = 'P2'").collect()]
    assert price == Decimal("3.10")
