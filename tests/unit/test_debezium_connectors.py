"""Every common Debezium connector sequences its changes in source order (issue 22).

Per connector (transforms/decoders/debezium_positions.py): events in the shape of the connector's
documentation (snapshot rows, insert, update, delete, a transaction of two changes) decode to
positions in source order, and the first component (the cut's commit position) is shared by a
transaction where the connector has such a field; ordering cases where comparing the raw text would
give the wrong order; bad positions and fields the connector does not have are clear errors; and
hypothesis properties: any connector's changes, in any shape its positions take, decode in source
order, and the cell model (tests/reference_model.py) fed them in any delivery ends as the source table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference_model import CellModel, deliveries, fold_in_source_order, source_histories
from transforms.changes import ChangeRecord, DecodeError, KafkaMessage, Op
from transforms.cut import commit_position
from transforms.decoders import decode


def dbz(op: str, source: dict, *, before: dict | None = None, after: dict | None = None) -> dict:
    return {"before": before, "after": after, "source": source, "op": op, "ts_ms": source["ts_ms"] + 612,
            "transaction": None}  # fmt: skip


def decode_events(
    events: list[dict], keys: list[str], sequence_by: list[str] | None = None
) -> list[ChangeRecord]:
    """One record per event; event i is Kafka offset i of partition 0."""
    records = []
    for offset, event in enumerate(events):
        message = KafkaMessage(
            "server1.customers", 0, offset, None, json.dumps(event).encode(), 1559729470000
        )
        records += decode(message, format="debezium_json", keys=keys, sequence_by=sequence_by)
    assert len(records) == len(events)
    return records


def in_strict_source_order(records: list[ChangeRecord]) -> bool:
    sequences = [r.sequence for r in records]
    return sequences == sorted(sequences) and len(set(r.position for r in records)) == len(records)


def customer(id_: int, first: str, last: str, email: str, upper: bool = False) -> dict:
    names = (
        ("ID", "FIRST_NAME", "LAST_NAME", "EMAIL") if upper else ("id", "first_name", "last_name", "email")
    )
    return dict(zip(names, (id_, first, last, email), strict=True))


def sqlserver_lsn(g1: int, g2: int, g3: int) -> int:
    """A SQL Server LSN as the position holds it: its three groups, most significant first."""
    return (g1 << 48) | (g2 << 16) | g3


# --- Source blocks, as each connector's documentation shows them -----------------------------------


def oracle_source(scn: str, commit_scn: str | None, ssn: int = 0, *, snapshot: str = "false",
                  txid: str | None = "6.28.807", ts_ms: int = 1520085154000) -> dict:  # fmt: skip
    return {"version": "2.7.3.Final", "connector": "oracle", "name": "server1", "ts_ms": ts_ms, "snapshot": snapshot,
            "db": "ORCLPDB1", "sequence": None, "schema": "DEBEZIUM", "table": "CUSTOMERS", "txId": txid, "scn": scn,
            "commit_scn": commit_scn, "lcr_position": None, "rs_id": "001234.00012345.0124", "ssn": ssn,
            "redo_thread": 1, "user_name": "user"}  # fmt: skip


def postgres_source(lsn: int, tx_id: int, *, snapshot: str = "false", ts_ms: int = 1559033904863) -> dict:
    return {"version": "2.7.3.Final", "connector": "postgresql", "name": "PostgreSQL_server", "ts_ms": ts_ms,
            "snapshot": snapshot, "db": "postgres", "sequence": f'["{lsn - 8}","{lsn}"]', "schema": "public",
            "table": "customers", "txId": tx_id, "lsn": lsn, "xmin": None}  # fmt: skip


def binlog_source(connector: str, file: str, pos: int, row: int, *, snapshot: str = "false",
                  ts_ms: int = 1465491411815) -> dict:  # fmt: skip
    return {"version": "2.7.3.Final", "connector": connector, "name": f"{connector}-server-1", "ts_ms": ts_ms,
            "snapshot": snapshot, "db": "inventory", "table": "customers", "server_id": 223344, "gtid": None,
            "file": file, "pos": pos, "row": row, "thread": 7, "query": None}  # fmt: skip


def sqlserver_source(change_lsn: str | None, commit_lsn: str, serial: int | None, *, snapshot: str = "false",
                     ts_ms: int = 1559729468470) -> dict:  # fmt: skip
    return {"version": "2.7.3.Final", "connector": "sqlserver", "name": "server1", "ts_ms": ts_ms,
            "snapshot": snapshot, "db": "testDB", "sequence": None, "schema": "dbo", "table": "customers",
            "change_lsn": change_lsn, "commit_lsn": commit_lsn, "event_serial_no": serial}  # fmt: skip


def db2_source(
    change_lsn: str | None, commit_lsn: str, *, snapshot: str = "false", ts_ms: int = 1559729995937
) -> dict:
    return {"version": "2.7.3.Final", "connector": "db2", "name": "myconnector", "ts_ms": ts_ms, "snapshot": snapshot,
            "db": "mydatabase", "schema": "MYSCHEMA", "table": "CUSTOMERS", "change_lsn": change_lsn,
            "commit_lsn": commit_lsn}  # fmt: skip


# --- One decoder test per connector -----------------------------------------------------------------


def test_oracle_snapshot_rows_changes_and_a_transaction_sharing_commit_scn():
    anne = customer(1004, "Anne", "Kretchmar", "annek@noanswer.org", upper=True)
    events = [
        dbz("r", oracle_source("2122180", None, snapshot="first", txid=None), after=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com", upper=True)),
        dbz("r", oracle_source("2122180", None, snapshot="last", txid=None), after=customer(1002, "George", "Bailey", "gbailey@foobar.com", upper=True)),
        dbz("c", oracle_source("2122184", "2122185", txid="6.28.807"), after=anne),
        dbz("u", oracle_source("2122186", "2122188", txid="6.9.809"), before=anne, after={**anne, "EMAIL": "anne@example.com"}),
        dbz("d", oracle_source("2122190", "2122191", txid="6.4.811"), before=customer(1002, "George", "Bailey", "gbailey@foobar.com", upper=True)),
        # one transaction: its two changes share commit_scn 2122195
        dbz("u", oracle_source("2122192", "2122195", 0, txid="4.23.812"), before=anne, after={**anne, "LAST_NAME": "K."}),
        dbz("c", oracle_source("2122192", "2122195", 1, txid="4.23.812"), after=customer(1005, "Jon", "Doe", "jon@example.com", upper=True)),
    ]  # fmt: skip
    records = decode_events(events, ["ID"])
    assert [(r.op, r.key["ID"]) for r in records] == [
        (Op.INSERT, "1001"), (Op.INSERT, "1002"), (Op.INSERT, "1004"), (Op.UPDATE, "1004"), (Op.DELETE, "1002"),
        (Op.UPDATE, "1004"), (Op.INSERT, "1005"),
    ]  # fmt: skip
    assert [r.position for r in records] == [
        (2122180, 2122180, 0), (2122180, 2122180, 0),  # a snapshot row: committed at its scn
        (2122185, 2122184, 0), (2122188, 2122186, 0), (2122191, 2122190, 0),
        (2122195, 2122192, 0), (2122195, 2122192, 1),
    ]  # fmt: skip
    assert in_strict_source_order(records[1:])
    assert commit_position(records[5].sequence) == commit_position(records[6].sequence)
    assert records[5].txid == records[6].txid == "4.23.812"


def test_postgres_snapshot_rows_changes_and_a_transaction_whose_changes_have_their_own_lsn():
    anne = customer(1004, "Anne", "Kretchmar", "annek@noanswer.org")
    events = [
        dbz("r", postgres_source(24023119, 555, snapshot="first"), after=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com")),
        dbz("c", postgres_source(24023128, 556), after=anne),
        dbz("u", postgres_source(24023160, 557), before={"id": 1004}, after={**anne, "first_name": "Anne Marie"}),
        dbz("d", postgres_source(46523128, 580), before={"id": 1001}),
        # one transaction (txId 581): each change carries its own WAL position
        dbz("u", postgres_source(46523200, 581), before={"id": 1004}, after={**anne, "last_name": "K."}),
        dbz("c", postgres_source(46523264, 581), after=customer(1005, "Jon", "Doe", "jon@example.com")),
    ]  # fmt: skip
    records = decode_events(events, ["id"])
    assert [(r.op, r.key["id"]) for r in records] == [
        (Op.INSERT, "1001"), (Op.INSERT, "1004"), (Op.UPDATE, "1004"), (Op.DELETE, "1001"), (Op.UPDATE, "1004"),
        (Op.INSERT, "1005"),
    ]  # fmt: skip
    assert [r.position for r in records] == [
        (24023119,),
        (24023128,),
        (24023160,),
        (46523128,),
        (46523200,),
        (46523264,),
    ]
    assert in_strict_source_order(records)
    # the default's first component is the change's lsn: a cut may fall inside a Postgres transaction
    assert commit_position(records[4].sequence) != commit_position(records[5].sequence)
    assert records[4].txid == records[5].txid == "581"


@pytest.mark.parametrize(("connector", "binlog"), [("mysql", "mysql-bin"), ("mariadb", "mariadb-bin")])
def test_mysql_and_mariadb_snapshot_rows_changes_and_a_transaction_in_one_binlog_file(connector, binlog):
    anne = customer(1004, "Anne", "Kretchmar", "annek@noanswer.org")

    def source(pos: int, row: int, snapshot: str = "false") -> dict:
        return binlog_source(connector, f"{binlog}.000003", pos, row, snapshot=snapshot)

    events = [
        dbz("r", source(154, 0, "first"), after=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com")),
        dbz("r", source(154, 0, "last"), after=customer(1002, "George", "Bailey", "gbailey@foobar.com")),
        dbz("c", source(356, 0), after=anne),
        dbz("u", source(484, 0), before=anne, after={**anne, "first_name": "Anne Marie"}),
        dbz("d", source(805, 0), before=customer(1002, "George", "Bailey", "gbailey@foobar.com")),
        # one transaction: a statement changing two rows, one rows event (same pos), rows 0 and 1
        dbz("u", source(1024, 0), before=anne, after={**anne, "email": "anne@example.com"}),
        dbz("u", source(1024, 1), before=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com"),
            after=customer(1001, "Sally", "Thomas", "sally@example.com")),
    ]  # fmt: skip
    records = decode_events(events, ["id"])
    assert [(r.op, r.key["id"]) for r in records] == [
        (Op.INSERT, "1001"), (Op.INSERT, "1002"), (Op.INSERT, "1004"), (Op.UPDATE, "1004"), (Op.DELETE, "1002"),
        (Op.UPDATE, "1004"), (Op.UPDATE, "1001"),
    ]  # fmt: skip
    assert [r.position for r in records] == [(3, 154, 0), (3, 154, 0), (3, 356, 0), (3, 484, 0), (3, 805, 0),
                                             (3, 1024, 0), (3, 1024, 1)]  # fmt: skip
    assert in_strict_source_order(records[1:])
    assert commit_position(records[5].sequence) == commit_position(records[6].sequence)  # the binlog file


def test_sqlserver_snapshot_rows_changes_and_transactions_sharing_commit_lsn():
    john = customer(1005, "john", "doe", "john.doe@example.org")
    snapshot_lsn = "00000025:000004c0:001a"
    events = [
        dbz("r", sqlserver_source(None, snapshot_lsn, None, snapshot="first"), after=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com")),
        dbz("r", sqlserver_source(None, snapshot_lsn, None, snapshot="last"), after=customer(1002, "George", "Bailey", "gbailey@foobar.com")),
        dbz("c", sqlserver_source("00000027:00000758:0003", "00000027:00000758:0005", 1), after=john),
        dbz("u", sqlserver_source("00000027:00000ac0:0002", "00000027:00000ac0:0007", 1), before=john, after={**john, "email": "noreply@example.org"}),
        dbz("d", sqlserver_source("00000027:00000db0:0005", "00000027:00000db0:0007", 1), before={**john, "email": "noreply@example.org"}),
        # one transaction of two statements: one commit_lsn, increasing change_lsn
        dbz("u", sqlserver_source("00000027:00000e20:0002", "00000027:00000e20:0009", 1), before=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com"), after=customer(1001, "Sally", "Thomas", "sally@example.com")),
        dbz("c", sqlserver_source("00000027:00000e20:0004", "00000027:00000e20:0009", 1), after=customer(1006, "Jon", "Doe", "jon@example.com")),
        # a primary-key update: delete and create at the same LSNs, told apart by event_serial_no
        dbz("d", sqlserver_source("00000027:00000f10:0002", "00000027:00000f10:0004", 1), before=customer(1006, "Jon", "Doe", "jon@example.com")),
        dbz("c", sqlserver_source("00000027:00000f10:0002", "00000027:00000f10:0004", 2), after=customer(1007, "Jon", "Doe", "jon@example.com")),
    ]  # fmt: skip
    records = decode_events(events, ["id"])
    assert [(r.op, r.key["id"]) for r in records] == [
        (Op.INSERT, "1001"), (Op.INSERT, "1002"), (Op.INSERT, "1005"), (Op.UPDATE, "1005"), (Op.DELETE, "1005"),
        (Op.UPDATE, "1001"), (Op.INSERT, "1006"), (Op.DELETE, "1006"), (Op.INSERT, "1007"),
    ]  # fmt: skip
    assert [r.position for r in records] == [
        (sqlserver_lsn(0x25, 0x4C0, 0x1A), 0, 0),  # snapshot rows: no change_lsn nor event_serial_no
        (sqlserver_lsn(0x25, 0x4C0, 0x1A), 0, 0),
        (sqlserver_lsn(0x27, 0x758, 5), sqlserver_lsn(0x27, 0x758, 3), 1),
        (sqlserver_lsn(0x27, 0xAC0, 7), sqlserver_lsn(0x27, 0xAC0, 2), 1),
        (sqlserver_lsn(0x27, 0xDB0, 7), sqlserver_lsn(0x27, 0xDB0, 5), 1),
        (sqlserver_lsn(0x27, 0xE20, 9), sqlserver_lsn(0x27, 0xE20, 2), 1),
        (sqlserver_lsn(0x27, 0xE20, 9), sqlserver_lsn(0x27, 0xE20, 4), 1),
        (sqlserver_lsn(0x27, 0xF10, 4), sqlserver_lsn(0x27, 0xF10, 2), 1),
        (sqlserver_lsn(0x27, 0xF10, 4), sqlserver_lsn(0x27, 0xF10, 2), 2),
    ]
    assert in_strict_source_order(records[1:])
    assert commit_position(records[5].sequence) == commit_position(records[6].sequence)
    assert commit_position(records[7].sequence) == commit_position(records[8].sequence)
    assert commit_position(records[4].sequence) < commit_position(records[5].sequence)
    assert records[2].extra == {"snapshot": "false"} and records[0].extra == {"snapshot": "first"}


@pytest.mark.parametrize(
    "lsn",
    [
        pytest.param(
            lambda g1, g2, g3: f"{g1:08x}:{g2:08x}:{g3:04x}", id="10-byte LSN, as in Debezium's Db2 docs"
        ),
        pytest.param(lambda g1, g2, g3: f"{g1:08x}:{g2:08x}:{g3:016x}", id="16-byte LSN, as Db2 11 writes"),
    ],
)
def test_db2_snapshot_rows_changes_and_a_transaction_sharing_commit_lsn(lsn):
    john = customer(1005, "john", "doe", "john.doe@example.org", upper=True)
    events = [
        dbz("r", db2_source(None, lsn(0x25, 0x4C0, 0x1A), snapshot="first"), after=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com", upper=True)),
        dbz("c", db2_source(lsn(0x27, 0x758, 3), lsn(0x27, 0x758, 5)), after=john),
        dbz("u", db2_source(lsn(0x27, 0xAC0, 2), lsn(0x27, 0xAC0, 7)), before=john, after={**john, "EMAIL": "noreply@example.org"}),
        dbz("d", db2_source(lsn(0x27, 0xDB0, 5), lsn(0x27, 0xDB0, 7)), before={**john, "EMAIL": "noreply@example.org"}),
        # one transaction: one commit_lsn, increasing change_lsn
        dbz("u", db2_source(lsn(0x27, 0xE20, 2), lsn(0x27, 0xE20, 9)), before=customer(1001, "Sally", "Thomas", "sally.thomas@acme.com", upper=True), after=customer(1001, "Sally", "Thomas", "sally@example.com", upper=True)),
        dbz("c", db2_source(lsn(0x27, 0xE20, 4), lsn(0x27, 0xE20, 9)), after=customer(1006, "Jon", "Doe", "jon@example.com", upper=True)),
    ]  # fmt: skip
    records = decode_events(events, ["ID"])
    assert [(r.op, r.key["ID"]) for r in records] == [
        (Op.INSERT, "1001"), (Op.INSERT, "1005"), (Op.UPDATE, "1005"), (Op.DELETE, "1005"), (Op.UPDATE, "1001"),
        (Op.INSERT, "1006"),
    ]  # fmt: skip
    numbers = [int(lsn(*groups).replace(":", ""), 16) for groups in [(0x25, 0x4C0, 0x1A), (0x27, 0x758, 5)]]
    assert records[0].position == (numbers[0], 0) and records[1].position[0] == numbers[1]
    assert in_strict_source_order(records)
    assert commit_position(records[4].sequence) == commit_position(records[5].sequence)


def test_a_real_db2_event_with_a_16_byte_lsn():
    source = db2_source("00000000:00000000:000000000446140f", "00000000:00001e36:000000000004a1b4")
    record = decode_events(
        [dbz("c", source, after=customer(1006, "Jimmy", "Page", "zoso@zep.com", upper=True))], ["ID"]
    )[0]
    assert record.position == ((0x1E36 << 64) | 0x4A1B4, 0x446140F)


# --- Orders the raw text gets wrong ------------------------------------------------------------------


def test_oracle_scns_compare_as_numbers_not_as_text():
    earlier = oracle_source("9999998", "9999999")
    later = oracle_source("10000000", "10000001")
    assert sorted([earlier["commit_scn"], later["commit_scn"]]) == ["10000001", "9999999"]  # text: wrong
    records = decode_events([dbz("c", later, after={"ID": 2}), dbz("c", earlier, after={"ID": 1})], ["ID"])
    assert records[1].sequence < records[0].sequence


@pytest.mark.parametrize("connector", ["mysql", "mariadb"])
def test_binlog_file_numbers_compare_as_numbers_past_999999(connector):
    earlier = binlog_source(connector, "mysql-bin.999999", 4, 0)
    later = binlog_source(connector, "mysql-bin.1000000", 4, 0)  # the suffix grows a digit
    assert sorted([earlier["file"], later["file"]]) == [
        "mysql-bin.1000000",
        "mysql-bin.999999",
    ]  # text: wrong
    records = decode_events([dbz("c", later, after={"id": 2}), dbz("c", earlier, after={"id": 1})], ["id"])
    assert (records[1].position, records[0].position) == ((999999, 4, 0), (1000000, 4, 0))
    assert records[1].sequence < records[0].sequence


def test_sqlserver_lsn_hex_case_is_not_order():
    """Debezium writes lower-case hex; SQL Server itself shows LSNs in upper case. Hex digits are
    case-blind, text is not: 'B' sorts before 'a'."""
    earlier = sqlserver_source("0000002a:ffffffff:fffe", "0000002a:ffffffff:ffff", 1)
    later = sqlserver_source("0000002B:00000420:0002", "0000002B:00000420:0003", 1)
    assert sorted([earlier["commit_lsn"], later["commit_lsn"]]) == [
        later["commit_lsn"],
        earlier["commit_lsn"],
    ]
    records = decode_events([dbz("c", later, after={"id": 2}), dbz("c", earlier, after={"id": 1})], ["id"])
    assert records[0].position[0] == sqlserver_lsn(0x2B, 0x420, 3)
    assert records[1].sequence < records[0].sequence


def test_db2_lsn_hex_case_is_not_order():
    earlier = db2_source("00000000:0000002a:fffffffffffffffe", "00000000:0000002a:ffffffffffffffff")
    later = db2_source("00000000:0000002B:0000000000000001", "00000000:0000002B:0000000000000002")
    assert sorted([earlier["commit_lsn"], later["commit_lsn"]]) == [
        later["commit_lsn"],
        earlier["commit_lsn"],
    ]
    records = decode_events([dbz("c", later, after={"ID": 2}), dbz("c", earlier, after={"ID": 1})], ["ID"])
    assert records[1].sequence < records[0].sequence


def test_sqlserver_lsn_groups_never_spill_into_each_other():
    """The last LSN of a log block and of a virtual log file against the first of the next: the groups
    are compared one after the other, so each group's top value stays below the next group's step."""
    lsns = ["0000002b:0000041f:fffe", "0000002b:0000041f:ffff", "0000002b:00000420:0000",
            "0000002b:ffffffff:ffff", "0000002c:00000000:0000"]  # fmt: skip
    events = [dbz("c", sqlserver_source(lsn, lsn, 1), after={"id": n}) for n, lsn in enumerate(lsns)]
    records = decode_events(events, ["id"])
    assert [r.position[0] for r in records] == [
        sqlserver_lsn(0x2B, 0x41F, 0xFFFE), sqlserver_lsn(0x2B, 0x41F, 0xFFFF), sqlserver_lsn(0x2B, 0x420, 0),
        sqlserver_lsn(0x2B, 0xFFFFFFFF, 0xFFFF), sqlserver_lsn(0x2C, 0, 0),
    ]  # fmt: skip
    assert in_strict_source_order(records)


# --- sequence_by per connector, and errors -------------------------------------------------------


def test_sqlserver_sequence_by_commit_lsn_change_lsn_as_in_the_issue():
    events = [
        dbz("r", sqlserver_source(None, "0000002b:00000420:0001", None, snapshot="last"), after={"id": 1}),
        dbz("u", sqlserver_source("0000002b:00000420:0002", "0000002b:00000420:0003", 1), before={"id": 1}, after={"id": 1}),
    ]  # fmt: skip
    records = decode_events(events, ["id"], sequence_by=["commit_lsn", "change_lsn"])
    assert [r.position for r in records] == [
        (sqlserver_lsn(0x2B, 0x420, 1), 0),
        (sqlserver_lsn(0x2B, 0x420, 3), sqlserver_lsn(0x2B, 0x420, 2)),
    ]


def test_sequence_by_reads_total_order_from_the_transaction_block():
    event = dbz("c", sqlserver_source("0000002b:00000420:0002", "0000002b:00000420:0003", 1), after={"id": 1})
    event["transaction"] = {"id": "0000002b:00000420:0003", "total_order": 2, "data_collection_order": 1}
    records = decode_events([event], ["id"], sequence_by=["commit_lsn", "total_order"])
    assert records[0].position == (sqlserver_lsn(0x2B, 0x420, 3), 2)


@pytest.mark.parametrize(
    ("commit_lsn", "shown"),
    [("00002b:zz", "'00002b:zz'"), ("0000002b:00000420:00003", "'0000002b:00000420:00003'"), (43, "43"),
     ("0000002b:00000420", "'0000002b:00000420'")],
)  # fmt: skip
def test_a_malformed_sqlserver_lsn_names_the_field_and_the_value(commit_lsn, shown):
    event = dbz("c", sqlserver_source("0000002b:00000420:0002", commit_lsn, 1), after={"id": 1})
    with pytest.raises(DecodeError) as caught:
        decode_events([event], ["id"])
    assert str(caught.value) == (
        f"Debezium message: `source.commit_lsn` is {shown}, not a SQL Server LSN (hex groups "
        "xxxxxxxx:xxxxxxxx:xxxx); the position needs one"
    )


def test_a_malformed_db2_lsn_names_the_field_and_the_value():
    event = dbz(
        "c",
        db2_source("00000000:00000000:00000000000004zz", "00000000:00001e36:000000000004a1b4"),
        after={"ID": 1},
    )
    with pytest.raises(
        DecodeError, match=r"`source.change_lsn` is '00000000:00000000:00000000000004zz', not a Db2 LSN"
    ):
        decode_events([event], ["ID"])


def test_a_missing_commit_lsn_is_an_error_naming_it():
    event = dbz("c", sqlserver_source("0000002b:00000420:0002", None, 1), after={"id": 1})  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match=r"`source.commit_lsn` is null or missing; the position needs it"):
        decode_events([event], ["id"])


@pytest.mark.parametrize(
    ("source", "sequence_by", "reason"),
    [
        (sqlserver_source("0000002b:00000420:0002", "0000002b:00000420:0003", 1), ["commit_scn"],
         "sequence_by names 'commit_scn', which connector 'sqlserver' does not have; its position fields are "
         "commit_lsn, change_lsn, event_serial_no, total_order"),
        (postgres_source(24023128, 556), ["commit_lsn"],
         "sequence_by names 'commit_lsn', which connector 'postgresql' does not have; its position fields are "
         "lsn, total_order"),
        (oracle_source("2122184", "2122185"), ["lsn"],
         "sequence_by names 'lsn', which connector 'oracle' does not have; its position fields are "
         "commit_scn, scn, ssn, total_order"),
        (db2_source("00000027:00000758:0003", "00000027:00000758:0005"), ["event_serial_no"],
         "sequence_by names 'event_serial_no', which connector 'db2' does not have; its position fields are "
         "commit_lsn, change_lsn, total_order"),
    ],
)  # fmt: skip
def test_sequence_by_a_field_the_connector_lacks_names_the_connector_and_its_fields(
    source, sequence_by, reason
):
    with pytest.raises(DecodeError) as caught:
        decode_events([dbz("c", source, after={"id": 1, "ID": 1})], ["id"], sequence_by=sequence_by)
    assert str(caught.value) == f"Debezium message: {reason}"


# --- Properties: any connector, any shape its positions take, any delivery ---------------------------

CONNECTORS = ["oracle", "postgresql", "mysql", "mariadb", "sqlserver", "db2"]
SHARED_COMMIT_POSITION = {"oracle", "sqlserver", "db2"}  # a transaction's changes share the first component


def any_group(bits: int) -> st.SearchStrategy[int]:
    """A value of a `bits`-wide LSN group: small ones (so groups tie and the next decides) or any."""
    return st.one_of(st.integers(0, 2), st.integers(2**bits - 2, 2**bits - 1), st.integers(0, 2**bits - 1))


def lsn_groups(last_group_bits: int) -> st.SearchStrategy[tuple[int, int, int]]:
    return st.tuples(any_group(32), any_group(32), any_group(last_group_bits))


@st.composite
def transaction_sizes(draw, changes: int) -> list[int]:
    """`changes` changes cut into transactions of one to three changes."""
    sizes: list[int] = []
    while sum(sizes) < changes:
        sizes.append(min(draw(st.integers(1, 3)), changes - sum(sizes)))
    return sizes


def sorted_unique(draw, strategy: st.SearchStrategy, count: int) -> list:
    return sorted(draw(st.lists(strategy, min_size=count, max_size=count, unique=True)))


@st.composite
def lsn_history(draw, connector: str, changes: int) -> list[tuple[int, dict]]:
    """(commit number, source block) of SQL Server or Db2 changes in commit order: transactions in
    increasing commit_lsn, their changes in increasing change_lsn (a later transaction's change_lsn may
    be lower: it began earlier), SQL Server's event_serial_no telling apart changes at one change_lsn,
    and maybe a snapshot row committed at the first transaction's commit_lsn. LSN groups are compared
    as numbers, group by group: sorting the group tuples is the source order."""
    last_bits = 16 if connector == "sqlserver" else draw(st.sampled_from([16, 64]))
    upper = draw(st.booleans())

    def text(groups: tuple[int, int, int]) -> str:
        lsn = f"{groups[0]:08x}:{groups[1]:08x}:{groups[2]:0{last_bits // 4}x}"
        return lsn.upper() if upper else lsn

    def source(change: tuple | None, commit: tuple, serial: int | None, snapshot: str = "false") -> dict:
        change_lsn = None if change is None else text(change)
        if connector == "sqlserver":
            return sqlserver_source(change_lsn, text(commit), serial, snapshot=snapshot)
        return db2_source(change_lsn, text(commit), snapshot=snapshot)

    snapshot = draw(st.booleans())
    sizes = draw(transaction_sizes(changes - 1 if snapshot and changes > 1 else changes))
    commits = sorted_unique(draw, lsn_groups(last_bits), len(sizes))
    # the snapshot row is committed at the first transaction's LSN, so it shares its commit position
    history = [(0, source(None, commits[0], None, "last"))] if snapshot and changes > 1 else []
    nonzero = lsn_groups(last_bits).filter(any)  # a real change LSN is never all zeros
    serials = st.integers(1, 2) if connector == "sqlserver" else st.none()
    for number, (commit, size) in enumerate(zip(commits, sizes, strict=True)):
        for change, serial in sorted_unique(draw, st.tuples(nonzero, serials), size):
            history.append((number, source(change, commit, serial)))
    return history


@st.composite
def oracle_history(draw, changes: int) -> list[tuple[int, dict]]:
    """Transactions in increasing commit_scn of any width; scn increasing inside one, ssn within an scn."""
    sizes = draw(transaction_sizes(changes))
    commits = sorted_unique(draw, st.one_of(st.integers(1, 20), st.integers(9_999_990, 10_000_010), st.integers(1, 2**48)), len(sizes))  # fmt: skip
    history = []
    for number, (commit, size) in enumerate(zip(commits, sizes, strict=True)):
        for scn, ssn in sorted_unique(draw, st.tuples(st.integers(0, commit), st.integers(0, 2)), size):
            history.append((number, oracle_source(str(scn), str(commit), ssn, txid=f"tx{number}")))
    return history


@st.composite
def postgres_history(draw, changes: int) -> list[tuple[int, dict]]:
    lsns = sorted_unique(draw, st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1)), changes)
    return [(number, postgres_source(lsn, 500 + number)) for number, lsn in enumerate(lsns)]


@st.composite
def binlog_history(draw, connector: str, changes: int) -> list[tuple[int, dict]]:
    """(file, pos, row) in binlog order; file suffixes past 999999 grow a digit."""
    files = st.one_of(st.integers(1, 3), st.integers(999_998, 1_000_001))
    positions = sorted_unique(draw, st.tuples(files, st.integers(4, 2**32), st.integers(0, 3)), changes)
    return [(number, binlog_source(connector, f"mysql-bin.{file:06d}", pos, row))
            for number, (file, pos, row) in enumerate(positions)]  # fmt: skip


def connector_history(connector: str, changes: int) -> st.SearchStrategy[list[tuple[int, dict]]]:
    if connector in ("sqlserver", "db2"):
        return lsn_history(connector, changes)
    if connector == "oracle":
        return oracle_history(changes)
    if connector == "postgresql":
        return postgres_history(changes)
    return binlog_history(connector, changes)


def decoded_sequence(source: dict, offset: int) -> str:
    event = {"before": None, "after": {"id": 1, "ID": 1}, "source": source, "op": "c"}
    message = KafkaMessage("server1.customers", 0, offset, None, json.dumps(event).encode(), None)
    (record,) = decode(message, format="debezium_json", keys=["id"])
    return record.sequence


@settings(max_examples=150, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("connector", CONNECTORS)
def test_any_connectors_changes_decode_in_source_order_whatever_their_kafka_offsets(connector, data):
    history = data.draw(st.integers(1, 12).flatmap(lambda n: connector_history(connector, n)))
    offsets = data.draw(st.permutations(range(len(history))))
    sequences = [
        decoded_sequence(source, offset) for (_, source), offset in zip(history, offsets, strict=True)
    ]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)
    if connector in SHARED_COMMIT_POSITION:
        commits = [
            (number, commit_position(sequence))
            for (number, _), sequence in zip(history, sequences, strict=True)
        ]
        for (number_a, commit_a), (number_b, commit_b) in pairwise(commits):
            assert (commit_a == commit_b) == (number_a == number_b)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("connector", CONNECTORS)
def test_silver_fed_decoded_changes_in_any_delivery_ends_as_the_source_table(connector, data):
    """A random source history positioned as `connector` positions it, sequenced by the decoder and
    delivered shuffled, split, duplicated and replayed, folds to the source table (cell model)."""
    history = data.draw(source_histories())
    positioned = data.draw(connector_history(connector, len(history)))
    offsets = data.draw(st.permutations(range(len(history))))
    sequenced = [
        replace(change, seq=decoded_sequence(source, offset))
        for change, (_, source), offset in zip(history, positioned, offsets, strict=True)
    ]
    model = CellModel()
    for batch in data.draw(deliveries(sequenced)):
        model.apply(batch)

    def states(rows):
        return {key: (row.values, row.incomplete) for key, row in rows.items()}

    assert states(model.live_rows()) == states(fold_in_source_order(history))
