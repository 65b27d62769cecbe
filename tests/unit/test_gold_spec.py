"""Gold entity declarations (assets/gold_spec.py): every entity loads; each mistake in entities.yaml or
in a SQL file fails at load time with the file and the line (docs/DESIGN.md: "Spec and SQL mistakes fail
at load time with the file and the line")."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from assets.gold_spec import GOLD_DIR, load_gold_entities, load_shared_views, with_shared_views
from assets.table_spec import load_table_specs
from assets.yaml_loader import SpecError
from transforms.gold.engine import restrict_to_keys

SPECS = Path(__file__).resolve().parents[2] / "assets" / "specs"
KNOWN = {"s_contact", "s_lst_of_val"}
GOOD_SQL = "SELECT ROW_ID AS id, FST_NAME AS first_name\nFROM s_contact\n"


def gold_folder(tmp_path: Path, entities: str, **sql_files: str) -> Path:
    (tmp_path / "entities.yaml").write_text(entities)
    for name, text in sql_files.items():
        (tmp_path / f"{name}.sql").write_text(text)
    return tmp_path


def load_error(folder: Path, known: set[str] | None = KNOWN) -> str:
    with pytest.raises(SpecError) as caught:
        load_gold_entities(folder, known_tables=known)
    return str(caught.value)


def test_every_gold_entity_loads_and_reads_only_tables_that_specs_define():
    known = {spec.asset_name for spec in load_table_specs(SPECS)}
    entities = {e.name: e for e in load_gold_entities(GOLD_DIR, known_tables=known)}
    assert sorted(entities) == [
        "account", "customer", "order", "order_event", "order_item", "product", "service_order"
    ]  # fmt: skip
    assert entities["service_order"].sources == ("order_lines", "orders", "payments")
    assert entities["order_event"].sources == ("outbox",)
    assert entities["customer"].keys == ["customer_id"]
    assert entities["customer"].sources == (
        "s_addr_per",
        "s_contact",
        "s_contact_x",
        "s_lst_of_val",
        "s_org_ext",
    )
    assert entities["order"].sources == ("s_lst_of_val", "s_order", "s_order_item")
    views = load_shared_views(GOLD_DIR, known)
    for entity in entities.values():
        own_text = (GOLD_DIR / entity.sql_file).read_text()
        own_query = sqlglot.parse_one(own_text, read="spark")
        composed = with_shared_views(own_query, views)
        # an entity that reads a shared view runs the composed query; one that reads none, its file as written
        expected = own_text if composed is own_query else composed.sql(dialect="spark", pretty=True)
        assert entity.sql_text == expected
        assert entity.description
        assert sorted(entity.affected_keys) == list(entity.sources)  # every entity updates incrementally


def test_the_tables_an_entity_reads_are_found_in_its_sql_without_its_cte_names(tmp_path):
    sql = (
        "WITH lov AS (SELECT NAME, VAL FROM s_lst_of_val)\n"
        "SELECT c.ROW_ID AS id, lov.VAL AS status FROM S_CONTACT AS c LEFT JOIN lov ON lov.NAME = c.CUST_STAT_CD\n"
    )
    folder = gold_folder(tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person=sql)
    (entity,) = load_gold_entities(folder, known_tables=KNOWN)
    assert (entity.name, entity.keys, entity.sources) == ("person", ["id"], ("s_contact", "s_lst_of_val"))


def test_a_shared_view_becomes_the_first_cte_of_each_entity_that_reads_it(tmp_path):
    entities = (
        "person:\n  keys: [id]\n  sql_file: person.sql\n"
        "plain:\n  keys: [id]\n  sql_file: plain.sql\n"
        "own:\n  keys: [id]\n  sql_file: own.sql\n"
    )
    person = (
        "WITH named AS (SELECT ROW_ID, CUST_STAT_CD FROM s_contact)\n"
        "SELECT n.ROW_ID AS id, lov.display['STATUS'][n.CUST_STAT_CD] AS status FROM named AS n CROSS JOIN lov\n"
    )
    plain = "SELECT ROW_ID AS id FROM s_contact\n"
    own = "WITH lov AS (SELECT 1 AS x)\nSELECT ROW_ID AS id, lov.x FROM s_contact CROSS JOIN lov\n"
    folder = gold_folder(tmp_path, entities, person=person, plain=plain, own=own)
    (folder / "shared").mkdir()
    (folder / "shared" / "lov.sql").write_text("SELECT map(NAME, VAL) AS display FROM s_lst_of_val\n")
    loaded = {e.name: e for e in load_gold_entities(folder, known_tables=KNOWN)}

    composed = sqlglot.parse_one(loaded["person"].sql_text, read="spark")
    assert [cte.alias_or_name for cte in composed.find_all(exp.CTE)] == ["lov", "named"]
    assert loaded["person"].sources == ("s_contact", "s_lst_of_val")  # the view's table is read too
    assert loaded["plain"].sql_text == plain  # an entity that does not read the view keeps its text
    assert loaded["own"].sql_text == own and loaded["own"].sources == ("s_contact",)  # its own `lov` wins

    (folder / "shared" / "lov.sql").write_text("SELECT map(NAME, VAL) AS display FROM s_lst_of_values\n")
    assert load_error(folder).startswith(
        f"{folder / 'shared' / 'lov.sql'}:1: reads s_lst_of_values, which no table spec"
    )


def test_a_sql_syntax_error_names_the_sql_file_line_and_column(tmp_path):
    sql = "-- people\nSELECT ROW_ID AS id\nFROM s_contact\nWHERE CUST_STAT_CD IN ('Active'\nORDER BY id\n"
    folder = gold_folder(tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person=sql)
    assert load_error(folder) == f"{folder / 'person.sql'}:5:8: SQL syntax error: Expecting ) near 'ORDER BY'"


def test_a_sql_reading_a_table_no_spec_defines_names_the_table_and_its_line(tmp_path):
    sql = "SELECT c.ROW_ID AS id\nFROM s_contact AS c\nJOIN s_contact_xm AS xm ON xm.PAR_ROW_ID = c.ROW_ID\n"
    folder = gold_folder(tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person=sql)
    assert load_error(folder) == (
        f"{folder / 'person.sql'}:3: reads s_contact_xm, which no table spec defines (known: s_contact, s_lst_of_val)"
    )


def test_a_missing_sql_file_is_named_with_the_line_that_declares_it(tmp_path):
    folder = gold_folder(tmp_path, "person:\n  keys: [id]\n  sql_file: persons.sql\n", person=GOOD_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:3: entity 'person': SQL file {folder / 'persons.sql'} does not exist"
    )


def test_an_unknown_field_in_entities_yaml_names_the_file_line_and_the_allowed_fields(tmp_path):
    entities = "person:\n  keys: [id]\n  sql_file: person.sql\n  primary_key: [id]\n"
    folder = gold_folder(tmp_path, entities, person=GOOD_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:4: person.primary_key: unknown field (allowed: keys, sql_file, description, affected_keys)"
    )


def test_a_missing_required_field_in_entities_yaml_names_the_entity_line(tmp_path):
    folder = gold_folder(tmp_path, "# gold\nperson:\n  sql_file: person.sql\n", person=GOOD_SQL)
    assert load_error(folder) == f"{folder / 'entities.yaml'}:2: person.keys: required field is missing"


def test_fields_the_loader_fills_cannot_be_set_in_entities_yaml(tmp_path):
    entities = "person:\n  keys: [id]\n  sql_file: person.sql\n  sources: [s_secret]\n"
    folder = gold_folder(tmp_path, entities, person=GOOD_SQL)
    assert load_error(folder).startswith(f"{folder / 'entities.yaml'}:4: person.sources: unknown field")


def test_an_entity_declared_twice_names_both_lines(tmp_path):
    entities = (
        "person:\n  keys: [id]\n  sql_file: person.sql\nperson:\n  keys: [id]\n  sql_file: person.sql\n"
    )
    folder = gold_folder(tmp_path, entities, person=GOOD_SQL)
    assert load_error(folder) == f"{folder / 'entities.yaml'}:4: entity 'person' is already defined on line 1"


def test_an_entity_name_must_be_lower_snake_case(tmp_path):
    folder = gold_folder(tmp_path, "Person:\n  keys: [id]\n  sql_file: person.sql\n", person=GOOD_SQL)
    assert (
        load_error(folder)
        == f"{folder / 'entities.yaml'}:1: entity name 'Person': use lower snake_case (gold/<name>)"
    )


def test_a_key_the_query_does_not_select_is_an_error(tmp_path):
    folder = gold_folder(tmp_path, "person:\n  keys: [person_id]\n  sql_file: person.sql\n", person=GOOD_SQL)
    assert load_error(folder) == (
        f"{folder / 'person.sql'}: the query does not select the key column(s) ['person_id'] "
        "(it selects ['id', 'first_name'])"
    )


def test_a_sql_file_holds_exactly_one_query(tmp_path):
    folder = gold_folder(
        tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person=GOOD_SQL + ";\nSELECT 1 AS id\n"
    )
    assert (
        load_error(folder)
        == f"{folder / 'person.sql'}: a gold SQL file holds exactly one query, found 2 statements"
    )
    (tmp_path / "person.sql").write_text("DROP TABLE s_contact\n")
    assert (
        load_error(folder) == f"{folder / 'person.sql'}: a gold SQL file holds a query (SELECT ...), not DROP"
    )


def test_without_known_tables_any_table_name_is_accepted(tmp_path):
    folder = gold_folder(
        tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person="SELECT 1 AS id FROM s_other\n"
    )
    (entity,) = load_gold_entities(folder, known_tables=None)
    assert entity.sources == ("s_other",)


# ---- affected_keys: which gold keys a changed silver row affects ------------------------------------------

PERSON_SQL = (
    "SELECT TRIM(c.ROW_ID) AS id, lov.VAL AS status\n"
    "FROM s_contact AS c LEFT JOIN s_lst_of_val AS lov ON lov.NAME = c.CUST_STAT_CD\n"
)
BY_ROW_ID = "SELECT TRIM(ROW_ID) AS id FROM changed"


def person(affected_keys: str) -> str:
    return "person:\n  keys: [id]\n  sql_file: person.sql\n  affected_keys:\n" + affected_keys


def test_affected_keys_take_a_query_over_changed_or_all_for_each_table_the_sql_reads(tmp_path):
    by_code = "|\n      SELECT TRIM(c.ROW_ID) AS id\n      FROM s_contact AS c JOIN changed AS l ON l.NAME = c.CUST_STAT_CD\n"
    folder = gold_folder(
        tmp_path, person(f"    s_contact: {BY_ROW_ID}\n    s_lst_of_val: {by_code}"), person=PERSON_SQL
    )
    (entity,) = load_gold_entities(folder, known_tables=KNOWN)
    assert entity.affected_keys["s_contact"] == BY_ROW_ID
    assert entity.affected_keys["s_lst_of_val"].startswith(
        "SELECT TRIM(c.ROW_ID) AS id\nFROM s_contact AS c JOIN changed"
    )
    (tmp_path / "entities.yaml").write_text(person(f"    s_contact: {BY_ROW_ID}\n    s_lst_of_val: all\n"))
    (entity,) = load_gold_entities(folder, known_tables=KNOWN)
    assert entity.affected_keys["s_lst_of_val"] == "all"


def test_an_entity_without_affected_keys_loads_and_is_always_recomputed_whole(tmp_path):
    folder = gold_folder(tmp_path, "person:\n  keys: [id]\n  sql_file: person.sql\n", person=GOOD_SQL)
    (entity,) = load_gold_entities(folder, known_tables=KNOWN)
    assert entity.affected_keys is None


def test_a_table_the_sql_reads_without_an_affected_keys_mapping_is_an_error_not_a_silent_all(tmp_path):
    folder = gold_folder(tmp_path, person(f"    s_contact: {BY_ROW_ID}\n"), person=PERSON_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:4: person.affected_keys: no mapping for s_lst_of_val, which person.sql reads; "
        "give each a query over `changed` returning id, or `all` (a change to it recomputes every row)"
    )


def test_an_affected_keys_mapping_for_a_table_the_sql_does_not_read_is_an_error(tmp_path):
    entities = person(f"    s_contact: {BY_ROW_ID}\n    s_lst_of_val: all\n    s_addr_per: all\n")
    folder = gold_folder(tmp_path, entities, person=PERSON_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:7: person.affected_keys.s_addr_per: person.sql does not read s_addr_per "
        "(it reads s_contact, s_lst_of_val)"
    )


def test_an_affected_keys_query_must_select_the_entity_keys(tmp_path):
    entities = person("    s_contact: SELECT ROW_ID AS contact_id FROM changed\n    s_lst_of_val: all\n")
    folder = gold_folder(tmp_path, entities, person=PERSON_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:5: person.affected_keys.s_contact: the query does not select the key "
        "column(s) ['id'] (it selects ['contact_id'])"
    )


def test_an_affected_keys_query_must_read_the_changed_rows(tmp_path):
    entities = person("    s_contact: SELECT TRIM(ROW_ID) AS id FROM s_contact\n    s_lst_of_val: all\n")
    folder = gold_folder(tmp_path, entities, person=PERSON_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:5: person.affected_keys.s_contact: the query does not read `changed` "
        "(the changed rows of s_contact)"
    )


def test_an_affected_keys_query_reads_only_changed_and_the_tables_of_the_entity_sql(tmp_path):
    query = (
        "SELECT TRIM(x.PAR_ROW_ID) AS id FROM s_contact_x AS x JOIN changed AS c ON c.ROW_ID = x.PAR_ROW_ID"
    )
    folder = gold_folder(
        tmp_path, person(f"    s_contact: {query}\n    s_lst_of_val: all\n"), person=PERSON_SQL
    )
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:5: person.affected_keys.s_contact: the query reads s_contact_x; it may read "
        "`changed` and the tables person.sql reads (s_contact, s_lst_of_val)"
    )


def test_a_syntax_error_in_an_affected_keys_query_names_its_line_in_entities_yaml(tmp_path):
    block = "|\n      SELECT TRIM(c.ROW_ID) AS id\n      FROM s_contact AS c\n      JOIN changed AS l ON (l.NAME = c.CUST_STAT_CD\n"
    folder = gold_folder(
        tmp_path, person(f"    s_contact: {BY_ROW_ID}\n    s_lst_of_val: {block}"), person=PERSON_SQL
    )
    message = load_error(folder)
    assert message.startswith(
        f"{folder / 'entities.yaml'}:9: person.affected_keys.s_lst_of_val: SQL syntax error: "
    )


def test_an_affected_keys_value_holds_one_query(tmp_path):
    entities = person(f"    s_contact: {BY_ROW_ID}; SELECT 1 AS id\n    s_lst_of_val: all\n")
    folder = gold_folder(tmp_path, entities, person=PERSON_SQL)
    assert load_error(folder) == (
        f"{folder / 'entities.yaml'}:5: person.affected_keys.s_contact: give one query (SELECT ...) or `all`"
    )


def test_affected_keys_is_a_mapping_of_table_to_query(tmp_path):
    folder = gold_folder(tmp_path, person("    - s_contact\n"), person=PERSON_SQL)
    assert load_error(folder).startswith(f"{folder / 'entities.yaml'}:4: person.affected_keys: ")


# ---- restrict_to_keys (transforms/gold/engine.py): how an incremental run limits the SQL to its keys ---------


def test_every_gold_sql_can_be_limited_to_its_keys_before_its_joins():
    known = {spec.asset_name for spec in load_table_specs(SPECS)}
    for entity in load_gold_entities(GOLD_DIR, known_tables=known):
        restricted = restrict_to_keys(entity.sql_text, entity.keys, "affected")
        assert restricted is not None, entity.name
        assert restricted.endswith(f"IN (SELECT `{entity.keys[0]}` FROM `affected`)"), entity.name


def test_the_key_filter_is_and_ed_with_the_query_filter_on_the_key_expressions():
    sql = "SELECT x.k1 AS k1, TRIM(y.k2) AS k2, y.v AS v FROM t AS x JOIN u AS y ON x.a = y.a WHERE x.b = 1 OR y.c = 2"
    assert restrict_to_keys(sql, ["k1", "k2"], "keys") == (
        "SELECT x.k1 AS k1, TRIM(y.k2) AS k2, y.v AS v FROM t AS x JOIN u AS y ON x.a = y.a "
        "WHERE (x.b = 1 OR y.c = 2) AND (x.k1, TRIM(y.k2)) IN (SELECT `k1`, `k2` FROM `keys`)"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a AS k, COUNT(*) AS n FROM t GROUP BY a",
        "SELECT DISTINCT a AS k FROM t",
        "SELECT a AS k, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS n FROM t",
        "SELECT a AS k, SUM(b) AS total FROM t",
        "SELECT a AS k FROM t LIMIT 10",
        "SELECT a AS k FROM t UNION ALL SELECT b FROM u",
        "SELECT * FROM t",
    ],
)
def test_a_query_whose_rows_depend_on_other_rows_is_not_rewritten(sql):
    """The engine then filters the finished result instead (correct, but nothing is pruned)."""
    assert restrict_to_keys(sql, ["k"], "keys") is None
