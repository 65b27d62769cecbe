"""Cassandra projections against real Cassandra, Kafka and Spark+Delta (docs/DESIGN.md: "Cassandra: writes
are idempotent upserts whose write timestamps derive from the source sequence, so a replay or a late
batch can never regress a row. The projection records which source offsets it reflects").

Gold is made the way gold makes it: transforms.gold.engine.refresh_entity merges each entity by key
with a content hash, so the gold tables' change data feed holds exactly the changed rows. The test
keeps the truth (the gold rows, and each change's source commit time) in dicts; the expected
projection is computed from that truth in plain Python and compared with what Cassandra returns.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from cassandra.cluster import Cluster
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
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

from assets.projection_spec import load_projection_specs
from devtools.stack.stack import Stack, StackPorts
from resources.connections import CassandraResource
from transforms.delta_commits import current_version
from transforms.gold.engine import refresh_entity
from transforms.projections import (
    ProjectionNotSettledError,
    ProjectionSchemaError,
    ProjectionWriteError,
    already_projected,
    consumer_from_offsets,
    load_projection_with_offsets,
    project,
    read_state,
)
from transforms.specs.projection import ProjectionSpec

pytestmark = pytest.mark.integration

SPECS = {spec.projection: spec for spec in load_projection_specs()}
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SPARK_TYPES = {
    "text": StringType(),
    "date": DateType(),
    "boolean": BooleanType(),
    "timestamp": TimestampType(),
}

ORDER = StructType(
    [
        StructField("order_id", StringType()),
        StructField("order_number", StringType()),
        StructField("contact_id", StringType()),
        StructField("account_id", StringType()),
        StructField("ordered_at", TimestampType()),
        StructField("created_at", TimestampType()),
        StructField("status", StringType()),
        StructField("status_code", StringType()),
        StructField("category", StringType()),
        StructField("total_amount", DecimalType(38, 7)),
        StructField("currency_code", StringType()),
        StructField("item_count", LongType()),
    ]
)
ORDER_ITEM = StructType(
    [
        StructField("order_item_id", StringType()),
        StructField("order_id", StringType()),
        StructField("line_number", IntegerType()),
        StructField("product_id", StringType()),
        StructField("quantity", DecimalType(22, 7)),
        StructField("net_price", DecimalType(22, 7)),
        StructField("line_amount", DecimalType(38, 7)),
        StructField("status", StringType()),
    ]
)
# gold customer: the columns customer_by_id reads, typed as the gold SQL types them
CUSTOMER = StructType([StructField(n, SPARK_TYPES[t]) for n, t in SPECS["customer_by_id"].columns.items()])
ITEM_FIELDS = ("line_number", "order_item_id", "product_id", "quantity", "net_price", "line_amount", "status")
KEYS = {"order": "order_id", "order_item": "order_item_id", "customer": "customer_id"}


class Gold:
    """Gold Delta tables plus the truth they hold; every change carries its source commit time."""

    def __init__(self, spark, lake: Path, schemas: dict[str, StructType]):
        self.spark, self.schemas = spark, schemas
        self.paths = {entity: str(lake / "gold" / entity) for entity in schemas}
        self.rows: dict[str, dict[str, dict]] = {entity: {} for entity in schemas}
        self.commit_times: list[datetime] = []
        self.step = 0

    def upsert(self, entity: str, at: datetime, **row) -> None:
        self.rows[entity][row[KEYS[entity]]] = {**self.rows[entity].get(row[KEYS[entity]], {}), **row}
        self.commit_times.append(at)

    def delete(self, entity: str, key: str, at: datetime) -> None:
        del self.rows[entity][key]
        self.commit_times.append(at)

    def commit(self) -> tuple[dict[str, int], int]:
        """Write every entity as gold writes it; (gold versions, as_of_us = newest source commit time)."""
        self.step += 1
        for entity, schema in self.schemas.items():
            view = f"truth_{entity}_{uuid.uuid4().hex[:8]}"
            rows = [tuple(row.get(f.name) for f in schema.fields) for row in self.rows[entity].values()]
            self.spark.createDataFrame(rows, schema).createOrReplaceTempView(view)
            refresh_entity(
                self.spark,
                name=entity,
                keys=[KEYS[entity]],
                sql_text=f"SELECT * FROM {view}",
                gold_path=self.paths[entity],
                silver_versions={"test_step": self.step},
            )
            self.spark.catalog.dropTempView(view)
        versions = {entity: current_version(self.spark, path) for entity, path in self.paths.items()}
        return versions, micros(max(self.commit_times))


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def cassandra_time(moment: datetime | None) -> datetime | None:
    """What Cassandra gives back for a timestamp: naive UTC, millisecond precision."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=moment.microsecond // 1000 * 1000)


def table_rows(session, keyspace: str, spec: ProjectionSpec) -> dict[tuple, dict]:
    rows = session.execute(f"SELECT {', '.join(spec.columns)} FROM {keyspace}.{spec.table_name}")
    return {tuple(row._asdict()[k] for k in spec.primary_key): row._asdict() for row in rows}


def new_keyspace() -> str:
    return f"proj_{uuid.uuid4().hex[:12]}"


# -- the expected projections, from the truth ---------------------------------------------------------


def expected_orders_by_customer(orders: dict[str, dict], latest_n: int = 30) -> dict[tuple, dict]:
    by_customer = defaultdict(list)
    for order in orders.values():
        order_date = order["ordered_at"] or order["created_at"]
        if order["contact_id"] is not None and order_date is not None:
            by_customer[order["contact_id"]].append((cassandra_time(order_date), order))
    expected = {}
    for customer, dated in by_customer.items():
        dated.sort(key=lambda pair: pair[1]["order_id"])
        dated.sort(key=lambda pair: pair[0], reverse=True)
        for order_date, order in dated[:latest_n]:
            expected[(customer, order_date, order["order_id"])] = {
                "customer_id": customer,
                "order_date": order_date,
                "order_id": order["order_id"],
                "order_number": order["order_number"],
                "status": order["status"],
                "status_code": order["status_code"],
                "total": order["total_amount"],
                "currency_code": order["currency_code"],
                "item_count": order["item_count"],
            }
    return expected


def expected_customer_by_id(customers: dict[str, dict]) -> dict[tuple, dict]:
    spec = SPECS["customer_by_id"]
    return {
        (customer_id,): {
            name: cassandra_time(row.get(name)) if spec.columns[name] == "timestamp" else row.get(name)
            for name in spec.columns
        }
        for customer_id, row in customers.items()
    }


def expected_order_by_id(orders: dict[str, dict], items: dict[str, dict]) -> dict[tuple, dict]:
    lines = defaultdict(list)
    for item in items.values():
        lines[item["order_id"]].append(item)
    expected = {}
    for order_id, order in orders.items():
        ordered = sorted(lines[order_id], key=lambda item: (item["line_number"], item["order_item_id"]))
        expected[(order_id,)] = {
            "order_id": order_id,
            "order_number": order["order_number"],
            "customer_id": order["contact_id"],
            "account_id": order["account_id"],
            "order_date": cassandra_time(order["ordered_at"]),
            "status": order["status"],
            "category": order["category"],
            "total": order["total_amount"],
            "currency_code": order["currency_code"],
            "item_count": order["item_count"],
            "items": [{k: item[k] for k in ITEM_FIELDS if item[k] is not None} for item in ordered],
        }
    return expected


def order(
    order_id: str, contact_id: str | None, ordered_at: datetime | None, status: str = "Open", **extra
) -> dict:
    return {
        "order_id": order_id,
        "order_number": f"N-{order_id}",
        "contact_id": contact_id,
        "account_id": "A-1",
        "ordered_at": ordered_at,
        "created_at": extra.pop("created_at", T0),
        "status": status,
        "status_code": status[:3].upper(),
        "category": "Sales Order",
        "total_amount": extra.pop("total_amount", Decimal("10.5000000")),
        "currency_code": "EUR",
        "item_count": extra.pop("item_count", 1),
        **extra,
    }


# -- orders_by_customer: latest 30, moves, deletes -----------------------------------------------------


def test_orders_by_customer_equals_gold_keeps_the_latest_30_and_follows_moves_and_deletes(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = SPECS["orders_by_customer"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER})
    at = T0
    for n in range(40):
        gold.upsert(
            "order", at, **order(f"A{n:02d}", "C-A", T0 + timedelta(hours=n), total_amount=Decimal(n))
        )
    for n in range(3):
        gold.upsert("order", at, **order(f"B{n}", "C-B", T0 + timedelta(days=2, hours=n)))
    gold.upsert("order", at, **order("NOBODY", None, T0))  # no customer: not projected
    gold.upsert(
        "order", at, **order("UNDATED", "C-B", None, created_at=T0 - timedelta(days=9))
    )  # sorts by created_at
    gold.upsert(
        "order", at, **order("NODATE", "C-B", None, created_at=None)
    )  # null clustering key: set aside
    versions, as_of = gold.commit()

    first = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    expected = expected_orders_by_customer(gold.rows["order"])
    assert table_rows(cassandra_session, keyspace, spec) == expected
    assert len([key for key in expected if key[0] == "C-A"]) == 30
    assert (first.status, first.full_refresh, first.rows_written, first.rows_deleted) == (
        "written",
        True,
        34,
        0,
    )
    assert first.rows_rejected_null_key == 1 and first.write_timestamp == as_of
    assert first.latency_p50_ms is not None and first.latency_p99_ms >= first.latency_p50_ms

    before = expected
    at = T0 + timedelta(days=5)
    for n in (39, 38, 37):  # A's three newest go: three older ones move up into the latest 30
        gold.delete("order", f"A{n:02d}", at)
    gold.upsert(
        "order", at, **order("A35", "C-B", T0 + timedelta(hours=35), total_amount=Decimal(35))
    )  # moved
    gold.upsert(
        "order",
        at,
        **order("A30", "C-A", T0 + timedelta(hours=30), status="Shipped", total_amount=Decimal(30)),
    )
    gold.upsert("order", at, **order("B0", "C-A", T0 + timedelta(days=3)))  # moved, newest of A now
    gold.upsert("order", at, **order("NOBODY", "C-C", T0 + timedelta(days=4)))  # gets a customer
    versions, as_of = gold.commit()

    second = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    after = expected_orders_by_customer(gold.rows["order"])
    assert table_rows(cassandra_session, keyspace, spec) == after
    assert (
        "C-A",
        cassandra_time(T0 + timedelta(hours=35)),
        "A35",
    ) not in after  # no stale row of a moved order
    changed = [key for key, row in after.items() if before.get(key) != row]
    assert (second.full_refresh, second.partitions_affected) == (False, 3)
    assert (second.rows_written, second.rows_deleted) == (len(changed), len(before.keys() - after.keys()))
    assert second.rows_unchanged == len(after) - len(changed)  # every partition was affected
    assert second.rows_trimmed == 0 and second.write_timestamp == as_of

    at = T0 + timedelta(days=6)
    gold.upsert(
        "order", at, **order("A00", "C-A", T0, status="Closed", total_amount=Decimal(0))
    )  # beyond the 30
    versions, as_of = gold.commit()

    third = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    assert (
        table_rows(cassandra_session, keyspace, spec)
        == expected_orders_by_customer(gold.rows["order"])
        == after
    )
    assert (third.rows_written, third.rows_deleted, third.rows_unchanged) == (0, 0, 30)


# -- customer_by_id: updates, deletes, unchanged rows skipped -------------------------------------------


def customer(customer_id: str, last_name: str, **extra) -> dict:
    return {
        "customer_id": customer_id,
        "first_name": "Ann",
        "last_name": last_name,
        "account_id": "A-1",
        "account_name": "Acme",
        "city": "Lyon",
        "birth_date": date(1980, 5, 17),
        "is_employee": False,
        "created_at": T0,
        "last_updated_at": T0,
        **extra,
    }


def test_customer_by_id_follows_gold_a_deleted_customer_disappears(spark, cassandra_session, tmp_lake):
    spec, keyspace = SPECS["customer_by_id"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"customer": CUSTOMER})
    for n in range(3):
        gold.upsert("customer", T0, **customer(f"C{n}", f"Name{n}"))
    versions, as_of = gold.commit()
    project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    assert table_rows(cassandra_session, keyspace, spec) == expected_customer_by_id(gold.rows["customer"])

    at = T0 + timedelta(minutes=5)
    gold.delete("customer", "C0", at)
    gold.upsert(
        "customer", at, **customer("C1", "Renamed", city=None, last_updated_at=at)
    )  # null clears the city
    versions, as_of = gold.commit()
    stats = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    assert table_rows(cassandra_session, keyspace, spec) == expected_customer_by_id(gold.rows["customer"])
    assert set(table_rows(cassandra_session, keyspace, spec)) == {("C1",), ("C2",)}
    assert (stats.rows_written, stats.rows_deleted, stats.rows_unchanged, stats.partitions_affected) == (
        1,
        1,
        0,
        2,
    )


# -- order_by_id: an order with its items as one JSON text column ----------------------------------------


def test_a_full_refresh_repairs_lost_changed_and_foreign_rows_at_the_committed_position(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = SPECS["customer_by_id"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"customer": CUSTOMER})
    for n in range(4):
        gold.upsert("customer", T0, **customer(f"C{n}", f"Name{n}"))
    versions, as_of = gold.commit()
    first = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    table = f"{keyspace}.{spec.table_name}"
    stamp = first.write_timestamp
    # what a lost write, a stray writer and an old leftover look like, all at the projection's own timestamp
    cassandra_session.execute(f"DELETE FROM {table} USING TIMESTAMP {stamp} WHERE customer_id = 'C0'")
    cassandra_session.execute(
        f"UPDATE {table} USING TIMESTAMP {stamp} SET last_name = 'Tampered' WHERE customer_id = 'C1'"
    )
    cassandra_session.execute(
        f"INSERT INTO {table} (customer_id, last_name) VALUES ('STRAY', 'x') USING TIMESTAMP {stamp}"
    )
    assert table_rows(cassandra_session, keyspace, spec) != expected_customer_by_id(gold.rows["customer"])

    replay = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    assert replay.status == "replay"  # an incremental run cannot see the damage: nothing changed in gold

    repaired = project(
        spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace, full_refresh=True
    )

    assert table_rows(cassandra_session, keyspace, spec) == expected_customer_by_id(gold.rows["customer"])
    assert (repaired.status, repaired.full_refresh, repaired.write_timestamp) == ("written", True, stamp + 1)
    assert (repaired.rows_written, repaired.partitions_cleared) == (
        4,
        5,
    )  # C0..C3 written, C0..C3 + STRAY cleared
    assert (
        project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace).status
        == "replay"
    )

    gold.delete("customer", "C3", T0 + timedelta(minutes=1))
    versions, as_of = gold.commit()
    after = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    assert after.write_timestamp > repaired.write_timestamp  # the regular batches continue above it
    assert set(table_rows(cassandra_session, keyspace, spec)) == {("C0",), ("C1",), ("C2",)}


def item(item_id: str, order_id: str, line: int, price: str, quantity: str = "2") -> dict:
    return {
        "order_item_id": item_id,
        "order_id": order_id,
        "line_number": line,
        "product_id": f"P-{line}",
        "quantity": Decimal(quantity),
        "net_price": Decimal(price),
        "line_amount": Decimal(price) * Decimal(quantity),
        "status": "Open",
    }


def order_by_id_rows(session, keyspace: str) -> dict[tuple, dict]:
    rows = table_rows(session, keyspace, SPECS["order_by_id"])
    for row in rows.values():
        row["items"] = json.loads(row.pop("items_json"), parse_float=Decimal)
    return rows


def test_order_by_id_carries_its_items_and_follows_item_changes_and_moves(spark, cassandra_session, tmp_lake):
    spec, keyspace = SPECS["order_by_id"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER, "order_item": ORDER_ITEM})
    for order_id in ("O1", "O2", "O3"):
        gold.upsert("order", T0, **order(order_id, "C-A", T0))
    gold.upsert("order_item", T0, **item("I1", "O1", 1, "9.50"))
    gold.upsert("order_item", T0, **item("I2", "O1", 2, "1.25"))
    gold.upsert("order_item", T0, **item("I3", "O2", 1, "100"))
    versions, as_of = gold.commit()
    project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    assert order_by_id_rows(cassandra_session, keyspace) == expected_order_by_id(
        gold.rows["order"], gold.rows["order_item"]
    )
    assert order_by_id_rows(cassandra_session, keyspace)[("O3",)]["items"] == []

    at = T0 + timedelta(minutes=1)
    gold.upsert("order_item", at, **item("I2", "O3", 1, "1.25"))  # moved from O1 to O3
    gold.upsert("order_item", at, **item("I3", "O2", 1, "99.99", quantity="3"))  # changed
    gold.upsert("order_item", at, **item("I4", "O2", 2, "5"))  # added
    versions, as_of = gold.commit()
    stats = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    assert order_by_id_rows(cassandra_session, keyspace) == expected_order_by_id(
        gold.rows["order"], gold.rows["order_item"]
    )
    assert (stats.partitions_affected, stats.rows_written, stats.rows_deleted) == (3, 3, 0)


# -- a joined entity without the partition key: affected_partitions as a query -------------------------

ORDER_WITH_CUSTOMER = ProjectionSpec.model_validate(
    yaml.safe_load("""
projection: order_with_customer
sql: |
  SELECT o.order_id, o.status, c.last_name AS customer_last_name
  FROM `order` AS o JOIN customer AS c ON c.customer_id = o.contact_id
affected_partitions:
  order: [order_id]
  customer: SELECT o.order_id FROM changed AS c JOIN `order` AS o ON o.contact_id = c.customer_id
partition_key: [order_id]
columns: {order_id: text, status: text, customer_last_name: text}
""")
)


def expected_order_with_customer(orders: dict[str, dict], customers: dict[str, dict]) -> dict[tuple, dict]:
    return {
        (order_id,): {
            "order_id": order_id,
            "status": row["status"],
            "customer_last_name": customers[row["contact_id"]]["last_name"],
        }
        for order_id, row in orders.items()
        if row["contact_id"] in customers
    }


def test_a_changed_joined_row_reaches_the_partitions_a_query_mapping_finds(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = ORDER_WITH_CUSTOMER, new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER, "customer": CUSTOMER})
    for name in ("P", "Q"):
        gold.upsert("customer", T0, **customer(f"C-{name}", f"Name{name}"))
        for n in range(3):
            gold.upsert("order", T0, **order(f"{name}{n}", f"C-{name}", T0))
    versions, as_of = gold.commit()
    project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    at = T0 + timedelta(minutes=1)
    gold.upsert("customer", at, **customer("C-P", "Renamed"))  # reaches P0, P1, P2 through the query
    gold.upsert("order", at, **order("Q0", "C-P", T0))  # moves to the renamed customer
    versions, as_of = gold.commit()
    stats = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    expected = expected_order_with_customer(gold.rows["order"], gold.rows["customer"])
    assert table_rows(cassandra_session, keyspace, spec) == expected
    assert {row["customer_last_name"] for key, row in expected.items() if key[0] in ("P0", "Q0")} == {
        "Renamed"
    }
    assert (stats.partitions_affected, stats.rows_written, stats.rows_deleted, stats.rows_unchanged) == (
        4,
        4,
        0,
        0,
    )


# -- never regress: replays, older batches, ties -------------------------------------------------------


def test_replays_and_older_batches_leave_the_projection_unchanged_and_ties_go_to_the_newer_state(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = SPECS["orders_by_customer"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER})
    for n in range(5):
        gold.upsert("order", T0, **order(f"X{n}", "C-X", T0 + timedelta(hours=n)))
    old_versions, old_as_of = gold.commit()
    project(spark, cassandra_session, spec, gold.paths, as_of_us=old_as_of, keyspace=keyspace)
    at = T0 + timedelta(hours=1)
    gold.upsert("order", at, **order("X1", "C-X", T0 + timedelta(hours=1), status="Cancelled"))
    gold.delete("order", "X2", at)
    versions, as_of = gold.commit()
    newer = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    expected = expected_orders_by_customer(gold.rows["order"])

    replays = [
        project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
        for _ in range(2)
    ]
    late = project(
        spark,
        cassandra_session,
        spec,
        gold.paths,
        as_of_us=old_as_of,
        gold_versions=old_versions,
        keyspace=keyspace,
    )

    with pytest.raises(ValueError, match="is not a source commit time in microseconds since the epoch"):
        project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of // 1000, keyspace=keyspace)  # ms
    assert [r.status for r in replays] == ["replay", "replay"]
    assert all(
        r.rows_written == r.rows_deleted == 0 and r.write_timestamp == newer.write_timestamp for r in replays
    )
    assert late.status == "refused" and late.reason.startswith("older than the committed state: as_of_us")
    assert table_rows(cassandra_session, keyspace, spec) == expected
    stamps = cassandra_session.execute(f"SELECT WRITETIME(status) AS t FROM {keyspace}.{spec.table_name}")
    assert {row.t for row in stamps} == {
        old_as_of,
        as_of,
    }  # the untouched rows keep the first batch's timestamp

    # A newer gold state with the same source commit time (e.g. a cleanup fix): T = last T + 1, it wins.
    gold.upsert("order", at, **order("X1", "C-X", T0 + timedelta(hours=1), status="Closed"))
    _, same_as_of = gold.commit()
    tie = project(spark, cassandra_session, spec, gold.paths, as_of_us=same_as_of, keyspace=keyspace)

    assert same_as_of == as_of and (tie.status, tie.write_timestamp) == ("written", as_of + 1)
    assert table_rows(cassandra_session, keyspace, spec) == expected_orders_by_customer(gold.rows["order"])
    assert read_state(cassandra_session, keyspace, spec.projection).committed.write_timestamp == as_of + 1


# -- DDL: a new column is added, an incompatible change is refused ---------------------------------------


def test_an_unchanged_gold_is_answered_from_the_offsets_table_without_a_spark_job(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = SPECS["orders_by_customer"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER})
    assert already_projected(spark, cassandra_session, spec, gold.paths, keyspace) is None  # no keyspace yet
    gold.upsert("order", T0, **order("X1", "C-X", T0))
    versions, as_of = gold.commit()
    written = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

    context = spark.sparkContext
    context.setJobGroup("already_projected", "must run no Spark job")
    try:
        same = already_projected(spark, cassandra_session, spec, gold.paths, keyspace)
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert context.statusTracker().getJobIdsForGroup("already_projected") == []
    assert (same.status, same.write_timestamp, same.as_of_us, same.gold_versions) == (
        "replay",
        written.write_timestamp,
        as_of,
        versions,
    )
    assert (same.rows_written, same.rows_deleted) == (0, 0)

    assert (
        already_projected(spark, cassandra_session, variant(spec, latest_n=5), gold.paths, keyspace) is None
    )
    gold.upsert("order", T0 + timedelta(hours=1), **order("X2", "C-X", T0))
    gold.commit()
    assert already_projected(spark, cassandra_session, spec, gold.paths, keyspace) is None  # gold moved on


def variant(spec: ProjectionSpec, **changes) -> ProjectionSpec:
    return ProjectionSpec.model_validate({**spec.model_dump(), **changes})


def test_a_new_column_is_added_and_filled_a_ttl_applied_and_an_incompatible_change_is_refused(
    spark, cassandra_session, tmp_lake
):
    spec, keyspace = SPECS["orders_by_customer"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"order": ORDER})
    for n in range(3):
        gold.upsert("order", T0, **order(f"D{n}", "C-D", T0 + timedelta(hours=n)))
    versions, as_of = gold.commit()
    first = project(spark, cassandra_session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    assert first.schema_changes[0].startswith(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication")

    wider = variant(
        spec,
        sql=spec.sql.replace("item_count\n", "item_count,\n       category\n"),
        columns={**spec.columns, "category": "text"},
        ttl_seconds=86_400,
    )
    stats = project(spark, cassandra_session, wider, gold.paths, as_of_us=as_of, keyspace=keyspace)
    ttls = {
        row.t
        for row in cassandra_session.execute(f"SELECT TTL(category) AS t FROM {keyspace}.orders_by_customer")
    }

    assert stats.schema_changes == [f"ALTER TABLE {keyspace}.orders_by_customer ADD category text"]
    assert (stats.status, stats.full_refresh, stats.rows_written) == (
        "written",
        True,
        3,
    )  # same position, new spec
    assert {row["category"] for row in table_rows(cassandra_session, keyspace, wider).values()} == {
        "Sales Order"
    }
    assert all(0 < ttl <= 86_400 for ttl in ttls)  # the spec's ttl_seconds reached every rewritten row

    incompatible = {
        "clustering is (order_date DESC, order_id ASC) in the table, (order_date ASC, order_id ASC) in the spec": variant(
            wider, clustering=[{"order_date": "asc"}, "order_id"]
        ),
        "column total is decimal in the table, double in the spec": variant(
            wider, columns={**wider.columns, "total": "double"}
        ),
        "column category (text) is in the table but not in the spec": spec,
    }
    for difference, changed in incompatible.items():
        with pytest.raises(ProjectionSchemaError) as caught:
            project(spark, cassandra_session, changed, gold.paths, as_of_us=as_of, keyspace=keyspace)
        assert str(caught.value).startswith(
            f"projection orders_by_customer: table {keyspace}.orders_by_customer does not match the spec:\n  - "
        )
        assert f"  - {difference}\n" in str(caught.value)
    assert {row["category"] for row in table_rows(cassandra_session, keyspace, wider).values()} == {
        "Sales Order"
    }


# -- Cassandra stops during a write -------------------------------------------------------------------


@pytest.fixture
def private_cassandra(tmp_path):
    """A Cassandra of its own, so stopping it does not disturb the session's stack."""
    stack = Stack(tmp_path / "stack", StackPorts.free(), servers=("cassandra",), die_with_parent=True)
    stack.up()
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(tmp_path / "stack", ignore_errors=True)


def connect(stack: Stack) -> Cluster:
    resource = CassandraResource(contact_points=[stack.cassandra_host], port=stack.cassandra_port)
    return Cluster(**resource.cluster_kwargs())


def test_cassandra_stopped_during_a_write_fails_clearly_and_the_next_run_completes_exactly(
    spark, private_cassandra, tmp_lake
):
    spec, keyspace = SPECS["customer_by_id"], new_keyspace()
    gold = Gold(spark, tmp_lake, {"customer": CUSTOMER})
    for n in range(600):
        gold.upsert("customer", T0, **customer(f"S{n:04d}", f"Name{n}"))
    versions, as_of = gold.commit()
    cluster = connect(private_cassandra)
    session = cluster.connect()
    project(spark, session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)
    at = T0 + timedelta(hours=1)
    for n in range(0, 600, 5):
        gold.delete("customer", f"S{n:04d}", at)
    for n in range(1, 600, 5):
        gold.upsert("customer", at, **customer(f"S{n:04d}", "Changed", last_updated_at=at))
    for n in range(600, 900):
        gold.upsert("customer", at, **customer(f"S{n:04d}", f"New{n}"))
    versions, as_of = gold.commit()

    def stop_cassandra(what: str, done: int) -> None:
        if what == "upserts" and done == 100:
            private_cassandra.down()

    with pytest.raises(ProjectionWriteError) as caught:
        project(
            spark,
            session,
            spec,
            gold.paths,
            as_of_us=as_of,
            keyspace=keyspace,
            chunk_rows=100,
            progress=stop_cassandra,
        )
    cluster.shutdown()
    assert re.match(
        r"projection customer_by_id: Cassandra failed during (upserts|deletes), after 100 upsert\(s\), "
        r"\d+ delete\(s\) and 0 trim\(s\) had succeeded: ",
        str(caught.value),
    )
    assert "Nothing was committed to the offsets table; rerun the projection" in str(caught.value)

    private_cassandra.up()
    cluster = connect(private_cassandra)
    session = cluster.connect()
    try:
        state = read_state(session, keyspace, spec.projection)
        assert len(state.attempts) == 1 and state.committed.position.as_of_us == micros(T0)
        with pytest.raises(ProjectionNotSettledError):
            load_projection_with_offsets(session, spec, keyspace=keyspace, tries=1)

        rerun = project(spark, session, spec, gold.paths, as_of_us=as_of, keyspace=keyspace)

        assert table_rows(session, keyspace, spec) == expected_customer_by_id(gold.rows["customer"])
        assert (rerun.status, rerun.rows_written, rerun.rows_deleted, rerun.rows_unchanged) == (
            "written",
            420,
            120,
            0,
        )
        assert rerun.write_timestamp == as_of + 1  # above the failed attempt's timestamp
        assert read_state(session, keyspace, spec.projection).attempts == ()
    finally:
        cluster.shutdown()


# -- the seed recipe: load the projection, consume Kafka from the offsets it reflects ----------------------


def test_a_consumer_started_at_the_recorded_offsets_gets_exactly_the_messages_after_the_projection(
    spark, cassandra_session, kafka_bootstrap, tmp_lake
):
    spec, keyspace = SPECS["customer_by_id"], new_keyspace()
    topic = f"projection-seed-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=60)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    delivered: list = []

    def produce(n: int, at: datetime) -> dict:
        message = {"customer_id": f"K{n}", "last_name": f"Name{n}", "committed_at": at.isoformat()}
        producer.produce(
            topic,
            json.dumps(message).encode(),
            key=message["customer_id"].encode(),
            partition=n % 2,
            on_delivery=lambda error, msg: delivered.append((error, msg)),
        )
        return message

    first = [produce(n, T0 + timedelta(seconds=n)) for n in range(6)]
    assert producer.flush(30) == 0
    next_offsets: dict[int, int] = {}
    for error, msg in delivered:
        assert error is None
        next_offsets[msg.partition()] = max(next_offsets.get(msg.partition(), 0), msg.offset() + 1)
    gold = Gold(spark, tmp_lake, {"customer": CUSTOMER})
    for message in first:  # what a pipeline would have made of these messages
        gold.upsert(
            "customer",
            datetime.fromisoformat(message["committed_at"]),
            **customer(message["customer_id"], message["last_name"]),
        )
    versions, as_of = gold.commit()
    project(
        spark,
        cassandra_session,
        spec,
        gold.paths,
        as_of_us=as_of,
        keyspace=keyspace,
        kafka_offsets={topic: next_offsets},
    )
    later = [produce(n, T0 + timedelta(minutes=1, seconds=n)) for n in range(6, 11)]
    assert producer.flush(30) == 0

    snapshot = load_projection_with_offsets(cassandra_session, spec, keyspace=keyspace)
    consumer = consumer_from_offsets({"bootstrap.servers": kafka_bootstrap}, snapshot.kafka_offsets)
    consumed = []
    try:
        for _ in range(60):  # a bound, not a timing assertion: 60 polls of up to 1 s
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None
                consumed.append(json.loads(message.value()))
            elif len(consumed) >= len(later):
                break
    finally:
        consumer.close()

    assert snapshot.kafka_offsets == {topic: next_offsets} and snapshot.gold_versions == versions
    assert snapshot.as_of_us == as_of
    assert {(row["customer_id"],): row for row in snapshot.rows} == expected_customer_by_id(
        gold.rows["customer"]
    )
    assert sorted(consumed, key=lambda m: m["customer_id"]) == sorted(later, key=lambda m: m["customer_id"])
