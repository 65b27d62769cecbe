"""The local Cassandra server: prepared statements, and write timestamps deciding which write wins
(the rule the projections rely on: a replayed or late, older write never regresses a row)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keyspace(cassandra_session):
    name = f"test_{uuid.uuid4().hex[:10]}"
    cassandra_session.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    cassandra_session.execute(f"CREATE TABLE {name}.customer (id text PRIMARY KEY, name text, city text)")
    yield name
    cassandra_session.execute(f"DROP KEYSPACE {name}")


def _row(session, keyspace, customer_id):
    return session.execute(
        f"SELECT id, name, city FROM {keyspace}.customer WHERE id = %s", (customer_id,)
    ).one()


def test_prepared_statements_write_and_read_back_rows(cassandra_session, keyspace):
    insert = cassandra_session.prepare(f"INSERT INTO {keyspace}.customer (id, name, city) VALUES (?, ?, ?)")
    select = cassandra_session.prepare(f"SELECT name, city FROM {keyspace}.customer WHERE id = ?")
    rows = [(f"c{n}", f"name {n}", None if n % 2 else f"city {n}") for n in range(20)]
    for row in rows:
        cassandra_session.execute(insert, row)

    read_back = [(row[0], *cassandra_session.execute(select, (row[0],)).one()) for row in rows]

    assert read_back == rows


def test_older_write_timestamp_does_not_overwrite_newer_value(cassandra_session, keyspace):
    upsert = cassandra_session.prepare(
        f"INSERT INTO {keyspace}.customer (id, name) VALUES (?, ?) USING TIMESTAMP ?"
    )
    cassandra_session.execute(upsert, ("late", "newer", 2_000))
    cassandra_session.execute(upsert, ("late", "older", 1_000))

    assert _row(cassandra_session, keyspace, "late").name == "newer"


def test_older_write_timestamp_does_not_undo_newer_delete(cassandra_session, keyspace):
    upsert = cassandra_session.prepare(
        f"INSERT INTO {keyspace}.customer (id, name) VALUES (?, ?) USING TIMESTAMP ?"
    )
    delete = cassandra_session.prepare(f"DELETE FROM {keyspace}.customer USING TIMESTAMP ? WHERE id = ?")
    cassandra_session.execute(upsert, ("gone", "first", 1_000))
    cassandra_session.execute(delete, (3_000, "gone"))
    cassandra_session.execute(upsert, ("gone", "late and older", 2_000))

    assert _row(cassandra_session, keyspace, "gone") is None

    cassandra_session.execute(upsert, ("gone", "newer than the delete", 4_000))
    assert _row(cassandra_session, keyspace, "gone").name == "newer than the delete"


def test_write_timestamps_decide_each_column_on_its_own(cassandra_session, keyspace):
    update = f"UPDATE {keyspace}.customer USING TIMESTAMP %s SET {{column}} = %s WHERE id = %s"
    cassandra_session.execute(update.format(column="name"), (2_000, "name at 2000", "cells"))
    cassandra_session.execute(update.format(column="city"), (1_000, "city at 1000", "cells"))
    cassandra_session.execute(update.format(column="name"), (1_500, "name at 1500", "cells"))

    row = _row(cassandra_session, keyspace, "cells")

    assert (row.name, row.city) == ("name at 2000", "city at 1000")
