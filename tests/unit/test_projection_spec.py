"""Projection specs (assets/projection_spec.py): the shipped specs load and match the gold SQL; every
mistake fails at load time with the file, the line and the field (docs/DESIGN.md: "Spec and SQL mistakes
fail at load time with the file and the line"). Also the write-timestamp rule of
transforms/projections/offsets.py, which is pure logic ("Cassandra: writes ... whose write timestamps
derive from the source sequence, so a replay or a late batch can never regress a row")."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot.optimizer.qualify import qualify

from assets.gold_spec import GOLD_DIR, load_gold_entities
from assets.projection_spec import PROJECTIONS_DIR, load_projection_spec, load_projection_specs
from assets.yaml_loader import SpecError
from transforms.projections.ddl import TableShape, create_table_cql, differences, spec_shape
from transforms.projections.offsets import ProjectionState, SourcePosition, WrittenState, decide
from transforms.specs.projection import CqlTypeError, canonical_cql_type

ENTITY_SPEC = """\
projection: customer_by_id
entity: customer
partition_key: [customer_id]
columns:
  customer_id: text
  last_name: text
"""

SQL_SPEC = """\
projection: orders_by_customer
sql: |
  SELECT contact_id AS customer_id, ordered_at AS order_date, order_id, status
  FROM `order`
affected_partitions:
  order: [contact_id]
partition_key: [customer_id]
clustering:
  - order_date: desc
  - order_id
columns:
  customer_id: text
  order_date: timestamp
  order_id: text
  status: text
latest_n: 30
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load_error(path: Path, known_entities: set[str] | None = None) -> str:
    with pytest.raises(SpecError) as caught:
        load_projection_spec(path, known_entities)
    return str(caught.value)


def gold_columns() -> dict[str, dict[str, str]]:
    """entity -> the columns its gold SQL returns (names only; types do not matter here)."""
    return {
        entity.name: {
            name: "string" for name in sqlglot.parse_one(entity.sql_text, read="spark").named_selects
        }
        for entity in load_gold_entities(GOLD_DIR)
    }


# -- the shipped specs -----------------------------------------------------------------------------


def test_the_shipped_projections_load_and_read_only_gold_entities():
    gold = gold_columns()
    specs = {
        spec.projection: spec for spec in load_projection_specs(PROJECTIONS_DIR, known_entities=set(gold))
    }
    assert sorted(specs) == ["customer_by_id", "order_by_id", "order_timeline", "orders_by_customer"]
    assert specs["order_timeline"].clustering_columns == [("source_position", "desc"), ("event_id", "asc")]
    assert specs["orders_by_customer"].primary_key == ["customer_id", "order_date", "order_id"]
    assert specs["orders_by_customer"].clustering_columns == [("order_date", "desc"), ("order_id", "asc")]
    assert specs["orders_by_customer"].latest_n == 30
    assert specs["order_by_id"].entities == ["order", "order_item"]


def test_each_projection_sql_reads_existing_gold_columns_and_returns_exactly_its_columns():
    gold = gold_columns()
    for spec in load_projection_specs(PROJECTIONS_DIR):
        tree = qualify(
            sqlglot.parse_one(spec.query, read="spark"),
            schema=gold,
            dialect="spark",
            validate_qualify_columns=True,
        )
        assert tree.named_selects == list(spec.columns), spec.projection
        for entity, mapping in spec.partition_mappings.items():
            if isinstance(mapping, list):
                missing = [column for column in mapping if column not in gold[entity]]
                assert not missing, f"{spec.projection}: affected_partitions.{entity} names {missing}"


# -- valid specs -----------------------------------------------------------------------------------


def test_an_entity_spec_selects_its_columns_and_affects_its_own_partition(tmp_path):
    spec = load_projection_spec(write(tmp_path, "c.yaml", ENTITY_SPEC))
    assert spec.query == "SELECT `customer_id`, `last_name` FROM `customer`"
    assert spec.partition_mappings == {"customer": ["customer_id"]}
    assert spec.table_name == "customer_by_id" and spec.keyspace is None and spec.ttl_seconds is None


def test_cql_types_are_spelled_as_cassandra_spells_them():
    assert canonical_cql_type("Map<varchar,frozen<LIST<int>>>") == "map<text, frozen<list<int>>>"
    assert canonical_cql_type("list<frozen<map<text,text>>>") == "list<frozen<map<text, text>>>"
    with pytest.raises(CqlTypeError, match="a collection inside list must be frozen"):
        canonical_cql_type("list<map<text, text>>")
    with pytest.raises(CqlTypeError, match="take no \\(precision, scale\\)"):
        canonical_cql_type("decimal(10,2)")


def test_the_table_ddl_follows_the_spec(tmp_path):
    spec = load_projection_spec(write(tmp_path, "o.yaml", SQL_SPEC))
    assert create_table_cql(spec, "cdc") == (
        "CREATE TABLE IF NOT EXISTS cdc.orders_by_customer (\n"
        "    customer_id text,\n    order_date timestamp,\n    order_id text,\n    status text,\n"
        "    PRIMARY KEY ((customer_id), order_date, order_id)\n"
        ") WITH CLUSTERING ORDER BY (order_date DESC, order_id ASC) AND comment = 'projection orders_by_customer'"
    )


def test_a_new_column_is_added_and_a_key_or_type_change_is_an_incompatibility(tmp_path):
    wanted = spec_shape(load_projection_spec(write(tmp_path, "o.yaml", SQL_SPEC)))
    live = TableShape(
        wanted.partition_key, wanted.clustering, {k: v for k, v in wanted.columns.items() if k != "status"}
    )
    assert differences(live, wanted) == ([], ["status"])
    live = TableShape(
        wanted.partition_key,
        (("order_date", "asc"), ("order_id", "asc")),
        {**wanted.columns, "status": "int", "gone": "text"},
    )
    problems, _ = differences(live, wanted)
    assert problems == [
        "clustering is (order_date ASC, order_id ASC) in the table, (order_date DESC, order_id ASC) in the spec",
        "column status is int in the table, text in the spec",
        "column gone (text) is in the table but not in the spec",
    ]


# -- mistakes, each with file and line --------------------------------------------------------------


def test_unknown_field_names_file_line_and_the_allowed_fields(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC + "latest: 30\n")
    assert load_error(path).startswith(f"{path}:7: latest: unknown field (allowed: projection, description,")


def test_missing_partition_key_names_the_field(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC.replace("partition_key: [customer_id]\n", ""))
    assert load_error(path) == f"{path}:1: partition_key: required field is missing"


def test_bad_cql_type_points_at_the_column_line(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC.replace("last_name: text", "last_name: string"))
    assert load_error(path).startswith(
        f"{path}:6: columns.last_name: type 'string': 'string' is not a CQL type the projections write (ascii,"
    )


def test_a_key_column_that_is_not_a_column_is_named(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC.replace("[customer_id]", "[customer_key]"))
    assert load_error(path) == (
        f"{path}:1: (spec): partition_key column(s) ['customer_key'] are not in `columns` (customer_id, last_name)"
    )


def test_clustering_direction_must_be_asc_or_desc(tmp_path):
    path = write(tmp_path, "o.yaml", SQL_SPEC.replace("order_date: desc", "order_date: newest"))
    assert (
        load_error(path)
        == f"{path}:9: clustering.0: clustering order of order_date is 'newest': use asc or desc"
    )


def test_latest_n_needs_clustering_columns(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC + "latest_n: 5\n")
    assert (
        load_error(path)
        == f"{path}:1: (spec): latest_n needs clustering columns: they define which rows are the latest"
    )


def test_entity_and_sql_are_exclusive(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC + "sql: SELECT 1\n")
    assert load_error(path) == (
        f"{path}:1: (spec): give either `entity` (one gold entity) or `sql` (Spark SQL over gold entities)"
    )


def test_sql_needs_affected_partitions(tmp_path):
    text = SQL_SPEC.replace("affected_partitions:\n  order: [contact_id]\n", "")
    path = write(tmp_path, "o.yaml", text)
    assert load_error(path).startswith(f"{path}:1: (spec): `sql` needs `affected_partitions`")


def test_sql_reading_an_undeclared_entity_is_named(tmp_path):
    text = SQL_SPEC.replace("FROM `order`", "FROM `order` JOIN customer USING (customer_id)")
    path = write(tmp_path, "o.yaml", text)
    assert load_error(path) == (
        f"{path}:1: (spec): sql reads customer, which `affected_partitions` does not list (it lists order)"
    )


def test_affected_partitions_must_name_as_many_columns_as_the_partition_key(tmp_path):
    path = write(tmp_path, "o.yaml", SQL_SPEC.replace("order: [contact_id]", "order: [contact_id, order_id]"))
    assert load_error(path) == (
        f"{path}:1: (spec): affected_partitions.order names 2 column(s) ['contact_id', 'order_id']; "
        "the partition key has 1 ['customer_id']"
    )


def test_sql_syntax_error_points_at_the_line_inside_the_sql(tmp_path):
    path = write(tmp_path, "o.yaml", SQL_SPEC.replace("  FROM `order`\n", "  FROM `order` WHERE (\n"))
    message = load_error(path)
    assert message.startswith(f"{path}:4: sql: SQL syntax error at line 2, column ")


def test_unknown_gold_entity_is_named_with_the_known_ones(tmp_path):
    path = write(tmp_path, "c.yaml", ENTITY_SPEC.replace("entity: customer", "entity: customers"))
    assert load_error(path, {"customer", "order"}) == (
        f"{path}:2: entity: customers is not a gold entity (known: customer, order)"
    )


def test_duplicate_projection_names_across_files_name_both(tmp_path):
    first = write(tmp_path, "a.yaml", ENTITY_SPEC)
    second = write(
        tmp_path,
        "b.yaml",
        ENTITY_SPEC.replace("projection: customer_by_id", "projection: customer_by_id\ntable: other"),
    )
    with pytest.raises(SpecError) as caught:
        load_projection_specs(tmp_path)
    assert str(caught.value) == f"{second}:1: projection 'customer_by_id' is already used by {first}:1"


# -- the write-timestamp rule -----------------------------------------------------------------------

T0 = 1_700_000_000_000_000  # a source commit time, µs since the epoch
SPEC_JSON = '{"spec": 1}'


def fingerprint_of(spec_json: str) -> str:
    return spec_json  # the rule only compares fingerprints


def state(
    committed_at: int, versions: dict, stamp: int, offsets: dict | None = None, attempts=()
) -> ProjectionState:
    written = WrittenState(SourcePosition(committed_at, versions, offsets or {}), stamp, SPEC_JSON)
    return ProjectionState(committed=written, attempts=tuple(attempts))


def test_the_first_batch_writes_at_its_as_of_time():
    decision = decide(
        ProjectionState(committed=None), SourcePosition(T0, {"order": 3}), SPEC_JSON, fingerprint_of
    )
    assert (decision.action, decision.write_timestamp) == ("write", T0)


def test_a_newer_batch_writes_at_its_as_of_time():
    decision = decide(
        state(T0, {"order": 3}, T0), SourcePosition(T0 + 500, {"order": 4}), SPEC_JSON, fingerprint_of
    )
    assert (decision.action, decision.write_timestamp) == ("write", T0 + 500)


def test_an_identical_batch_is_a_replay_at_the_recorded_timestamp():
    recorded = state(T0, {"order": 3}, T0 + 2, {"crm.S_ORDER": {0: 10}})
    batch = SourcePosition(T0, {"order": 3}, {"crm.S_ORDER": {0: 10}})
    decision = decide(recorded, batch, SPEC_JSON, fingerprint_of)
    assert (decision.action, decision.write_timestamp) == ("replay", T0 + 2)


def test_a_batch_older_in_any_part_is_refused():
    recorded = state(T0, {"order": 3, "order_item": 7}, T0, {"crm.S_ORDER": {0: 10, 1: 4}})
    for batch, reason in [
        (SourcePosition(T0 - 1, {"order": 3, "order_item": 7}), f"as_of_us {T0 - 1} < {T0}"),
        (SourcePosition(T0 + 9, {"order": 3, "order_item": 6}), "gold order_item version 6 < 7"),
        (
            SourcePosition(T0 + 9, {"order": 4, "order_item": 7}, {"crm.S_ORDER": {1: 3}}),
            "crm.S_ORDER[1] offset 3 < 4",
        ),
    ]:
        decision = decide(recorded, batch, SPEC_JSON, fingerprint_of)
        assert decision.action == "refuse" and decision.write_timestamp is None
        assert decision.reason == f"older than the committed state: {reason}"


def test_a_newer_state_with_the_same_as_of_time_gets_the_next_microsecond():
    decision = decide(
        state(T0, {"order": 3}, T0), SourcePosition(T0, {"order": 4}), SPEC_JSON, fingerprint_of
    )
    assert (decision.action, decision.write_timestamp) == ("write", T0 + 1)


def test_a_changed_spec_at_the_same_position_is_written_not_replayed():
    decision = decide(
        state(T0, {"order": 3}, T0), SourcePosition(T0, {"order": 3}), '{"spec": 2}', fingerprint_of
    )
    assert (decision.action, decision.write_timestamp) == ("write", T0 + 1)


def test_a_batch_older_than_an_unfinished_newer_batch_is_refused_and_a_retry_outranks_it():
    unfinished = WrittenState(SourcePosition(T0 + 100, {"order": 5}), T0 + 100, SPEC_JSON)
    recorded = state(T0, {"order": 3}, T0, attempts=[unfinished])
    older = decide(recorded, SourcePosition(T0 + 50, {"order": 4}), SPEC_JSON, fingerprint_of)
    assert older.action == "refuse" and older.reason.startswith("older than a batch begun and not committed")
    retry = decide(recorded, SourcePosition(T0 + 100, {"order": 5}), SPEC_JSON, fingerprint_of)
    assert (retry.action, retry.write_timestamp) == ("write", T0 + 101)
