"""The generator's table knowledge lives in one data file (crm_schema.yaml) that agrees with the specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devtools.workload import WorkloadConfig, generate_workload, load_catalogue
from devtools.workload.catalogue import DEFAULT_CATALOGUE, CatalogueError
from tests.pipeline import crm_specs

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_COLUMNS = [
    "ROW_ID",
    "CREATED",
    "CREATED_BY",
    "LAST_UPD",
    "LAST_UPD_BY",
    "MODIFICATION_NUM",
    "CONFLICT_ID",
    "DB_LAST_UPD",
    "DB_LAST_UPD_SRC",
    "DCKING_NUM",
]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def test_every_spec_has_a_catalogue_table_and_the_topic_the_generator_writes(catalogue):
    specs = {spec.table: spec for spec in crm_specs()}
    assert sorted(specs) == sorted(t.source for t in catalogue.tables.values())
    topics = set(generate_workload(WorkloadConfig(initial_rows=200, changes=300)).topics())
    assert topics == {spec.topic for spec in specs.values()}


def test_spec_column_hints_name_catalogue_columns_of_a_matching_kind(catalogue):
    kinds_for = {
        "timestamp": {"now"},
        "date": {"date"},
        "long": {"version", "number", "constant"},
        "int": {"number", "line_number"},
    }
    for spec in crm_specs():
        columns = {c.name: c for c in catalogue.table_by_source(spec.table).columns}
        for name, type_name in spec.columns.items():
            assert name in columns, f"{spec.table}: hint for unknown column {name}"
            expected = {"decimal"} if type_name.startswith("decimal") else kinds_for[type_name]
            assert columns[name].kind in expected, (
                f"{spec.table}.{name}: {type_name} hint on {columns[name].kind}"
            )


def test_every_table_starts_with_the_siebel_system_columns(catalogue):
    for table in catalogue.tables.values():
        assert table.column_names[: len(SYSTEM_COLUMNS)] == SYSTEM_COLUMNS
        assert table.key == "ROW_ID"
        assert {c.name for c in table.touch_columns} == {
            "LAST_UPD",
            "LAST_UPD_BY",
            "MODIFICATION_NUM",
            "DB_LAST_UPD",
        }


def test_the_extension_table_has_par_row_id_and_attrib_columns(catalogue):
    (extension,) = catalogue.extensions("S_CONTACT")
    assert extension.name == "S_CONTACT_X" and extension.parent.name == "PAR_ROW_ID"
    assert sum(name.startswith("ATTRIB_") for name in extension.column_names) >= 10


def test_python_modules_of_the_generator_name_no_table(catalogue):
    names = set(catalogue.tables) | {c.name for t in catalogue.tables.values() for c in t.columns}
    for module in (ROOT / "orchestration" / "workload").glob("*.py"):
        text = module.read_text()
        found = sorted(name for name in names if f'"{name}"' in text or f"'{name}'" in text)
        assert not found, f"{module.name} hard-codes {found}"


def test_a_catalogue_mistake_names_the_table_and_column(tmp_path):
    raw = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
    raw["tables"]["S_CONTACT"]["columns"]["CON_CD"]["type"] = "NO_SUCH_LOV"
    raw["tables"]["S_ORDER"]["columns"]["ACCNT_ID"]["table"] = "S_NOWHERE"
    path = tmp_path / "crm_schema.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert "S_CONTACT.CON_CD: unknown list-of-values type NO_SUCH_LOV" in str(caught.value)
    assert "S_ORDER.ACCNT_ID: unknown table S_NOWHERE" in str(caught.value)


def test_an_unknown_column_option_is_rejected(tmp_path):
    raw = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
    raw["tables"]["S_CONTACT"]["columns"]["FST_NAME"]["nul_rate"] = 0.5
    path = tmp_path / "crm_schema.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CatalogueError, match="nul_rate"):
        load_catalogue(path)
