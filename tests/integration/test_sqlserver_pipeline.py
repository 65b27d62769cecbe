"""A Debezium SQL Server table through Kafka and Dagster with no `sequence_by` (issue 22): the connector's
default position (commit_lsn, change_lsn, event_serial_no) orders its changes, so silver equals the
source's final rows though the changes arrive out of order across two runs.

Events in the shape of Debezium's SQL Server documentation (JsonConverter, schemas disabled): snapshot
rows, inserts, updates, deletes with their tombstones, a transaction of two changes, and a primary-key
update (a delete and a create at the same LSNs, told apart by event_serial_no). Row 1004 changes at
commit LSN `0000002b:0000041f:ffff` and then at `0000002b:00000420:0005`, across a log-block boundary.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets.factory import build_assets
from devtools.workload.capture import WorkloadMessage
from devtools.workload.producer import produce_messages
from tests.pipeline import resources, unique_prefix
from transforms.merge import read_live_rows
from transforms.sequence import decode_sequence
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration

SNAPSHOT_LSN = "0000002a:00000f10:0003"


def _event(
    topic: str, op: str, lsns: tuple[str | None, str, int | None], row: dict, before: dict | None = None
) -> WorkloadMessage:
    change_lsn, commit_lsn, serial = lsns
    source = {"version": "2.7.3.Final", "connector": "sqlserver", "name": "server1", "ts_ms": 1559729468470,
              "snapshot": "true" if op == "r" else "false", "db": "testDB", "sequence": None, "schema": "dbo",
              "table": "customers", "change_lsn": change_lsn, "commit_lsn": commit_lsn, "event_serial_no": serial}  # fmt: skip
    value = {"before": row if op == "d" else before, "after": None if op == "d" else row, "source": source,
             "op": op, "ts_ms": 1559729471739, "transaction": None}  # fmt: skip
    return WorkloadMessage(topic, json.dumps({"id": row["id"]}).encode(), json.dumps(value).encode())


def _tombstone(topic: str, id_: int) -> WorkloadMessage:
    return WorkloadMessage(topic, json.dumps({"id": id_}).encode(), None)


def _customer(id_: int, first: str, last: str, email: str) -> dict:
    return {"id": id_, "first_name": first, "last_name": last, "email": email}


def _history(topic: str) -> list[list[WorkloadMessage]]:
    """The source's changes in commit order, one list per transaction (snapshot rows first)."""
    sally, george = _customer(1001, "Sally", "Thomas", "sally.thomas@acme.com"), _customer(1002, "George", "Bailey", "gbailey@foobar.com")  # fmt: skip
    edward, anne = _customer(1003, "Edward", "Walker", "ed@walker.com"), _customer(1004, "Anne", "Kretchmar", "annek@noanswer.org")  # fmt: skip
    jon = _customer(1006, "Jon", "Doe", "jon@example.com")
    return [
        [_event(topic, "r", (None, SNAPSHOT_LSN, None), row) for row in (sally, george, edward, jon)],
        [_event(topic, "c", ("0000002b:00000040:0002", "0000002b:00000040:0005", 1), anne)],
        [_event(topic, "u", ("0000002b:00000100:0002", "0000002b:00000100:0004", 1),
                {**sally, "email": "sally@example.com"}, before=sally)],
        [  # one transaction: an update and a delete (with its tombstone), one commit_lsn
            _event(topic, "u", ("0000002b:0000041f:0002", "0000002b:0000041f:ffff", 1),
                   {**anne, "last_name": "K."}, before=anne),
            _event(topic, "d", ("0000002b:0000041f:0009", "0000002b:0000041f:ffff", 1), george),
            _tombstone(topic, 1002),
        ],
        [  # a primary-key update 1003 -> 1005: a delete and a create at the same LSNs
            _event(topic, "d", ("0000002b:00000420:0000", "0000002b:00000420:0001", 1), edward),
            _tombstone(topic, 1003),
            _event(topic, "c", ("0000002b:00000420:0000", "0000002b:00000420:0001", 2), {**edward, "id": 1005}),
        ],
        [  # one transaction right after the block boundary: 0000002b:0000041f:ffff < 0000002b:00000420:0005
            _event(topic, "u", ("0000002b:00000420:0002", "0000002b:00000420:0005", 1),
                   {**sally, "email": "sally@example.com", "first_name": "Sal"}, before={**sally, "email": "sally@example.com"}),
            _event(topic, "u", ("0000002b:00000420:0004", "0000002b:00000420:0005", 1),
                   {**anne, "last_name": "K.", "first_name": "Annie"}, before={**anne, "last_name": "K."}),
        ],
    ]  # fmt: skip


AFTER_THE_NEWEST_CHANGES = {
    "1001": ("Sal", "Thomas", "sally@example.com"),
    "1004": ("Annie", "K.", "annek@noanswer.org"),
    "1005": ("Edward", "Walker", "ed@walker.com"),
}
SOURCE_FINAL_ROWS = {**AFTER_THE_NEWEST_CHANGES, "1006": ("Jon", "Doe", "jon@example.com")}


def _live(spark, path: str) -> dict[str, tuple]:
    rows = read_live_rows(spark, path).collect()
    assert all(not row["_incomplete"] for row in rows)
    return {row["id"]: (row["first_name"], row["last_name"], row["email"]) for row in rows}


def test_a_sqlserver_table_without_sequence_by_converges_to_the_source_from_out_of_order_runs(
    spark, kafka_bootstrap, tmp_lake
):
    prefix = unique_prefix()
    topic = f"{prefix}.server1.testDB.dbo.customers"
    spec = TableSpec(table="dbo.customers", name="customers", topic=topic, format="debezium_json", keys=["id"],
                     source=prefix)  # fmt: skip
    assert spec.sequence_by is None
    graph = build_assets([spec], [])
    res = resources(kafka_bootstrap, tmp_lake)
    silver_path = str(tmp_lake / "silver" / spec.asset_name)
    snapshot, insert, update, transaction, key_change, last_update = _history(topic)

    # Run 1: the newest changes, newest first; the snapshot and the first insert and update are late.
    produce_messages(kafka_bootstrap, [*last_update, *key_change, *transaction], partitions=2)
    assert dg.materialize(graph, resources=res).success
    assert _live(spark, silver_path) == AFTER_THE_NEWEST_CHANGES

    # Run 2: the older changes arrive, newest first again. Older than what silver holds, they change
    # nothing of it (George and Edward stay deleted, Sally keeps her newest values); Jon's snapshot row
    # is new.
    produce_messages(kafka_bootstrap, [*update, *insert, *snapshot], partitions=2)
    assert dg.materialize(graph, resources=res).success

    assert _live(spark, silver_path) == SOURCE_FINAL_ROWS
    sequences = {
        row["id"]: decode_sequence(row["_sequence"]) for row in read_live_rows(spark, silver_path).collect()
    }
    assert sequences["1001"][:3] == ((0x2B << 48) | (0x420 << 16) | 5, (0x2B << 48) | (0x420 << 16) | 2, 1)
    assert sequences["1005"][:3] == ((0x2B << 48) | (0x420 << 16) | 1, (0x2B << 48) | (0x420 << 16) | 0, 2)
