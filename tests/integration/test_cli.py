"""`cdc-lakehouse apply/show` through the CLI: the README's worked example of a late partial update, and
typed columns in every shape GoldenGate writes (Oracle's own sample, a table keyed by a date)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from orchestration.cli import main

pytestmark = pytest.mark.integration

SPEC = "table: SIEBEL.S_CONTACT\ntopic: crm.S_CONTACT\nformat: goldengate_json\nkeys: [ROW_ID]\n"


def _gg(op: str, pos: int, after: dict) -> str:
    return json.dumps(
        {
            "table": "SIEBEL.S_CONTACT",
            "op_type": op,
            "op_ts": f"2024-01-01 10:00:{pos:02d}.000000",
            "pos": f"{pos:020d}",
            "after": after,
        }
    )


def _show(capsys, table) -> list[dict]:
    capsys.readouterr()
    assert main(["show", "--table", str(table)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_late_partial_update_worked_example_converges_to_the_source_row(spark, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    table = tmp_path / "silver"
    batches = [
        [_gg("U", 3, {"ROW_ID": "1-A", "NAME": "Anne"})],
        [
            _gg("I", 1, {"ROW_ID": "1-A", "NAME": "Anna", "EMAIL": "a@x"}),
            '{"table": "SIEBEL.S_CONTACT", "op_type":',
        ],
        [_gg("U", 2, {"ROW_ID": "1-A", "EMAIL": "b@x"})],
    ]
    shown = []
    for number, lines in enumerate(batches):
        path = tmp_path / f"batch{number}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        assert main(["apply", "--spec", str(spec), "--input", str(path), "--table", str(table)]) == 0
        shown.append(_show(capsys, table))

    assert shown[0] == [{"ROW_ID": "1-A", "NAME": "Anne"}]  # EMAIL still unknown: no such column yet
    assert shown[1] == [
        {"ROW_ID": "1-A", "NAME": "Anne", "EMAIL": "a@x"}
    ]  # the older insert fills EMAIL only
    assert shown[2] == [{"ROW_ID": "1-A", "NAME": "Anne", "EMAIL": "b@x"}]

    quarantine = spark.read.format("delta").load(f"{table}_quarantine").collect()
    assert len(quarantine) == 1 and quarantine[0]["error"].startswith("line 2:")


def test_a_bad_spec_is_reported_with_file_and_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "histroy: scd2\n")
    assert main(["apply", "--spec", str(spec), "--input", str(spec), "--table", str(tmp_path / "t")]) == 2
    assert f"{spec}:5: histroy: unknown field" in capsys.readouterr().err


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORACLE_SAMPLE = FIXTURES / "messages" / "goldengate" / "oracle_doc_qasource_tcustord.jsonl"
ORACLE_SPEC = FIXTURES / "specs" / "qasource_tcustord.yaml"


def _apply(capsys, spec: Path, lines: list[str], input_path: Path, table: Path) -> tuple[int, dict, str]:
    input_path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    code = main(["apply", "--spec", str(spec), "--input", str(input_path), "--table", str(table)])
    out, err = capsys.readouterr()
    return code, json.loads(out.splitlines()[-1]), err


def _live(spark, table: Path) -> tuple[dict[str, str], list[dict]]:
    from transforms.merge import read_live_rows

    frame = read_live_rows(spark, str(table))
    return dict(frame.dtypes), [row.asDict() for row in frame.collect()]


def test_oracles_goldengate_sample_with_typed_columns_comes_out_typed_and_equal_to_the_source(
    spark, tmp_path, capsys
):
    """QASOURCE.TCUSTORD as Oracle documents it: ORDER_DATE (a key column) arrives as
    "1994-09-30:15:33:00", GoldenGate's default form; every value must land typed, none NULL."""
    insert, update, delete, truncate = ORACLE_SAMPLE.read_text().splitlines()
    table = tmp_path / "silver"
    code, stats, err = _apply(capsys, ORACLE_SPEC, [insert, update, delete], tmp_path / "sample.jsonl", table)
    assert (code, err) == (0, "")
    assert (stats["changes"], stats["quarantined"], stats["values_not_castable"]) == (3, 0, 0)

    types, rows = _live(spark, table)
    assert {
        c: types[c]
        for c in ("CUST_CODE", "ORDER_DATE", "ORDER_ID", "PRODUCT_PRICE", "PRODUCT_AMOUNT", "TRANSACTION_ID")
    } == {
        "CUST_CODE": "string",
        "ORDER_DATE": "timestamp",
        "ORDER_ID": "bigint",
        "PRODUCT_PRICE": "decimal(8,2)",
        "PRODUCT_AMOUNT": "int",
        "TRANSACTION_ID": "bigint",
    }
    by_customer = {row["CUST_CODE"]: row for row in rows}
    assert set(by_customer) == {
        "WILL",
        "BILL",
    }  # DAVE's row was deleted (a delete of an unseen key: a tombstone)
    will = by_customer["WILL"]
    assert {
        c: will[c]
        for c in (
            "ORDER_DATE",
            "PRODUCT_CODE",
            "ORDER_ID",
            "PRODUCT_PRICE",
            "PRODUCT_AMOUNT",
            "TRANSACTION_ID",
            "_incomplete",
        )
    } == {
        "ORDER_DATE": datetime(1994, 9, 30, 15, 33),
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": 144,
        "PRODUCT_PRICE": Decimal("17520.00"),
        "PRODUCT_AMOUNT": 3,
        "TRANSACTION_ID": 100,
        "_incomplete": [],
    }
    bill = by_customer["BILL"]  # a compressed update of a row this table never saw inserted
    assert {
        c: bill[c] for c in ("ORDER_DATE", "PRODUCT_CODE", "ORDER_ID", "PRODUCT_PRICE", "_incomplete")
    } == {
        "ORDER_DATE": datetime(1995, 12, 31, 15, 0),
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": 765,
        "PRODUCT_PRICE": Decimal("14000.00"),
        "_incomplete": ["PRODUCT_AMOUNT", "TRANSACTION_ID"],
    }

    code, stats, _ = _apply(capsys, ORACLE_SPEC, [truncate], tmp_path / "truncate.jsonl", table)
    assert code == 0 and _live(spark, table)[1] == []


DAILY_SPEC = """table: SHOP.DAILY_SALES
topic: shop.DAILY_SALES
format: goldengate_json
keys: [SALES_DAY, SHOP_ID]
columns: {SALES_DAY: date, SHOP_ID: int, SOLD: long, LAST_SALE_AT: timestamp}
"""


def _daily(op: str, pos: int, image: dict) -> str:
    side = "before" if op == "D" else "after"
    return json.dumps(
        {
            "table": "SHOP.DAILY_SALES",
            "op_type": op,
            "op_ts": "2024-01-02 23:00:00.000000",
            "pos": str(pos),
            side: image,
        }
    )


def test_a_table_keyed_by_a_date_keeps_one_row_per_day_whatever_shape_the_date_arrives_in(
    spark, tmp_path, capsys
):
    spec = tmp_path / "daily.yaml"
    spec.write_text(DAILY_SPEC)
    table = tmp_path / "silver"
    lines = [
        _daily(
            "I",
            1,
            {
                "SALES_DAY": "2024-01-02:00:00:00",
                "SHOP_ID": 7,
                "SOLD": 1,
                "LAST_SALE_AT": "2024-01-02:09:00:00",
            },
        ),
        _daily(
            "U",
            2,
            {
                "SALES_DAY": "2024-01-02 00:00:00",
                "SHOP_ID": "7",
                "SOLD": "2E+1",
                "LAST_SALE_AT": "2024-01-02:18:45:36.123456789",
            },
        ),  # TIMESTAMP(9): digits 7-9 truncated
        _daily(
            "I", 3, {"SALES_DAY": "2024-01-03T00:00:00.000000", "SHOP_ID": 7, "SOLD": 5, "LAST_SALE_AT": None}
        ),
        _daily("U", 4, {"SALES_DAY": "2024-01-03:08:00:00", "SHOP_ID": 7, "SOLD": 6}),  # not a date: refused
    ]
    code, stats, err = _apply(capsys, spec, lines, tmp_path / "daily.jsonl", table)
    assert code == 0 and (stats["changes"], stats["quarantined"], stats["values_not_castable"]) == (3, 1, 0)
    assert (
        "daily.jsonl:4: quarantined: GoldenGate message: `after` column SALES_DAY: '2024-01-03:08:00:00' has a "
        "time of day (08:00:00) a date column cannot hold" in err
    )

    _, rows = _live(spark, table)
    assert sorted((r["SALES_DAY"], r["SHOP_ID"], r["SOLD"], r["LAST_SALE_AT"]) for r in rows) == [
        (date(2024, 1, 2), 7, 20, datetime(2024, 1, 2, 18, 45, 36, 123456)),
        (date(2024, 1, 3), 7, 5, None),
    ]
    (quarantined,) = spark.read.format("delta").load(f"{table}_quarantine").collect()
    assert quarantined["error"].startswith(
        "line 4: GoldenGate message: `after` column SALES_DAY: '2024-01-03:08:00:00'"
    )
    assert bytes(quarantined["raw_value"]) == lines[3].encode()


def _history(capsys, table) -> list[tuple]:
    from transforms.sequence import decode_sequence

    capsys.readouterr()
    assert main(["show", "--table", str(table), "--history"]) == 0
    versions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    def position(seq):
        return None if seq is None else decode_sequence(seq)[0]

    return [(v["NAME"], position(v["_valid_from_seq"]), position(v["_valid_to_seq"])) for v in versions]


def test_scd2_history_through_the_cli_has_one_version_per_distinct_state_and_shows_any_moment(
    tmp_path, capsys
):
    """The source wrote NAME=Alice at 5, 10 and 15, Charlie at 20; a late Bob at 12 arrives in a later
    batch. `show --history` prints the versions, `show --as-of` the state at a commit time."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "history: scd2\n")
    table = tmp_path / "silver"
    first = [
        _gg("I" if pos == 5 else "U", pos, {"ROW_ID": "1-A", "NAME": name})
        for pos, name in ((5, "Alice"), (10, "Alice"), (15, "Alice"), (20, "Charlie"))
    ]
    code, _, err = _apply(capsys, spec, first, tmp_path / "first.jsonl", table)
    assert (code, err) == (0, "")
    assert _history(capsys, table) == [("Alice", 5, 20), ("Charlie", 20, None)]

    code, _, err = _apply(
        capsys, spec, [_gg("U", 12, {"ROW_ID": "1-A", "NAME": "Bob"})], tmp_path / "late.jsonl", table
    )
    assert (code, err) == (0, "")
    assert _history(capsys, table) == [
        ("Alice", 5, 12),
        ("Bob", 12, 15),
        ("Alice", 15, 20),
        ("Charlie", 20, None),
    ]

    def as_of(moment: str) -> list[str]:
        capsys.readouterr()
        assert main(["show", "--table", str(table), "--as-of", moment]) == 0
        return [json.loads(line)["NAME"] for line in capsys.readouterr().out.splitlines()]

    # the commit times are the messages' op_ts, 2024-01-01 10:00:<pos>
    assert as_of("2024-01-01T10:00:04") == []
    assert as_of("2024-01-01T10:00:11") == ["Alice"]
    assert as_of("2024-01-01T10:00:12") == ["Bob"]  # the late change, slotted in
    assert as_of("2024-01-01T11:00:14+01:00") == ["Bob"]  # a time with its zone is read as UTC
    assert as_of("2024-01-01T10:00:30") == ["Charlie"]
