"""GoldenGate for Big Data JSON decoding (transforms/decoders/goldengate.py).

Every example message of docs/cdc-formats.md §1.10 (Oracle's documentation sample, the GIST isMissing
delete, the synthetic Siebel examples A-G), public fixtures (tests/fixtures/messages/goldengate) and
edge cases. Assertions are on exact values: absent vs None, decimal text, positions.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from transforms.changes import ChangeRecord, DecodeError, KafkaCoordinates, KafkaMessage, Op
from transforms.decoders import decode

FIXTURES = Path(__file__).parent.parent / "fixtures" / "messages" / "goldengate"
TCUSTORD_KEYS = ["CUST_CODE", "ORDER_DATE", "PRODUCT_CODE", "ORDER_ID"]


def message(value: str | bytes | None, *, offset: int = 42, key: bytes | None = None) -> KafkaMessage:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return KafkaMessage("S_CONTACT", 3, offset, key, raw, timestamp_ms=1709647333000)


def decode_gg(
    value: str | bytes, keys: list[str], sequence_by: list[str] | None = None
) -> list[ChangeRecord]:
    return decode(message(value), format="goldengate_json", keys=keys, sequence_by=sequence_by)


def decode_one(value: str | bytes, keys: list[str], sequence_by: list[str] | None = None) -> ChangeRecord:
    records = decode_gg(value, keys, sequence_by)
    assert len(records) == 1
    return records[0]


# --- Oracle's documentation sample (ORA-SAMPLE, docs/cdc-formats.md §1.10) ------------------------------

ORA_INSERT = '{"table":"QASOURCE.TCUSTORD","op_type":"I","op_ts":"2015-11-05 18:45:36.000000","current_ts":"2016-10-05T10:15:51.267000","pos":"00000000000000002928","after":{"CUST_CODE":"WILL","ORDER_DATE":"1994-09-30:15:33:00","PRODUCT_CODE":"CAR","ORDER_ID":144,"PRODUCT_PRICE":17520.00,"PRODUCT_AMOUNT":3,"TRANSACTION_ID":100}}'
ORA_UPDATE = '{"table":"QASOURCE.TCUSTORD","op_type":"U","op_ts":"2015-11-05 18:45:39.000000","current_ts":"2016-10-05T10:15:51.310002","pos":"00000000000000004300","before":{"CUST_CODE":"BILL","ORDER_DATE":"1995-12-31:15:00:00","PRODUCT_CODE":"CAR","ORDER_ID":765,"PRODUCT_PRICE":15000.00,"PRODUCT_AMOUNT":3,"TRANSACTION_ID":100},"after":{"CUST_CODE":"BILL","ORDER_DATE":"1995-12-31:15:00:00","PRODUCT_CODE":"CAR","ORDER_ID":765,"PRODUCT_PRICE":14000.00}}'
ORA_DELETE = '{"table":"QASOURCE.TCUSTORD","op_type":"D","op_ts":"2015-11-05 18:45:39.000000","current_ts":"2016-10-05T10:15:51.312000","pos":"00000000000000005272","before":{"CUST_CODE":"DAVE","ORDER_DATE":"1993-11-03:07:51:35","PRODUCT_CODE":"PLANE","ORDER_ID":600,"PRODUCT_PRICE":135000.00,"PRODUCT_AMOUNT":2,"TRANSACTION_ID":200}}'
ORA_TRUNCATE = '{"table":"QASOURCE.TCUSTORD","op_type":"T","op_ts":"2015-11-05 18:45:39.000000","current_ts":"2016-10-05T10:15:51.312001","pos":"00000000000000005480"}'


def test_insert_is_a_full_image_keyed_from_after_with_exact_values():
    record = decode_one(ORA_INSERT, TCUSTORD_KEYS)
    assert record == ChangeRecord(
        table="QASOURCE.TCUSTORD",
        op=Op.INSERT,
        key={
            "CUST_CODE": "WILL",
            "ORDER_DATE": "1994-09-30:15:33:00",
            "PRODUCT_CODE": "CAR",
            "ORDER_ID": "144",
        },
        before=None,
        after={
            "CUST_CODE": "WILL",
            "ORDER_DATE": "1994-09-30:15:33:00",  # a date string is kept exactly as sent
            "PRODUCT_CODE": "CAR",
            "ORDER_ID": "144",
            "PRODUCT_PRICE": "17520.00",  # the trail's decimal text, scale kept
            "PRODUCT_AMOUNT": "3",
            "TRANSACTION_ID": "100",
        },
        full_image=True,
        position=(2928,),
        kafka=KafkaCoordinates("S_CONTACT", 3, 42, 1709647333000),
        commit_ts=datetime(2015, 11, 5, 18, 45, 36),
        txid=None,
        old_key=None,
        extra={},
    )


def test_compressed_update_keeps_absent_columns_absent_and_is_not_a_full_image():
    record = decode_one(ORA_UPDATE, TCUSTORD_KEYS)
    assert record.op is Op.UPDATE
    assert record.full_image is False
    assert record.after == {
        "CUST_CODE": "BILL",
        "ORDER_DATE": "1995-12-31:15:00:00",
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": "765",
        "PRODUCT_PRICE": "14000.00",
    }
    assert "PRODUCT_AMOUNT" not in record.after and "TRANSACTION_ID" not in record.after
    assert record.before["PRODUCT_PRICE"] == "15000.00"
    assert record.key == {
        "CUST_CODE": "BILL",
        "ORDER_DATE": "1995-12-31:15:00:00",
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": "765",
    }
    assert record.old_key is None  # same key before and after: not a key change
    assert record.position == (4300,)
    assert record.commit_ts == datetime(2015, 11, 5, 18, 45, 39)


def test_delete_is_keyed_from_before_and_has_no_after():
    record = decode_one(ORA_DELETE, TCUSTORD_KEYS)
    assert record.op is Op.DELETE
    assert record.key == {
        "CUST_CODE": "DAVE",
        "ORDER_DATE": "1993-11-03:07:51:35",
        "PRODUCT_CODE": "PLANE",
        "ORDER_ID": "600",
    }
    assert record.after is None
    assert record.before["PRODUCT_PRICE"] == "135000.00"
    assert record.full_image is False
    assert record.position == (5272,)


def test_truncate_has_an_empty_key_and_no_images():
    record = decode_one(ORA_TRUNCATE, TCUSTORD_KEYS)
    assert (record.table, record.op, record.key, record.before, record.after) == (
        "QASOURCE.TCUSTORD",
        Op.TRUNCATE,
        {},
        None,
        None,
    )
    assert record.full_image is False
    assert record.position == (5480,)


def test_the_oracle_samples_concatenated_in_one_tx_mode_value_give_one_record_each_in_order():
    value = "\n".join([ORA_INSERT, ORA_UPDATE, ORA_DELETE, ORA_TRUNCATE]) + "\n"
    records = decode_gg(value, TCUSTORD_KEYS)
    assert [(r.op, r.position) for r in records] == [
        (Op.INSERT, (2928,)),
        (Op.UPDATE, (4300,)),
        (Op.DELETE, (5272,)),
        (Op.TRUNCATE, (5480,)),
    ]
    assert {r.kafka.offset for r in records} == {42}


# --- GIST: primary_keys, tokens and the includeIsMissingFields variant ------------------------------

GIST_DELETE = '{"table":"GG.TCUSTORD","op_type":"D","op_ts":"2013-06-02 22:14:41.000000","current_ts":"2015-09-18T10:17:49.899000","pos":"00000000000000004338","primary_keys":["CUST_CODE","ORDER_DATE","PRODUCT_CODE","ORDER_ID"],"tokens":{"6":"9.0.80330","L":"206080450","R":"AADPkvAAEAAEqLzAAC"},"before":{"CUST_CODE":"DAVE","CUST_CODE_isMissing":false,"ORDER_DATE":"1993-11-03:07:51:35","ORDER_DATE_isMissing":false,"PRODUCT_CODE":"PLANE","PRODUCT_CODE_isMissing":false,"ORDER_ID":"600","ORDER_ID_isMissing":false,"PRODUCT_PRICE":null,"PRODUCT_PRICE_isMissing":true,"PRODUCT_AMOUNT":null,"PRODUCT_AMOUNT_isMissing":true,"TRANSACTION_ID":null,"TRANSACTION_ID_isMissing":true},"after":null}'


def test_is_missing_columns_are_absent_and_the_flags_themselves_are_dropped():
    record = decode_one(GIST_DELETE, TCUSTORD_KEYS)
    assert record.before == {
        "CUST_CODE": "DAVE",
        "ORDER_DATE": "1993-11-03:07:51:35",
        "PRODUCT_CODE": "PLANE",
        "ORDER_ID": "600",  # string-typed number (treatAllColumnsAsStrings) stays the same text
    }
    assert record.op is Op.DELETE
    assert record.after is None
    assert record.key == {
        "CUST_CODE": "DAVE",
        "ORDER_DATE": "1993-11-03:07:51:35",
        "PRODUCT_CODE": "PLANE",
        "ORDER_ID": "600",
    }


def test_tokens_go_to_extra_and_token_6_is_the_transaction_id():
    record = decode_one(GIST_DELETE, TCUSTORD_KEYS)
    assert record.extra == {"6": "9.0.80330", "L": "206080450", "R": "AADPkvAAEAAEqLzAAC"}
    assert record.txid == "9.0.80330"
    assert record.position == (4338,)
    assert record.commit_ts == datetime(2013, 6, 2, 22, 14, 41)


def test_an_xid_field_wins_over_token_6_as_transaction_id():
    value = json.loads(GIST_DELETE)
    value["xid"] = "0.4.17.1234"
    assert decode_one(json.dumps(value), TCUSTORD_KEYS).txid == "0.4.17.1234"


def test_is_missing_false_with_an_explicit_null_keeps_the_null():
    value = (
        '{"table":"SIEBEL.S_CONTACT","op_type":"U","op_ts":"2024-04-11 08:15:43.000000","pos":"00000000130000018830",'
        '"after":{"ROW_ID":"1-4XK2P","ROW_ID_isMissing":false,"CREATED":null,"CREATED_isMissing":true,'
        '"EMAIL_ADDR":"anna@berg.se","EMAIL_ADDR_isMissing":false,"X_SEGMENT_CD":null,"X_SEGMENT_CD_isMissing":false}}'
    )
    record = decode_one(value, ["ROW_ID"])
    assert record.after == {"ROW_ID": "1-4XK2P", "EMAIL_ADDR": "anna@berg.se", "X_SEGMENT_CD": None}
    assert "CREATED" not in record.after


def test_an_insert_with_a_column_flagged_missing_is_not_a_full_image():
    value = (
        '{"table":"SIEBEL.S_CONTACT","op_type":"I","op_ts":"2024-04-11 08:15:43.000000","pos":"7",'
        '"after":{"ROW_ID":"1-4XK2P","ROW_ID_isMissing":false,"NOTE":null,"NOTE_isMissing":true}}'
    )
    record = decode_one(value, ["ROW_ID"])
    assert record.after == {"ROW_ID": "1-4XK2P"}
    assert record.full_image is False


def test_a_column_flagged_missing_that_carries_a_value_is_an_error():
    value = '{"table":"T.X","op_type":"I","op_ts":"2024-04-11 08:15:43","pos":"7","after":{"ID":1,"A":"x","A_isMissing":true}}'
    with pytest.raises(DecodeError, match="`after` column A is flagged missing but carries the value 'x'"):
        decode_gg(value, ["ID"])


def test_a_column_flagged_present_but_absent_is_an_error():
    value = '{"table":"T.X","op_type":"I","op_ts":"2024-04-11 08:15:43","pos":"7","after":{"ID":1,"A_isMissing":false}}'
    with pytest.raises(DecodeError, match="`after` has A_isMissing: false but no column A"):
        decode_gg(value, ["ID"])


# --- Synthetic Siebel examples A-G (docs/cdc-formats.md §1.10) ----------------------------------------

SIEBEL_A_INSERT = """{"table":"SIEBEL.S_CONTACT","op_type":"I","op_ts":"2024-03-05 14:02:11.000000","current_ts":"2024-03-05T14:02:13.482000","pos":"00000000120000004512","primary_keys":["ROW_ID"],
 "after":{"ROW_ID":"1-4XK2P","CREATED":"2024-03-05 14:02:10","CREATED_BY":"0-1","LAST_UPD":"2024-03-05 14:02:10","LAST_UPD_BY":"0-1","MODIFICATION_NUM":0,"CONFLICT_ID":"0","DB_LAST_UPD":"2024-03-05 14:02:10","DB_LAST_UPD_SRC":"User","PAR_ROW_ID":"1-4XK2P","FST_NAME":"Anna","LAST_NAME":"Berg","EMAIL_ADDR":"anna.berg@example.com","PR_POSTN_ID":"No Match Row Id","EMP_FLG":"N","X_SEGMENT_CD":null}}"""
SIEBEL_B_FULL_UPDATE = """{"table":"SIEBEL.S_CONTACT","op_type":"U","op_ts":"2024-04-11 08:15:43.000000","current_ts":"2024-04-11T08:15:44.120000","pos":"00000000130000018830","primary_keys":["ROW_ID"],
 "before":{"ROW_ID":"1-4XK2P","CREATED":"2024-03-05 14:02:10","CREATED_BY":"0-1","LAST_UPD":"2024-03-05 14:02:10","LAST_UPD_BY":"0-1","MODIFICATION_NUM":0,"CONFLICT_ID":"0","DB_LAST_UPD":"2024-03-05 14:02:10","DB_LAST_UPD_SRC":"User","PAR_ROW_ID":"1-4XK2P","FST_NAME":"Anna","LAST_NAME":"Berg","EMAIL_ADDR":"anna.berg@example.com","PR_POSTN_ID":"No Match Row Id","EMP_FLG":"N","X_SEGMENT_CD":null},
 "after": {"ROW_ID":"1-4XK2P","CREATED":"2024-03-05 14:02:10","CREATED_BY":"0-1","LAST_UPD":"2024-04-11 08:15:42","LAST_UPD_BY":"1-2RT8","MODIFICATION_NUM":1,"CONFLICT_ID":"0","DB_LAST_UPD":"2024-04-11 08:15:42","DB_LAST_UPD_SRC":"User","PAR_ROW_ID":"1-4XK2P","FST_NAME":"Anna","LAST_NAME":"Berg","EMAIL_ADDR":"anna@berg.se","PR_POSTN_ID":"1-2RT9","EMP_FLG":"N","X_SEGMENT_CD":"GOLD"}}"""
SIEBEL_C_COMPRESSED_UPDATE = """{"table":"SIEBEL.S_CONTACT","op_type":"U","op_ts":"2024-04-11 08:15:43.000000","current_ts":"2024-04-11T08:15:44.120000","pos":"00000000130000018830","primary_keys":["ROW_ID"],
 "before":{"ROW_ID":"1-4XK2P","LAST_UPD":"2024-03-05 14:02:10","LAST_UPD_BY":"0-1","MODIFICATION_NUM":0,"DB_LAST_UPD":"2024-03-05 14:02:10","EMAIL_ADDR":"anna.berg@example.com","X_SEGMENT_CD":null},
 "after": {"ROW_ID":"1-4XK2P","LAST_UPD":"2024-04-11 08:15:42","LAST_UPD_BY":"1-2RT8","MODIFICATION_NUM":1,"DB_LAST_UPD":"2024-04-11 08:15:42","EMAIL_ADDR":"anna@berg.se","X_SEGMENT_CD":"GOLD"}}"""
SIEBEL_D_DELETE = """{"table":"SIEBEL.S_CONTACT","op_type":"D","op_ts":"2024-05-02 19:00:01.000000","current_ts":"2024-05-02T19:00:02.007000","pos":"00000000150000000991","primary_keys":["ROW_ID"],"before":{"ROW_ID":"1-4XK2P"}}"""
SIEBEL_E_KEY_CHANGE = """{"table":"SIEBEL.S_LST_OF_VAL","op_type":"U","op_ts":"2024-05-03 10:11:12.000000","current_ts":"2024-05-03T10:11:12.950000","pos":"00000000150000022740","primary_keys":["ROW_ID"],
 "before":{"ROW_ID":"1-7QW3A","TYPE":"CONTACT_TYPE","NAME":"Partner","VAL":"Partner","LANG_ID":"ENU","ACTIVE_FLG":"Y","MODIFICATION_NUM":4},
 "after": {"ROW_ID":"1-9ZZ01","TYPE":"CONTACT_TYPE","NAME":"Partner","VAL":"Partner","LANG_ID":"ENU","ACTIVE_FLG":"Y","MODIFICATION_NUM":5}}"""
SIEBEL_F_TRUNCATE = """{"table":"SIEBEL.S_LST_OF_VAL","op_type":"T","op_ts":"2024-05-04 02:00:00.000000","current_ts":"2024-05-04T02:00:00.412000","pos":"00000000160000000120"}"""


def test_siebel_insert_keeps_nulls_as_none_and_numbers_as_text():
    record = decode_one(SIEBEL_A_INSERT, ["ROW_ID"])
    assert record.op is Op.INSERT and record.full_image is True
    assert record.key == {"ROW_ID": "1-4XK2P"}
    assert record.after["X_SEGMENT_CD"] is None
    assert record.after["MODIFICATION_NUM"] == "0"
    assert record.after["PR_POSTN_ID"] == "No Match Row Id"
    assert len(record.after) == 16
    assert record.position == (120000004512,)
    assert record.commit_ts == datetime(2024, 3, 5, 14, 2, 11)


def test_siebel_update_carrying_every_column_is_still_not_known_to_be_full():
    record = decode_one(SIEBEL_B_FULL_UPDATE, ["ROW_ID"])
    assert record.op is Op.UPDATE
    assert record.full_image is False
    assert len(record.after) == 16
    assert record.after["X_SEGMENT_CD"] == "GOLD" and record.before["X_SEGMENT_CD"] is None
    assert record.old_key is None


def test_siebel_compressed_update_carries_only_the_logged_columns():
    record = decode_one(SIEBEL_C_COMPRESSED_UPDATE, ["ROW_ID"])
    assert record.after == {
        "ROW_ID": "1-4XK2P",
        "LAST_UPD": "2024-04-11 08:15:42",
        "LAST_UPD_BY": "1-2RT8",
        "MODIFICATION_NUM": "1",
        "DB_LAST_UPD": "2024-04-11 08:15:42",
        "EMAIL_ADDR": "anna@berg.se",
        "X_SEGMENT_CD": "GOLD",
    }
    assert "FST_NAME" not in record.after and "FST_NAME" not in record.before
    assert record.before["X_SEGMENT_CD"] is None
    assert record.position == (130000018830,)


def test_siebel_compressed_delete_holds_only_the_key():
    record = decode_one(SIEBEL_D_DELETE, ["ROW_ID"])
    assert (record.op, record.key, record.before, record.after) == (
        Op.DELETE,
        {"ROW_ID": "1-4XK2P"},
        {"ROW_ID": "1-4XK2P"},
        None,
    )
    assert record.position == (150000000991,)


def test_primary_key_change_is_one_update_keyed_by_the_new_key_with_the_old_key():
    record = decode_one(SIEBEL_E_KEY_CHANGE, ["ROW_ID"])
    assert record.op is Op.UPDATE
    assert record.key == {"ROW_ID": "1-9ZZ01"}
    assert record.old_key == {"ROW_ID": "1-7QW3A"}
    assert record.after["MODIFICATION_NUM"] == "5" and record.before["MODIFICATION_NUM"] == "4"
    assert record.table == "SIEBEL.S_LST_OF_VAL"


def test_primary_key_change_of_a_composite_key_needs_only_one_differing_column():
    record = decode_one(SIEBEL_E_KEY_CHANGE, ["TYPE", "ROW_ID"])
    assert record.key == {"TYPE": "CONTACT_TYPE", "ROW_ID": "1-9ZZ01"}
    assert record.old_key == {"TYPE": "CONTACT_TYPE", "ROW_ID": "1-7QW3A"}


def test_an_update_without_before_has_no_old_key():
    value = json.loads(SIEBEL_E_KEY_CHANGE)
    del value["before"]
    record = decode_one(json.dumps(value), ["ROW_ID"])
    assert (record.before, record.old_key, record.key) == (None, None, {"ROW_ID": "1-9ZZ01"})


def test_siebel_truncate():
    record = decode_one(SIEBEL_F_TRUNCATE, ["ROW_ID"])
    assert (record.table, record.op, record.key, record.before, record.after, record.position) == (
        "SIEBEL.S_LST_OF_VAL",
        Op.TRUNCATE,
        {},
        None,
        None,
        (160000000120,),
    )


def siebel_g_documents() -> list[str]:
    """(G): an _X change and the parent bump of the same transaction, plus a third operation."""
    x_update = (
        '{"table":"SIEBEL.S_CONTACT_X","op_type":"U","op_ts":"2024-06-01 09:00:00.000000","pos":"00000000170000000100",'
        '"before":{"ROW_ID":"1-4XK2P","ATTRIB_48":"Retail"},"after":{"ROW_ID":"1-4XK2P","ATTRIB_48":"Telecom"}}'
    )
    parent_bump = (
        '{"table":"SIEBEL.S_CONTACT","op_type":"U","op_ts":"2024-06-01 09:00:00.000000","pos":"00000000170000000200",'
        '"after":{"ROW_ID":"1-4XK2P","LAST_UPD":"2024-06-01 09:00:00","MODIFICATION_NUM":2}}'
    )
    insert = (
        '{"table":"SIEBEL.S_CONTACT","op_type":"I","op_ts":"2024-06-01 09:00:00.000000","pos":"00000000170000000300",'
        '"after":{"ROW_ID":"1-5AB","FST_NAME":"Björn"}}'
    )
    return [x_update, parent_bump, insert]


@pytest.mark.parametrize("separator", ["", "\n", "\r\n", " \n\t "])
def test_tx_mode_value_with_three_documents_gives_three_records_whatever_the_separator(separator):
    records = decode_gg(separator.join(siebel_g_documents()), ["ROW_ID"])
    assert [(r.table, r.op, r.key, r.position) for r in records] == [
        ("SIEBEL.S_CONTACT_X", Op.UPDATE, {"ROW_ID": "1-4XK2P"}, (170000000100,)),
        ("SIEBEL.S_CONTACT", Op.UPDATE, {"ROW_ID": "1-4XK2P"}, (170000000200,)),
        ("SIEBEL.S_CONTACT", Op.INSERT, {"ROW_ID": "1-5AB"}, (170000000300,)),
    ]
    assert records[1].after == {
        "ROW_ID": "1-4XK2P",
        "LAST_UPD": "2024-06-01 09:00:00",
        "MODIFICATION_NUM": "2",
    }
    assert records[2].after["FST_NAME"] == "Björn"


def test_tx_mode_error_names_the_document_and_its_byte_offset():
    docs = siebel_g_documents()
    docs[2] = docs[2].replace('"op_type":"I"', '"op_type":"X"')
    value = "\n".join(docs)
    offset = len("\n".join(docs[:2]).encode()) + 1
    with pytest.raises(DecodeError, match=rf"document 3 of 3, at byte {offset}\): unknown op_type 'X'"):
        decode_gg(value, ["ROW_ID"])


def test_tx_mode_value_with_a_broken_second_document_is_an_error_naming_the_byte():
    docs = siebel_g_documents()
    value = docs[0] + "\n" + docs[1][:-1]  # the second document is cut short
    with pytest.raises(DecodeError, match=r"GoldenGate message: invalid JSON at byte \d+"):
        decode_gg(value, ["ROW_ID"])


# --- Position: pos, or csn then pos --------------------------------------------------------------

CSN_UPDATE = (
    '{"table":"SIEBEL.S_CONTACT","op_type":"U","op_ts":"2024-04-11 08:15:43.123456789","pos":"00000000130000018830",'
    '"csn":"48213381","xid":"0.4.17.1234","after":{"ROW_ID":"1-4XK2P","EMP_FLG":"Y"}}'
)


def test_position_defaults_to_pos_even_when_csn_is_present():
    assert decode_one(CSN_UPDATE, ["ROW_ID"]).position == (130000018830,)


def test_sequence_by_csn_then_pos_gives_a_two_part_position():
    record = decode_one(CSN_UPDATE, ["ROW_ID"], sequence_by=["csn", "pos"])
    assert record.position == (48213381, 130000018830)
    assert record.txid == "0.4.17.1234"
    assert record.commit_ts == datetime(2024, 4, 11, 8, 15, 43, 123456)  # nanoseconds truncated, not rounded


def test_sequence_by_a_field_the_message_lacks_is_an_error_naming_it():
    with pytest.raises(DecodeError, match=r"GoldenGate message: `csn` is null or missing"):
        decode_gg(SIEBEL_D_DELETE, ["ROW_ID"], sequence_by=["csn", "pos"])


@pytest.mark.parametrize("pos", ['"0000000013-0000018830"', '"12a"', '""', "-5", "12.5", "null", "true"])
def test_a_non_numeric_pos_is_an_error_naming_pos(pos):
    value = f'{{"table":"T.X","op_type":"D","op_ts":"2024-04-11 08:15:43","pos":{pos},"before":{{"ID":1}}}}'
    with pytest.raises(DecodeError, match="`pos` is"):
        decode_gg(value, ["ID"])


def test_a_numeric_pos_is_accepted():
    value = '{"table":"T.X","op_type":"D","op_ts":"2024-04-11 08:15:43","pos":2928,"before":{"ID":1}}'
    assert decode_one(value, ["ID"]).position == (2928,)


# --- Values ---------------------------------------------------------------------------------------


def test_unicode_and_escaped_unicode_values_are_kept_exactly():
    value = (
        '{"table":"SIEBEL.S_CONTACT","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1",'
        '"after":{"ROW_ID":"1-Ø1","FST_NAME":"Åsa","LAST_NAME":"\\u00d8stberg \\ud83d\\ude00","JOB_TITLE":"Chef  "}}'
    )
    record = decode_one(value.encode("utf-8"), ["ROW_ID"])
    assert record.key == {"ROW_ID": "1-Ø1"}
    assert record.after == {
        "ROW_ID": "1-Ø1",
        "FST_NAME": "Åsa",
        "LAST_NAME": "Østberg 😀",
        "JOB_TITLE": "Chef  ",
    }


def test_huge_decimals_keep_every_digit():
    digits = "123456789012345678901234567890123456789012.0000000001"
    value = f'{{"table":"T.X","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1","after":{{"ID":99999999999999999999999999999999999999999,"AMOUNT":{digits}}}}}'
    record = decode_one(value, ["ID"])
    assert record.after == {"ID": "99999999999999999999999999999999999999999", "AMOUNT": digits}


def test_nested_values_become_canonical_json_text():
    value = '{"table":"T.X","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1","after":{"ID":1,"DOC":{"b":1.10,"a":[true,null]}}}'
    assert decode_one(value, ["ID"]).after["DOC"] == '{"a":[true,null],"b":1.10}'


def test_before_and_after_null_are_the_same_as_absent():
    with_nulls = (
        '{"table":"T.X","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1","before":null,"after":{"ID":1}}'
    )
    without = '{"table":"T.X","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1","after":{"ID":1}}'
    assert decode_one(with_nulls, ["ID"]) == decode_one(without, ["ID"])


def test_key_order_in_the_message_does_not_matter():
    reordered = '{"after":{"ID":1},"pos":"1","op_ts":"2024-03-05 14:02:11","op_type":"I","table":"T.X"}'
    ordered = '{"table":"T.X","op_type":"I","op_ts":"2024-03-05 14:02:11","pos":"1","after":{"ID":1}}'
    assert decode_one(reordered, ["ID"]) == decode_one(ordered, ["ID"])


def test_primary_keys_in_the_message_do_not_override_the_spec_keys():
    record = decode_one(SIEBEL_A_INSERT, ["PAR_ROW_ID", "EMAIL_ADDR"])
    assert record.key == {"PAR_ROW_ID": "1-4XK2P", "EMAIL_ADDR": "anna.berg@example.com"}


def test_a_missing_op_ts_leaves_commit_ts_empty():
    record = decode_one('{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1}}', ["ID"])
    assert record.commit_ts is None


# --- Errors: a precise reason, never a silent drop -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            '{"table":"T.X","op_type":"I",',
            r"GoldenGate message: invalid JSON at byte 29: Expecting property name",
        ),
        ('{"table":"T.X" "op_type":"I"}', r"GoldenGate message: invalid JSON at byte 15: Expecting ','"),
        ("[1, 2]", r"GoldenGate message: the JSON document is an array, not an object"),
        ('"I"', r"GoldenGate message: the JSON document is a string, not an object"),
        ("", r"GoldenGate message: the value holds no JSON document"),
        (
            '{"table":"T.X","op_ts":"2024-03-05 14:02:11","pos":"1","after":{"ID":1}}',
            r"GoldenGate message: no `op_type` field",
        ),
        (
            '{"table":"T.X","op_type":"X","pos":"1","after":{"ID":1}}',
            r"unknown op_type 'X' \(expected I, U, D or T\)",
        ),
        ('{"table":"T.X","op_type":"i","pos":"1","after":{"ID":1}}', r"unknown op_type 'i'"),
        ('{"table":"T.X","op_type":1,"pos":"1","after":{"ID":1}}', r"`op_type` is 1, not a non-empty string"),
        ('{"op_type":"I","pos":"1","after":{"ID":1}}', r"no `table` field"),
        (
            '{"table":"T.X","op_type":"I","pos":"1","after":{"NAME":"x"}}',
            r"GoldenGate message: `after` image lacks key column ID",
        ),
        ('{"table":"T.X","op_type":"I","pos":"1"}', r"op_type I has no `after` image"),
        # a null key would become a silver row under a null key
        (
            '{"table":"T.X","op_type":"I","pos":"1","after":{"ID":null,"N":"x"}}',
            r"`after` image: key column ID is null",
        ),
        (
            '{"table":"T.X","op_type":"U","pos":"1","after":{"ID":null,"N":"x"}}',
            r"`after` image: key column ID is null",
        ),
        (
            '{"table":"T.X","op_type":"D","pos":"1","before":{"ID":null}}',
            r"`before` image: key column ID is null",
        ),
        (
            '{"table":"T.X","op_type":"U","pos":"1","before":{"ID":null},"after":{"ID":1,"N":"x"}}',
            r"`before` image: key column ID is null",
        ),
        ('{"table":"T.X","op_type":"U","pos":"1","before":{"ID":1}}', r"op_type U has no `after` image"),
        ('{"table":"T.X","op_type":"D","pos":"1","after":{"ID":1}}', r"op_type D has no `before` image"),
        (
            '{"table":"T.X","op_type":"I","pos":"1","after":[1]}',
            r"`after` is an array, not an object or null",
        ),
        (
            '{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1},"tokens":"x"}',
            r"`tokens` is a string, not an object",
        ),
        (
            '{"table":"T.X","op_type":"I","op_ts":"05/03/2024","pos":"1","after":{"ID":1}}',
            r"`op_ts`: timestamp '05/03/2024' does not match",
        ),
        ('{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1,"ID":2}}', r"repeats the field 'ID'"),
        (
            '{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1,"N":"\\udc00"}}',
            r"`after` column N: string holds an unpaired",
        ),
    ],
)
def test_undecodable_messages_raise_a_precise_reason(value, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_gg(value, ["ID"])


@pytest.mark.parametrize("depth", [300, 100_000])
def test_a_deeply_nested_column_is_refused_and_the_decoder_does_not_crash(depth):
    value = '{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1,"N":' + "[" * depth + "]" * depth + "}}"
    with pytest.raises(DecodeError, match=r"GoldenGate message: .*arrays and objects nested too deeply"):
        decode_gg(value, ["ID"])


def test_a_null_kafka_value_is_an_error_for_goldengate():
    with pytest.raises(DecodeError, match="the Kafka value is null"):
        decode(message(None), format="goldengate_json", keys=["ID"])


def test_an_unknown_format_or_no_keys_is_a_usage_error_not_a_decode_error():
    with pytest.raises(ValueError, match="unknown format 'avro'"):
        decode(message(ORA_TRUNCATE), format="avro", keys=["ID"])
    with pytest.raises(ValueError, match="keys must name at least one column"):
        decode(message(ORA_TRUNCATE), format="goldengate_json", keys=[])


# --- Public fixtures (tests/fixtures/messages/README.md) -----------------------------------------


def test_navikt_arena_real_update_decodes_every_column_with_nulls_kept():
    record = decode_one(
        (FIXTURES / "navikt_arena_tiltakdeltakerendret_v1.json").read_bytes(), ["TILTAKDELTAKER_ID"]
    )
    assert record.table == "SIAMO.TILTAKDELTAKER"
    assert record.op is Op.UPDATE and record.full_image is False
    assert record.key == {"TILTAKDELTAKER_ID": "123456"}
    assert record.position == (50058769820,)
    assert record.commit_ts == datetime(2022, 1, 12, 0, 0, 6)
    assert len(record.before) == len(record.after) == 31
    assert record.after["PROSENT_DELTID"] == "40"
    assert record.after["REG_DATO"] == "2022-01-11 11:00:40"
    assert record.after["PRIORITET"] is None
    assert record.old_key is None


def test_navikt_arena_text_with_nul_characters_is_kept_exactly():
    raw = (FIXTURES / "navikt_arena_tiltakgjennomforingendret_v1_bad_unicode.json").read_bytes()
    record = decode_one(raw, ["TILTAKGJENNOMFORING_ID"])
    assert record.after["VURDERING_GJENNOMFORING"] == "\x00\x00Vurdering\x00"
    assert record.after["AETAT_FREMMOTEREG"] == "0136"
    assert record.position == (50078524159,)


def test_flink_ogg_fixture_lines_decode_with_23_digit_pos_and_unknown_fields_ignored():
    lines = (FIXTURES / "flink_ogg_data_excerpt.jsonl").read_text().splitlines()
    records = [decode_one(line, ["id"]) for line in lines]
    assert [(r.op, r.key, r.position) for r in records] == [
        (Op.INSERT, {"id": "101"}, (143,)),
        (Op.INSERT, {"id": "106"}, (148,)),
        (Op.UPDATE, {"id": "106"}, (152,)),
        (Op.INSERT, {"id": "110"}, (154,)),
        (Op.DELETE, {"id": "111"}, (158,)),
    ]
    assert records[0].after["weight"] == "3.140000104904175"  # no float round trip
    assert records[1].after["weight"] == "1"
    assert records[2].before["description"] == "16oz carpenter's hammer"
    assert records[2].after["description"] == "18oz carpenter hammer"
    assert "source" not in records[3].after  # the stray top-level `source` is not row data
    assert records[4].before["description"] == "Big 2-wheel scooter "
    assert records[4].commit_ts == datetime(2020, 5, 13, 17, 32, 24, 455000)


def test_the_whole_flink_excerpt_as_one_tx_mode_value_gives_five_records():
    records = decode_gg((FIXTURES / "flink_ogg_data_excerpt.jsonl").read_bytes(), ["id"])
    assert [r.position for r in records] == [(143,), (148,), (152,), (154,), (158,)]


def test_seatunnel_ogg_fixture_with_primary_keys_and_current_ts():
    lines = (FIXTURES / "seatunnel_ogg_data_filter_table_excerpt.jsonl").read_text().splitlines()
    insert, update = (decode_one(line, ["id"]) for line in lines)
    assert (insert.op, insert.key, insert.full_image, insert.position) == (
        Op.INSERT,
        {"id": "101"},
        True,
        (143,),
    )
    assert (update.op, update.position) == (Op.UPDATE, (157,))
    assert update.before["weight"] == "5.179999828338623" and update.after["weight"] == "5.170000076293945"


def test_a_null_in_a_non_key_column_is_a_value():
    record = decode_one('{"table":"T.X","op_type":"I","pos":"1","after":{"ID":1,"N":null}}', ["ID"])
    assert (record.key, record.after) == ({"ID": "1"}, {"ID": "1", "N": None})
