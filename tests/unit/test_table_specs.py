"""Spec mistakes fail at load time with the file and the line (DESIGN: "Bad input"), and every CRM spec loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.table_spec import load_table_spec, load_table_specs
from assets.yaml_loader import SpecError

SPECS = Path(__file__).resolve().parents[2] / "assets" / "specs"
CRM_TABLES = [
    "S_ADDR_PER",
    "S_CONTACT",
    "S_CONTACT_X",
    "S_LST_OF_VAL",
    "S_ORDER",
    "S_ORDER_ITEM",
    "S_ORG_EXT",
    "S_PROD_INT",
]

VALID = "table: SIEBEL.S_X\ntopic: crm.S_X\nformat: goldengate_json\nkeys: [ROW_ID]\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_table_spec(path)
    return str(caught.value)


def test_the_minimal_spec_loads_with_defaults(tmp_path):
    spec = load_table_spec(write(tmp_path, "x.yaml", VALID))
    assert (spec.table, spec.topic, spec.format, spec.keys) == (
        "SIEBEL.S_X",
        "crm.S_X",
        "goldengate_json",
        ["ROW_ID"],
    )
    assert spec.history == "scd1" and spec.columns == {} and spec.asset_name == "s_x"


def test_unknown_field_names_file_line_and_the_allowed_fields(tmp_path):
    path = write(tmp_path, "x.yaml", VALID + "histroy: scd2\n")
    message = load_error(path)
    assert message.startswith(f"{path}:5: histroy: unknown field (allowed: table, topic, format, keys,")
    assert "history" in message


def test_an_unknown_field_of_a_nested_block_lists_that_blocks_fields(tmp_path):
    path = write(tmp_path, "x.yaml", VALID + "deletes:\n  retention: 5\n")
    assert load_error(path) == (
        f"{path}:6: deletes.retention: unknown field (allowed: mode, tombstone_retention_hours)"
    )


def test_yes_no_on_off_are_strings_as_in_yaml_1_2(tmp_path):
    """One YAML dialect for every declarative file (assets.yaml_loader): only true/false are booleans,
    so a column or key named like a YAML 1.1 boolean keeps its name."""
    spec = load_table_spec(
        write(tmp_path, "x.yaml", VALID.replace("[ROW_ID]", "[ON, yes]") + "columns: {N: long}\n")
    )
    assert spec.keys == ["ON", "yes"] and spec.columns == {"N": "long"}


def test_wrong_format_names_file_line_and_the_formats(tmp_path):
    path = write(tmp_path, "x.yaml", VALID.replace("goldengate_json", "golden_json"))
    assert load_error(path) == f"{path}:3: format: Input should be 'goldengate_json' or 'debezium_json'"


def test_missing_topic_names_file_and_field(tmp_path):
    path = write(tmp_path, "x.yaml", VALID.replace("topic: crm.S_X\n", ""))
    assert load_error(path) == f"{path}:1: topic: required field is missing"


def test_duplicate_table_across_files_names_both_files_and_lines(tmp_path):
    first = write(tmp_path, "a.yaml", VALID)
    second = write(
        tmp_path,
        "b.yaml",
        "# same table, other topic\n" + VALID.replace("crm.S_X", "crm.S_X2") + "name: other\n",
    )
    with pytest.raises(SpecError) as caught:
        load_table_specs(tmp_path)
    assert str(caught.value) == f"{second}:2: table 'SIEBEL.S_X' is already used by {first}:1"


def test_duplicate_asset_name_across_files_points_at_the_name_field(tmp_path):
    first = write(tmp_path, "a.yaml", VALID + "name: crm_x\n")
    second = write(tmp_path, "b.yaml", VALID.replace("S_X", "S_Y") + "name: crm_x\n")
    with pytest.raises(SpecError) as caught:
        load_table_specs(tmp_path)
    assert str(caught.value) == f"{second}:5: asset_name 'crm_x' is already used by {first}:5"


def test_bad_column_type_points_at_the_column_line(tmp_path):
    path = write(tmp_path, "x.yaml", VALID + "columns:\n  AMT_OK: decimal(22,7)\n  AMT: money\n")
    assert load_error(path) == (
        f"{path}:7: columns.AMT: type 'money' is not one of string, long, int, double, boolean, date, "
        "timestamp, decimal(p,s)"
    )


def test_empty_keys_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "x.yaml", VALID.replace("[ROW_ID]", "[]"))
    message = load_error(path)
    assert message.startswith(f"{path}:4: keys: ")
    assert "at least 1 item" in message


def test_a_spec_that_is_not_a_mapping_is_an_error_at_line_1(tmp_path):
    path = write(tmp_path, "x.yaml", "- table\n- topic\n")
    assert load_error(path).startswith(f"{path}:1: a table spec is a mapping")


ORDER_SERVICE_TABLES = ["order_lines", "orders", "outbox", "payments"]


def test_every_shipped_spec_loads_with_its_source_topic_keys_and_description():
    specs = load_table_specs(SPECS)
    assert [s.table for s in specs] == [f"SIEBEL.{t}" for t in CRM_TABLES] + [
        f"public.{t}" for t in ORDER_SERVICE_TABLES
    ]
    for spec in specs[len(CRM_TABLES) :]:
        assert spec.source == "orders" and spec.format == "debezium_json"
        assert spec.topic == f"orders.{spec.table}"
        assert spec.keys == ["id"] and spec.sequence_by == ["lsn"]
        assert spec.description and len(spec.description) > 30
    assert [s.asset_name for s in specs if s.outbox is not None] == ["outbox"]
    for spec in specs[: len(CRM_TABLES)]:
        assert spec.source == "crm"
        short = spec.table.split(".")[1]
        assert spec.topic == f"crm.{short}"
        assert spec.format == "goldengate_json"
        assert spec.keys == ["ROW_ID"]
        assert spec.description and len(spec.description) > 30
        for system_date in ("CREATED", "LAST_UPD", "DB_LAST_UPD"):
            assert spec.columns[system_date] == "timestamp"


DEBEZIUM = "table: dbo.customers\ntopic: server1.testDB.dbo.customers\nformat: debezium_json\nkeys: [id]\n"


@pytest.mark.parametrize(
    "sequence_by", [None, "[commit_lsn, change_lsn]", "[commit_lsn, change_lsn, event_serial_no]", "[file, pos, row]",
                    "[commit_scn, scn, ssn]", "[lsn]", "[commit_lsn, total_order]"],
)  # fmt: skip
def test_a_debezium_spec_loads_with_no_sequence_by_or_with_any_connectors_position_fields(
    tmp_path, sequence_by
):
    text = DEBEZIUM if sequence_by is None else DEBEZIUM + f"sequence_by: {sequence_by}\n"
    spec = load_table_spec(write(tmp_path, "x.yaml", text))
    assert spec.sequence_by == (None if sequence_by is None else sequence_by.strip("[]").split(", "))


def test_a_debezium_sequence_by_field_no_connector_has_lists_each_connectors_fields(tmp_path):
    path = write(tmp_path, "x.yaml", DEBEZIUM + "sequence_by: [commit_lsn, seqval]\n")
    assert load_error(path) == (
        f"{path}:5: sequence_by: ['commit_lsn', 'seqval'] for debezium_json: use the position fields of the "
        "table's connector (oracle: commit_scn, scn, ssn, total_order; postgresql: lsn, total_order; "
        "mysql: file, pos, row, total_order; mariadb: file, pos, row, total_order; "
        "sqlserver: commit_lsn, change_lsn, event_serial_no, total_order; db2: commit_lsn, change_lsn, total_order)"
    )


def test_a_goldengate_sequence_by_keeps_its_own_fields(tmp_path):
    path = write(tmp_path, "x.yaml", VALID + "sequence_by: [commit_lsn]\n")
    assert (
        load_error(path)
        == f"{path}:5: sequence_by: ['commit_lsn'] for goldengate_json: use fields of ['csn', 'pos']"
    )


# -- source defaults: what every table of a source shares, said once ---------------------------------

SOURCE = """format: goldengate_json
topic: crm.{table_name}
keys: [ROW_ID]
sequence_by: [csn, pos]
columns: {CREATED: timestamp, LAST_UPD: timestamp}
"""


def with_source(folder: Path, text: str = SOURCE) -> Path:
    (folder / "sources").mkdir()
    return write(folder / "sources", "crm.yaml", text)


def test_a_spec_takes_what_it_does_not_set_from_its_sources_file(tmp_path):
    with_source(tmp_path)
    spec = load_table_spec(
        write(tmp_path, "x.yaml", "table: SIEBEL.S_X\nsource: crm\ncolumns: {AMT: long}\n")
    )

    assert (spec.topic, spec.format, spec.keys, spec.sequence_by) == (
        "crm.S_X",
        "goldengate_json",
        ["ROW_ID"],
        ["csn", "pos"],
    )
    assert spec.columns == {"CREATED": "timestamp", "LAST_UPD": "timestamp", "AMT": "long"}


def test_a_spec_overrides_its_sources_fields_and_column_types(tmp_path):
    with_source(tmp_path)
    text = "table: SIEBEL.S_X\nsource: crm\ntopic: other.x\nkeys: [ID]\ncolumns: {CREATED: date}\n"
    spec = load_table_spec(write(tmp_path, "x.yaml", text))

    assert (spec.topic, spec.keys) == ("other.x", ["ID"])
    assert spec.columns == {"CREATED": "date", "LAST_UPD": "timestamp"}


def test_a_wrong_sources_file_names_its_own_file_line_and_field(tmp_path):
    source = with_source(tmp_path, SOURCE + "tabel: X\n")
    path = write(tmp_path, "x.yaml", "table: SIEBEL.S_X\nsource: crm\n")

    assert load_error(path).startswith(f"{source}:6: tabel: unknown field (allowed: format, topic, keys,")


def test_a_topic_pattern_without_the_table_name_is_refused(tmp_path):
    source = with_source(tmp_path, SOURCE.replace("crm.{table_name}", "crm.{table}"))
    path = write(tmp_path, "x.yaml", "table: SIEBEL.S_X\nsource: crm\n")

    assert load_error(path).startswith(
        f"{source}:2: topic: 'crm.{{table}}': a topic pattern holds {{table_name}} once"
    )


def test_the_shipped_specs_say_only_what_is_particular_to_their_table():
    shared = ("format:", "topic:", "keys:", "sequence_by:", "  CREATED:", "  LAST_UPD:")
    sequence_by = {"crm": ["csn", "pos"], "orders": ["lsn"]}
    for path in sorted(SPECS.glob("*.yaml")):
        lines = path.read_text().splitlines()
        assert not [line for line in lines if line.startswith(shared)], path
        spec = load_table_spec(path)
        assert spec.sequence_by == sequence_by[spec.source], path


OUTBOX = "table: public.outbox\ntopic: orders.public.outbox\nformat: debezium_json\n"


def test_an_outbox_spec_takes_debeziums_column_names_and_ignores_deletes_and_truncates(tmp_path):
    spec = load_table_spec(write(tmp_path, "outbox.yaml", OUTBOX + "keys: [id]\noutbox: {}\n"))
    assert spec.outbox is not None
    assert (spec.outbox.event_id, spec.outbox.aggregate_id, spec.outbox.event_type) == (
        "id",
        "aggregateid",
        "type",
    )
    assert spec.ignored_operations == ["delete", "truncate"]
    plain = load_table_spec(write(tmp_path, "plain.yaml", OUTBOX + "keys: [id]\n"))
    assert plain.ignored_operations == []


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ("keys: [aggregateid]\noutbox: {}\n", "keyed by its event id: keys ['aggregateid'] must be [id]"),
        ("keys: [event_id]\noutbox: {event_id: uuid}\n", "keys ['event_id'] must be [uuid]"),
        ("keys: [id]\nhistory: scd2\noutbox: {}\n", "history scd1"),
        ("keys: [id]\noutbox: {aggregate: x}\n", "aggregate"),
    ],
)
def test_an_outbox_spec_that_is_not_keyed_by_its_event_id_fails_naming_the_file(tmp_path, fields, said):
    with pytest.raises(SpecError) as caught:
        load_table_spec(write(tmp_path, "outbox.yaml", OUTBOX + fields))
    assert "outbox.yaml" in str(caught.value) and said in str(caught.value)
