"""`cdc-lakehouse apply/show`: the README's worked example of a late partial update, through the CLI."""

from __future__ import annotations

import json

import pytest

from orchestration.cli import main

pytestmark = pytest.mark.integration

SPEC = "table: SIEBEL.S_CONTACT\ntopic: crm.S_CONTACT\nformat: goldengate_json\nkeys: [ROW_ID]\n"


def _gg(op: str, pos: int, after: dict) -> str:
    return json.dumps({"table": "SIEBEL.S_CONTACT", "op_type": op, "op_ts": f"2024-01-01 10:00:0{pos}.000000",
                       "pos": f"{pos:020d}", "after": after})


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
        [_gg("I", 1, {"ROW_ID": "1-A", "NAME": "Anna", "EMAIL": "a@x"}), '{"table": "SIEBEL.S_CONTACT", "op_type":'],
        [_gg("U", 2, {"ROW_ID": "1-A", "EMAIL": "b@x"})],
    ]
    shown = []
    for number, lines in enumerate(batches):
        path = tmp_path / f"batch{number}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        assert main(["apply", "--spec", str(spec), "--input", str(path), "--table", str(table)]) == 0
        shown.append(_show(capsys, table))

    assert shown[0] == [{"ROW_ID": "1-A", "NAME": "Anne"}]  # EMAIL still unknown: no such column yet
    assert shown[1] == [{"ROW_ID": "1-A", "NAME": "Anne", "EMAIL": "a@x"}]  # the older insert fills EMAIL only
    assert shown[2] == [{"ROW_ID": "1-A", "NAME": "Anne", "EMAIL": "b@x"}]

    quarantine = spark.read.format("delta").load(f"{table}_quarantine").collect()
    assert len(quarantine) == 1 and quarantine[0]["error"].startswith("line 2:")


def test_a_bad_spec_is_reported_with_file_and_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "histroy: scd2\n")
    assert main(["apply", "--spec", str(spec), "--input", str(spec), "--table", str(tmp_path / "t")]) == 2
    assert f"{spec}:5: histroy: unknown field" in capsys.readouterr().err
