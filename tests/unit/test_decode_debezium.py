"""Debezium JSON decoding (transforms/decoders/debezium.py, debezium_types.py).

The examples of docs/cdc-formats.md §2.7 (create, update with an unavailable CLOB, delete + tombstone,
primary-key change, truncate, Postgres update), with and without the schema wrapper, public fixtures
(tests/fixtures/messages/debezium) and edge cases, asserting exact values.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest

from transforms.changes import ChangeRecord, DecodeError, KafkaCoordinates, KafkaMessage, Op
from transforms.decoders import decode

FIXTURES = Path(__file__).parent.parent / "fixtures" / "messages" / "debezium"


def message(
    value: str | bytes | dict | None,
    *,
    key: str | bytes | dict | None = None,
    headers: tuple[tuple[str, bytes | None], ...] = (),
    offset: int = 7,
) -> KafkaMessage:
    return KafkaMessage("crm.SIEBEL.S_CONTACT", 1, offset, _raw(key), _raw(value), 1709647332000, headers)


def _raw(value: str | bytes | dict | None) -> bytes | None:
    if isinstance(value, dict):
        return json.dumps(value).encode()
    return value.encode() if isinstance(value, str) else value


def decode_dbz(value, keys: list[str], sequence_by: list[str] | None = None, **kwargs) -> list[ChangeRecord]:
    return decode(message(value, **kwargs), format="debezium_json", keys=keys, sequence_by=sequence_by)


def decode_one(value, keys: list[str], sequence_by: list[str] | None = None, **kwargs) -> ChangeRecord:
    records = decode_dbz(value, keys, sequence_by, **kwargs)
    assert len(records) == 1
    return records[0]


def oracle_source(**overrides) -> dict:
    source = {
        "version": "2.7.3.Final", "connector": "oracle", "name": "crm", "ts_ms": 1709647331000,
        "snapshot": "false", "db": "CRMPDB", "sequence": None, "schema": "SIEBEL", "table": "S_CONTACT",
        "txId": "0a001b00a4050000", "scn": "48213377", "commit_scn": "48213381", "lcr_position": None,
        "rs_id": "0x0000a1.00012345.0010", "ssn": 0, "redo_thread": 1, "user_name": "SADMIN",
        "row_id": "AAAS5fAAEAAAAHzAAA", "commit_ts_ms": 1709647331000, "start_scn": "48213377",
        "start_ts_ms": 1709647331000,
    }  # fmt: skip
    return {**source, **overrides}


# --- docs/cdc-formats.md §2.7 (Oracle LogMiner, schemas.enable=false) ---------------------------------

CREATE = """{"before":null,
 "after":{"ROW_ID":"1-4XK2P","CREATED":1709647330000,"CREATED_BY":"0-1","LAST_UPD":1709647330000,"LAST_UPD_BY":"0-1","MODIFICATION_NUM":0,"CONFLICT_ID":"0","DB_LAST_UPD":1709647330000,"DB_LAST_UPD_SRC":"User","PAR_ROW_ID":"1-4XK2P","FST_NAME":"Anna","LAST_NAME":"Berg","EMAIL_ADDR":"anna.berg@example.com","PR_POSTN_ID":"No Match Row Id","EMP_FLG":"N","X_SEGMENT_CD":null},
 "source":{"version":"2.7.3.Final","connector":"oracle","name":"crm","ts_ms":1709647331000,"snapshot":"false","db":"CRMPDB","sequence":null,"schema":"SIEBEL","table":"S_CONTACT","txId":"0a001b00a4050000","scn":"48213377","commit_scn":"48213381","lcr_position":null,"rs_id":"0x0000a1.00012345.0010","ssn":0,"redo_thread":1,"user_name":"SADMIN","row_id":"AAAS5fAAEAAAAHzAAA","commit_ts_ms":1709647331000,"start_scn":"48213377","start_ts_ms":1709647331000},
 "op":"c","ts_ms":1709647331950,"transaction":null}"""

UPDATE_WITH_UNAVAILABLE_CLOB = """{"before":{"ROW_ID":"1-8PQ1","PAR_ROW_ID":"1-4XK2P","NOTE_TXT":"__debezium_unavailable_value","MODIFICATION_NUM":3,"LAST_UPD":1712823342000},
 "after": {"ROW_ID":"1-8PQ1","PAR_ROW_ID":"1-4XK2P","NOTE_TXT":"__debezium_unavailable_value","MODIFICATION_NUM":4,"LAST_UPD":1712826000000},
 "source":{"version":"2.7.3.Final","connector":"oracle","name":"crm","ts_ms":1712826000000,"snapshot":"false","db":"CRMPDB","sequence":null,"schema":"SIEBEL","table":"CX_CONTACT_NOTE","txId":"0c0014008f0a0000","scn":"49100220","commit_scn":"49100223","lcr_position":null,"rs_id":null,"ssn":0,"redo_thread":1,"user_name":"SADMIN","row_id":"AAAT01AAEAAAAJkAAB","commit_ts_ms":1712826000000,"start_scn":"49100220","start_ts_ms":1712826000000},
 "op":"u","ts_ms":1712826000612,"transaction":null}"""

DELETE = {
    "before": {"ROW_ID": "1-4XK2P", "FST_NAME": "Anna", "LAST_NAME": "Berg", "X_SEGMENT_CD": None},
    "after": None,
    "source": oracle_source(
        ts_ms=1714676400000, txId="05001a00c1040000", scn="51000010", commit_scn="51000012", ssn=3
    ),
    "op": "d",
    "ts_ms": 1714676401200,
    "transaction": None,
}

TRUNCATE = {
    "before": None,
    "after": None,
    "source": oracle_source(
        table="S_LST_OF_VAL",
        txId="02000a0037030000",
        scn="13234397",
        commit_scn="13271102",
        ts_ms=1638974558000,
    ),
    "op": "t",
    "ts_ms": 1638974558961,
    "transaction": None,
}

POSTGRES_UPDATE = """{"before":{"id":1},"after":{"id":1,"first_name":"Anne Marie","last_name":"Kretchmar","email":"annek@noanswer.org"},"source":{"version":"…","connector":"postgresql","name":"PostgreSQL_server","ts_ms":1559033904863,"snapshot":"false","db":"postgres","schema":"public","table":"customers","txId":556,"lsn":24023128,"xmin":null},"op":"u","ts_ms":1465584025523}"""


def test_create_is_a_full_image_insert_positioned_by_commit_scn_scn_ssn():
    record = decode_one(CREATE, ["ROW_ID"], key='{"ROW_ID":"1-4XK2P"}')
    assert record == ChangeRecord(
        table="SIEBEL.S_CONTACT",
        op=Op.INSERT,
        key={"ROW_ID": "1-4XK2P"},
        before=None,
        after={
            "ROW_ID": "1-4XK2P",
            "CREATED": "1709647330000",  # without a schema a DATE stays its epoch-ms integer text
            "CREATED_BY": "0-1",
            "LAST_UPD": "1709647330000",
            "LAST_UPD_BY": "0-1",
            "MODIFICATION_NUM": "0",
            "CONFLICT_ID": "0",
            "DB_LAST_UPD": "1709647330000",
            "DB_LAST_UPD_SRC": "User",
            "PAR_ROW_ID": "1-4XK2P",
            "FST_NAME": "Anna",
            "LAST_NAME": "Berg",
            "EMAIL_ADDR": "anna.berg@example.com",
            "PR_POSTN_ID": "No Match Row Id",
            "EMP_FLG": "N",
            "X_SEGMENT_CD": None,
        },
        full_image=True,
        position=(48213381, 48213377, 0),
        kafka=KafkaCoordinates("crm.SIEBEL.S_CONTACT", 1, 7, 1709647332000),
        commit_ts=datetime(2024, 3, 5, 14, 2, 11),
        txid="0a001b00a4050000",
        old_key=None,
        extra={"snapshot": "false"},
    )


def test_unavailable_value_placeholder_makes_the_column_absent_in_both_images():
    record = decode_one(UPDATE_WITH_UNAVAILABLE_CLOB, ["ROW_ID"])
    assert record.table == "SIEBEL.CX_CONTACT_NOTE"
    assert record.op is Op.UPDATE and record.full_image is False
    assert record.before == {
        "ROW_ID": "1-8PQ1",
        "PAR_ROW_ID": "1-4XK2P",
        "MODIFICATION_NUM": "3",
        "LAST_UPD": "1712823342000",
    }
    assert record.after == {
        "ROW_ID": "1-8PQ1",
        "PAR_ROW_ID": "1-4XK2P",
        "MODIFICATION_NUM": "4",
        "LAST_UPD": "1712826000000",
    }
    assert record.key == {"ROW_ID": "1-8PQ1"}
    assert record.old_key is None
    assert record.position == (49100223, 49100220, 0)


def test_base64_unavailable_placeholder_in_a_bytes_column_is_absent_too():
    value = json.loads(UPDATE_WITH_UNAVAILABLE_CLOB)
    value["after"]["NOTE_BLOB"] = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="
    value["after"]["PHOTO"] = "YQ=="
    record = decode_one(value, ["ROW_ID"])
    assert "NOTE_BLOB" not in record.after
    assert record.after["PHOTO"] == "YQ=="


def test_delete_is_keyed_from_before():
    record = decode_one(DELETE, ["ROW_ID"])
    assert (record.op, record.key, record.after, record.full_image) == (
        Op.DELETE,
        {"ROW_ID": "1-4XK2P"},
        None,
        False,
    )
    assert record.before == {
        "ROW_ID": "1-4XK2P",
        "FST_NAME": "Anna",
        "LAST_NAME": "Berg",
        "X_SEGMENT_CD": None,
    }
    assert record.position == (51000012, 51000010, 3)
    assert record.txid == "05001a00c1040000"


def test_tombstone_after_a_delete_yields_no_record():
    assert decode_dbz(None, ["ROW_ID"], key='{"ROW_ID":"1-4XK2P"}') == []


def test_primary_key_change_delete_tombstone_create_gives_delete_then_insert_with_old_key():
    old_key, new_key = b'{"ROW_ID":"1-7QW3A"}', b'{"ROW_ID":"1-9ZZ01"}'
    delete = {**DELETE, "before": {"ROW_ID": "1-7QW3A", "NAME": "Partner"}}
    create = json.loads(CREATE)
    create["after"]["ROW_ID"] = "1-9ZZ01"
    create["source"]["commit_scn"] = "51000012"
    sequence = [
        message(delete, key=old_key, headers=(("__debezium.newkey", new_key),), offset=10),
        message(None, key=old_key, offset=11),
        message(create, key=new_key, headers=(("__debezium.oldkey", old_key),), offset=12),
    ]
    results = [decode(m, format="debezium_json", keys=["ROW_ID"]) for m in sequence]
    assert [len(r) for r in results] == [1, 0, 1]
    removed, created = results[0][0], results[2][0]
    assert (removed.op, removed.key, removed.old_key) == (Op.DELETE, {"ROW_ID": "1-7QW3A"}, None)
    assert (created.op, created.key, created.old_key) == (
        Op.INSERT,
        {"ROW_ID": "1-9ZZ01"},
        {"ROW_ID": "1-7QW3A"},
    )
    assert created.full_image is True


def test_old_key_header_with_the_schema_wrapper_and_a_typed_key():
    header = {
        "schema": {"type": "struct", "fields": [{"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                                                 "parameters": {"scale": "0"}, "field": "ID"}]},
        "payload": {"ID": "A+g="},
    }  # fmt: skip
    value = {"before": None, "after": {"ID": 2000}, "source": oracle_source(table="T"), "op": "c"}
    record = decode_one(value, ["ID"], headers=(("__debezium.oldkey", json.dumps(header).encode()),))
    assert (record.key, record.old_key) == ({"ID": "2000"}, {"ID": "1000"})


def test_old_key_header_lacking_a_key_column_is_an_error():
    with pytest.raises(DecodeError, match="header __debezium.oldkey lacks key column ROW_ID"):
        decode_dbz(CREATE, ["ROW_ID"], headers=(("__debezium.oldkey", b'{"ID":1}'),))


def test_old_key_header_that_is_not_json_is_an_error():
    with pytest.raises(DecodeError, match=r"header __debezium.oldkey: invalid JSON at byte 0"):
        decode_dbz(CREATE, ["ROW_ID"], headers=(("__debezium.oldkey", b"Struct{ROW_ID=1-7QW3A}"),))


def test_an_update_whose_before_key_differs_from_after_key_carries_old_key():
    value = json.loads(UPDATE_WITH_UNAVAILABLE_CLOB)
    value["before"]["ROW_ID"] = "1-OLD"
    record = decode_one(value, ["ROW_ID"])
    assert (record.op, record.key, record.old_key) == (Op.UPDATE, {"ROW_ID": "1-8PQ1"}, {"ROW_ID": "1-OLD"})


def test_truncate_has_an_empty_key_no_images_and_needs_no_kafka_key():
    record = decode_one(TRUNCATE, ["ROW_ID"], key=None)
    assert (record.table, record.op, record.key, record.before, record.after) == (
        "SIEBEL.S_LST_OF_VAL", Op.TRUNCATE, {}, None, None,
    )  # fmt: skip
    assert record.position == (13271102, 13234397, 0)
    assert record.txid == "02000a0037030000"


def test_postgres_update_with_key_only_before_is_positioned_by_lsn():
    record = decode_one(POSTGRES_UPDATE, ["id"])
    assert record.table == "public.customers"
    assert record.before == {"id": "1"}
    assert record.after == {
        "id": "1",
        "first_name": "Anne Marie",
        "last_name": "Kretchmar",
        "email": "annek@noanswer.org",
    }
    assert record.position == (24023128,)
    assert record.txid == "556"
    assert record.commit_ts == datetime(2019, 5, 28, 8, 58, 24, 863000)
    assert record.old_key is None


# --- The schema wrapper and logical types ---------------------------------------------------------

COLUMN_SCHEMAS = [
    {"type": "string", "optional": False, "field": "ROW_ID"},
    {"type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
     "parameters": {"scale": "7", "connect.decimal.precision": "22"}, "field": "SUM_REVN_AMT"},
    {"type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
     "parameters": {"scale": "2", "connect.decimal.precision": "50"}, "field": "HUGE_AMT"},
    {"type": "struct", "optional": True, "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
     "fields": [{"type": "int32", "field": "scale"}, {"type": "bytes", "field": "value"}], "field": "SUM_WIN_PROB"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.Timestamp", "version": 1, "field": "CREATED"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "version": 1, "field": "LAST_UPD_TS"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.NanoTimestamp", "version": 1, "field": "EVENT_TS"},
    {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "version": 1, "field": "CLOSE_DT"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTime", "version": 1, "field": "START_TM"},
    {"type": "string", "optional": True, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "SYNC_TS"},
    {"type": "int64", "optional": True, "field": "MODIFICATION_NUM"},
    {"type": "boolean", "optional": True, "field": "ACTIVE"},
    {"type": "string", "optional": True, "field": "NOTE_TXT"},
]  # fmt: skip

HUGE_UNSCALED = 123456789012345678901234567890123456789012345678  # 48 digits


def typed_after() -> dict:
    return {
        "ROW_ID": "1-OPTY1",
        "SUM_REVN_AMT": "AukO3QA=",  # 1250.0000000
        "HUGE_AMT": base64.b64encode(HUGE_UNSCALED.to_bytes(21, "big", signed=True)).decode(),
        "SUM_WIN_PROB": {"scale": 3, "value": "/2c="},  # -0.153
        "CREATED": 1709647330000,
        "LAST_UPD_TS": 1709647330123456,
        "EVENT_TS": 1709647330123456789,
        "CLOSE_DT": 19787,
        "START_TM": 29730000001,
        "SYNC_TS": "2024-03-05T14:02:10.5+01:00",
        "MODIFICATION_NUM": 3,
        "ACTIVE": True,
        "NOTE_TXT": None,
    }


def with_schema(payload: dict, columns: list[dict] = COLUMN_SCHEMAS) -> dict:
    envelope = {
        "type": "struct",
        "name": "crm.SIEBEL.S_OPTY.Envelope",
        "fields": [
            {
                "type": "struct",
                "fields": columns,
                "optional": True,
                "name": "crm.SIEBEL.S_OPTY.Value",
                "field": "before",
            },
            {
                "type": "struct",
                "fields": columns,
                "optional": True,
                "name": "crm.SIEBEL.S_OPTY.Value",
                "field": "after",
            },
            {
                "type": "struct",
                "fields": [],
                "optional": False,
                "name": "io.debezium.connector.oracle.Source",
                "field": "source",
            },
            {"type": "string", "optional": False, "field": "op"},
        ],
    }
    return {"schema": envelope, "payload": payload}


def test_schema_logical_types_decode_to_exact_decimals_and_timestamp_text():
    payload = {"before": None, "after": typed_after(), "source": oracle_source(table="S_OPTY"), "op": "r"}
    record = decode_one(with_schema(payload), ["ROW_ID"])
    assert record.after == {
        "ROW_ID": "1-OPTY1",
        "SUM_REVN_AMT": "1250.0000000",
        "HUGE_AMT": "1234567890123456789012345678901234567890123456.78",
        "SUM_WIN_PROB": "-0.153",
        "CREATED": "2024-03-05 14:02:10",
        "LAST_UPD_TS": "2024-03-05 14:02:10.123456",
        "EVENT_TS": "2024-03-05 14:02:10.123456789",  # nanoseconds kept
        "CLOSE_DT": "2024-03-05",
        "START_TM": "08:15:30.000001",
        "SYNC_TS": "2024-03-05T14:02:10.5+01:00",  # ZonedTimestamp string as-is
        "MODIFICATION_NUM": "3",
        "ACTIVE": "true",
        "NOTE_TXT": None,
    }
    assert (record.op, record.full_image, record.table) == (Op.INSERT, True, "SIEBEL.S_OPTY")


def test_without_schema_integers_and_decimal_bytes_stay_as_sent():
    payload = {"before": None, "after": typed_after(), "source": oracle_source(table="S_OPTY"), "op": "r"}
    record = decode_one(payload, ["ROW_ID"])
    assert record.after["CREATED"] == "1709647330000"
    assert record.after["CLOSE_DT"] == "19787"
    assert record.after["SUM_REVN_AMT"] == "AukO3QA="  # unknowable without the schema: kept, not guessed
    assert record.after["SUM_WIN_PROB"] == "-0.153"  # the VariableScaleDecimal shape needs no schema


def test_schema_and_schemaless_forms_give_the_same_envelope_fields():
    payload = json.loads(CREATE)
    columns = [{"type": "string", "optional": True, "field": name} for name in payload["after"]]
    for column in columns:
        if column["field"] in ("CREATED", "LAST_UPD", "DB_LAST_UPD", "MODIFICATION_NUM"):
            column["type"] = "int64"
    wrapped, bare = decode_one(with_schema(payload, columns), ["ROW_ID"]), decode_one(payload, ["ROW_ID"])
    assert wrapped == bare


def test_a_column_missing_from_the_schema_is_an_error():
    payload = {"before": None, "after": {**typed_after(), "EXTRA": 1}, "source": oracle_source(), "op": "c"}
    with pytest.raises(
        DecodeError, match="`after` column EXTRA: the message schema has no field for this column"
    ):
        decode_dbz(with_schema(payload), ["ROW_ID"])


def test_a_decimal_column_whose_value_is_not_base64_is_an_error():
    payload = {
        "before": None,
        "after": {**typed_after(), "SUM_REVN_AMT": "12.5!"},
        "source": oracle_source(),
        "op": "c",
    }
    with pytest.raises(
        DecodeError, match="`after` column SUM_REVN_AMT: decimal value '12.5!' is not valid base64"
    ):
        decode_dbz(with_schema(payload), ["ROW_ID"])


def test_a_timestamp_column_whose_value_is_not_an_integer_is_an_error():
    payload = {
        "before": None,
        "after": {**typed_after(), "CREATED": "2024-03-05"},
        "source": oracle_source(),
        "op": "c",
    }
    with pytest.raises(DecodeError, match="`after` column CREATED: ms '2024-03-05' is not an integer"):
        decode_dbz(with_schema(payload), ["ROW_ID"])


def test_schema_without_an_after_field_is_an_error():
    wrapped = with_schema({"before": None, "after": {"ROW_ID": "1"}, "source": oracle_source(), "op": "c"})
    wrapped["schema"]["fields"] = [f for f in wrapped["schema"]["fields"] if f["field"] != "after"]
    with pytest.raises(DecodeError, match="the message schema has no `after` field"):
        decode_dbz(wrapped, ["ROW_ID"])


# --- Records that carry no change -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"status": "BEGIN", "id": "5.6.641", "ts_ms": 1486500577125, "event_count": None, "data_collections": None},
        {"status": "END", "id": "5.6.641", "ts_ms": 1486500577691, "event_count": 2,
         "data_collections": [{"data_collection": "ORCLPDB1.DEBEZIUM.CUSTOMER", "event_count": 1}]},
        {"op": "m", "ts_ms": 1559033904961, "source": {"connector": "postgresql", "lsn": 46523128},
         "message": {"prefix": "foo", "content": "Ymfy"}},
    ],
)  # fmt: skip
def test_transaction_metadata_and_logical_messages_yield_no_record(value):
    assert decode_dbz(value, ["ROW_ID"]) == []


# --- Position and sequence_by ----------------------------------------------------------------------


def test_oracle_without_commit_scn_uses_scn_twice():
    value = json.loads(CREATE)
    value["source"]["commit_scn"] = None
    value["source"]["ssn"] = 5
    assert decode_one(value, ["ROW_ID"]).position == (48213377, 48213377, 5)


def test_sequence_by_names_source_fields_in_significance_order():
    assert decode_one(CREATE, ["ROW_ID"], sequence_by=["scn", "ssn"]).position == (48213377, 0)


def test_sequence_by_total_order_reads_the_transaction_block():
    value = json.loads(CREATE)
    value["source"]["txId"] = None
    value["transaction"] = {"id": "5.6.641", "total_order": "12", "data_collection_order": "3"}
    record = decode_one(value, ["ROW_ID"], sequence_by=["commit_scn", "total_order"])
    assert record.position == (48213381, 12)
    assert record.txid == "5.6.641"


def test_sequence_by_a_null_field_is_an_error_naming_it():
    value = json.loads(CREATE)
    value["source"]["commit_scn"] = None
    with pytest.raises(DecodeError, match=r"Debezium message: `source.commit_scn` is null or missing"):
        decode_dbz(value, ["ROW_ID"], sequence_by=["commit_scn", "scn", "ssn"])


def test_a_non_numeric_scn_is_an_error_naming_it():
    value = json.loads(CREATE)
    value["source"]["scn"] = "48213377:1"
    with pytest.raises(DecodeError, match=r"`source.scn` is '48213377:1', not a non-negative integer"):
        decode_dbz(value, ["ROW_ID"])


def test_mysql_position_is_binlog_file_number_pos_row():
    value = {
        "before": None, "after": {"id": 1004, "email": "annek@noanswer.org"}, "op": "u",
        "source": {"connector": "mysql", "db": "inventory", "table": "customers", "file": "mysql-bin.000003",
                   "pos": 484, "row": 1, "ts_ms": 1486500577000, "snapshot": "false", "server_id": 223344},
    }  # fmt: skip
    record = decode_one(value, ["id"])
    assert (record.table, record.position) == ("inventory.customers", (3, 484, 1))


def test_connectors_without_a_default_order_need_sequence_by():
    value = {"before": None, "after": {"id": 1}, "op": "c",
             "source": {"connector": "vitess", "db": "commerce", "table": "customer", "keyspace": "commerce",
                        "shard": "0"}}  # fmt: skip
    with pytest.raises(
        DecodeError,
        match=r"no default position for connector 'vitess' \(there is one for oracle, postgresql, mysql, mariadb, "
        r"sqlserver, db2\); name the fields in the spec's sequence_by",
    ):
        decode_dbz(value, ["id"])


def test_a_connector_without_a_default_reads_the_named_fields_as_integers():
    value = {"before": None, "after": {"id": 1}, "op": "c",
             "source": {"connector": "vitess", "db": "commerce", "table": "customer"},
             "transaction": {"id": "tx-1", "total_order": 3, "data_collection_order": 1}}  # fmt: skip
    assert decode_one(value, ["id"], sequence_by=["total_order"]).position == (3,)


# --- Keys -----------------------------------------------------------------------------------------


def test_a_delete_without_before_takes_its_key_from_the_kafka_key():
    value = (
        FIXTURES.joinpath("flink_debezium_postgres_replica_identity_excerpt.jsonl")
        .read_text()
        .splitlines()[3]
    )
    record = decode_one(value, ["id"], key='{"id":111}')
    assert (record.op, record.key, record.before, record.after) == (Op.DELETE, {"id": "111"}, None, None)
    assert record.position == (34133800,)


def test_a_kafka_key_with_the_schema_wrapper_is_unwrapped():
    value = (
        FIXTURES.joinpath("flink_debezium_postgres_replica_identity_excerpt.jsonl")
        .read_text()
        .splitlines()[3]
    )
    key = {
        "schema": {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"}]},
        "payload": {"id": 111},
    }
    assert decode_one(value, ["id"], key=key).key == {"id": "111"}


def test_a_delete_without_before_or_kafka_key_is_an_error():
    value = (
        FIXTURES.joinpath("flink_debezium_postgres_replica_identity_excerpt.jsonl")
        .read_text()
        .splitlines()[3]
    )
    with pytest.raises(DecodeError, match=r"Debezium message: `before` is null and the Kafka key is null"):
        decode_dbz(value, ["id"])


def test_a_key_column_missing_from_image_and_kafka_key_is_an_error_naming_it():
    with pytest.raises(
        DecodeError, match="`after` image lacks key column ROW_ID and the Kafka key lacks key column ROW_ID"
    ):
        decode_dbz(POSTGRES_UPDATE, ["ROW_ID"], key='{"id":1}')


def test_a_composite_key_is_taken_in_spec_order():
    record = decode_one(CREATE, ["LAST_NAME", "FST_NAME"])
    assert list(record.key.items()) == [("LAST_NAME", "Berg"), ("FST_NAME", "Anna")]


def test_a_boolean_snapshot_flag_of_older_versions_becomes_text():
    value = json.loads(POSTGRES_UPDATE)
    value["source"]["snapshot"] = True
    assert decode_one(value, ["id"]).extra == {"snapshot": "true"}


def test_a_value_handed_over_as_bytearray_decodes_like_bytes():
    as_bytes = message(POSTGRES_UPDATE)
    as_bytearray = KafkaMessage(as_bytes.topic, 1, 7, None, bytearray(as_bytes.value), as_bytes.timestamp_ms)
    assert decode(as_bytearray, format="debezium_json", keys=["id"]) == decode(
        as_bytes, format="debezium_json", keys=["id"]
    )


# --- Values ---------------------------------------------------------------------------------------


def test_unicode_escaped_unicode_and_huge_numbers_are_kept_exactly():
    value = (
        '{"before":null,"after":{"ROW_ID":"1-Ø","FST_NAME":"\\u00c5sa \\ud83d\\ude00","LAST_NAME":"Øst  ",'
        '"AMOUNT":1234567890123456789012345678901234567890.123456789,"RATE":0.1},'
        '"source":{"connector":"oracle","schema":"SIEBEL","table":"S_CONTACT","scn":"1","commit_scn":"2","ssn":0},"op":"c"}'
    )
    record = decode_one(value.encode("utf-8"), ["ROW_ID"])
    assert record.after == {
        "ROW_ID": "1-Ø",
        "FST_NAME": "Åsa 😀",
        "LAST_NAME": "Øst  ",
        "AMOUNT": "1234567890123456789012345678901234567890.123456789",
        "RATE": "0.1",
    }
    assert record.commit_ts is None  # no source.ts_ms


# --- Errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            '{"before":null,"after":{"id":1},',
            r"Debezium message: invalid JSON at byte 32: Expecting property name",
        ),
        ("[1, 2]", r"Debezium message: the change event is an array, not an object"),
        ("null", r"Debezium message: the change event is null, not an object"),
        ('{"schema":{"type":"struct"},"payload":null}', r"the change event is null, not an object"),
        ('{"a":1}{"b":2}', r"invalid JSON at byte 7: extra data after the first document"),
        ('{"id":1,"email":"x"}', r"no `op` field \(not a change event envelope"),
        (
            '{"before":null,"after":{"id":1},"op":"x","source":{}}',
            r"unknown op 'x' \(expected c, r, u, d, t or m\)",
        ),
        ('{"before":null,"after":{"id":1},"op":"c"}', r"`source` is null, not an object"),
        (
            '{"after":{"id":1},"op":"c","source":{"connector":"postgresql","schema":"public","lsn":1}}',
            r"`source.table` is None",
        ),
        (
            '{"after":{"id":1},"op":"c","source":{"connector":"postgresql","table":"t","lsn":1}}',
            r"`source.db` is None",
        ),
        (
            '{"after":null,"op":"u","source":{"connector":"postgresql","schema":"s","table":"t","lsn":1}}',
            r"op u has no `after` image",
        ),
        (
            '{"after":"x","op":"c","source":{"connector":"postgresql","schema":"s","table":"t","lsn":1}}',
            r"`after` is a string",
        ),
        (
            '{"after":{"id":1},"op":"c","source":{"connector":"postgresql","schema":"s","table":"t"}}',
            r"`source.lsn` is null or missing",
        ),
        (
            '{"after":{"id":1},"op":"c","source":{"connector":"postgresql","schema":"s","table":"t","lsn":1,"ts_ms":"x"}}',
            r"`source.ts_ms`: ms 'x' is not an integer",
        ),
        (
            '{"after":{"id":1},"op":"c","source":{"connector":"postgresql","schema":"s","table":"t","lsn":1},"transaction":5}',
            r"`transaction` is a number",
        ),
    ],
)
def test_undecodable_messages_raise_a_precise_reason(value, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_dbz(value, ["id"])


@pytest.mark.parametrize("depth", [300, 100_000])
def test_a_deeply_nested_value_is_refused_and_the_decoder_does_not_crash(depth):
    value = (
        '{"after":{"id":1,"doc":' + "[" * depth + "]" * depth + '},"op":"c",'
        '"source":{"connector":"postgresql","schema":"s","table":"t","lsn":1}}'
    )
    with pytest.raises(DecodeError, match=r"Debezium message: .*arrays and objects nested too deeply"):
        decode_dbz(value, ["id"])


# --- Public fixtures (tests/fixtures/messages/README.md) -------------------------------------------


def test_seatunnel_oracle_snapshot_record():
    record = decode_one((FIXTURES / "seatunnel_debezium_oracle.json").read_bytes(), ["F1"])
    assert (record.table, record.op, record.full_image) == ("QA_SOURCE.ALL_TYPES1", Op.INSERT, True)
    assert record.position == (0, 0, 0)  # scn "0", commit_scn "0", no ssn
    assert record.key == {"F1": "1"}
    assert record.after["F2"] == "1"  # VariableScaleDecimal {"scale":0,"value":"AQ=="}
    assert record.after["F27"] == "1734449012000"  # DATE as epoch ms: no schema, kept as integer text
    assert record.after["F28"] == "1734449014000000"
    assert record.after["F30"] == "2024-12-17T15:23:37.618Z"
    assert record.after["F10"] is None and "F15" not in record.after
    assert len(record.after) == 29  # F1-F14, F16, F18-F23, F25, F27-F33 as sent
    assert (record.txid, record.extra) == (None, {"snapshot": "false"})
    assert record.commit_ts == datetime(2024, 12, 18, 8, 8, 27, 601000)


def test_seatunnel_mysql_snapshot_record_with_empty_binlog_file():
    record = decode_one((FIXTURES / "seatunnel_debezium_mysql.json").read_bytes(), ["id"])
    assert (record.table, record.position) == ("qa_source.all_types", (0, 0, 0))
    assert record.after["f_decimal"] == "9999999.1"
    assert record.after["f_bit1"] == "true"
    assert record.after["f_json"] == "{}"
    assert record.after["f_date"] == "20073"


def test_flink_postgres_fixture_snapshot_update_without_before_and_create():
    lines = (
        FIXTURES.joinpath("flink_debezium_postgres_replica_identity_excerpt.jsonl").read_text().splitlines()
    )
    snapshot, update, create = (decode_one(line, ["id"]) for line in lines[:3])
    assert (snapshot.op, snapshot.full_image, snapshot.extra, snapshot.txid) == (
        Op.INSERT,
        True,
        {"snapshot": "true"},
        "601",
    )
    assert snapshot.after == {
        "id": "101",
        "name": "scooter",
        "description": "Small 2-wheel scooter",
        "weight": "3.14",
    }
    assert (update.op, update.before, update.old_key, update.position) == (Op.UPDATE, None, None, (34131104,))
    assert update.after["weight"] == "1.0"
    assert (create.op, create.key, create.position) == (Op.INSERT, {"id": "111"}, (34133072,))
    assert create.after["description"] == "Big 2-wheel scooter "


def test_flink_postgres_fixture_with_schema():
    record = decode_one((FIXTURES / "flink_debezium_postgres_schema_include_first.json").read_bytes(), ["id"])
    assert record.table == "inventory.products"
    assert record.after == {
        "id": "101",
        "name": "scooter",
        "description": "Small 2-wheel scooter",
        "weight": "3.14",
    }
    assert record.position == (34078720,)


def test_postgres_fixture_with_decimal_and_micro_timestamp_schema():
    record = decode_one((FIXTURES / "postgres_schema_decimal_microtimestamp.json").read_bytes(), ["id"])
    assert record.table == "public.transactions"
    assert record.after == {
        "id": "38352",
        "user_id": "1715",
        "amount": "2358.73",
        "card_type": "MASTERCARD",
        "merchant_id": "40",
        "created_at": "2026-01-07 17:18:03.683652",
    }
    assert (record.position, record.txid, record.extra) == ((646200496,), "4262", {"snapshot": "true"})


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        (
            POSTGRES_UPDATE.replace('"after":{"id":1,', '"after":{"id":null,'),
            None,
            r"`after` image: key column id is null",
        ),
        (
            POSTGRES_UPDATE.replace('"before":{"id":1}', '"before":{"id":null}'),
            None,
            r"`before` image: key column id is null",
        ),
        (
            POSTGRES_UPDATE.replace('"before":{"id":1},"after":{"id":1,', '"before":null,"after":{'),
            '{"id":null}',
            r"the Kafka key: key column id is null",
        ),
    ],
)
def test_a_null_key_value_is_refused_naming_where_it_was(value, key, reason):
    """A null key would become a silver row under a null key: the record goes to the quarantine instead."""
    with pytest.raises(DecodeError, match=reason):
        decode_dbz(value, ["id"], key=key)
