"""Generated messages are GoldenGate for Big Data op-modeled JSON as in docs/cdc-formats.md §1, and
the CRM behaviours of §3 (transactions, extension touches, cascades, key changes, truncate + reload,
list-of-values renames, No-Match sentinels, Y/N flags, CHAR padding) are really in the stream."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal

import pytest

from devtools.workload import WorkloadConfig, generate_workload, load_catalogue
from devtools.workload.catalogue import GOLDENGATE_DATE, ORACLE_DATE

TOP_LEVEL_ORDER = ["table", "op_type", "op_ts", "current_ts", "pos", "primary_keys", "xid", "csn", "txind"]
OP_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
CURRENT_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
DATE_TEXT = {  # a table's date_format -> the shape of its DATE values
    ORACLE_DATE: re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"),
    GOLDENGATE_DATE: re.compile(r"^\d{4}-\d\d-\d\d:\d\d:\d\d:\d\d$"),  # GoldenGate's default form
}
TOUCH = {"LAST_UPD", "LAST_UPD_BY", "MODIFICATION_NUM", "DB_LAST_UPD"}
SENTINEL = "No Match Row Id"


class Stream:
    """A workload and its messages parsed once: (topic, key, value bytes, parsed value)."""

    def __init__(self, **settings):
        self.workload = generate_workload(WorkloadConfig(initial_rows=150, changes=900, **settings))
        self.parsed = [json.loads(value, parse_float=Decimal) for _, _, value in self.workload.messages]
        self.transactions: dict[str, list[int]] = defaultdict(list)
        for index, message in enumerate(self.parsed):
            self.transactions[message["xid"]].append(index)

    def of(self, table: str, op: str):
        return [m for m in self.parsed if m["table"] == f"SIEBEL.{table}" and m["op_type"] == op]

    def transaction_of(self, index: int) -> list[dict]:
        return [self.parsed[i] for i in self.transactions[self.parsed[index]["xid"]]]


@pytest.fixture(scope="module")
def stream():
    return Stream()


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def test_every_message_has_the_reference_fields_in_the_default_order(stream, catalogue):
    sources = {t.source: t for t in catalogue.tables.values()}
    for (topic, _, value), message in zip(stream.workload.messages, stream.parsed, strict=True):
        assert list(message)[: len(TOP_LEVEL_ORDER)] == TOP_LEVEL_ORDER
        assert set(message) - set(TOP_LEVEL_ORDER) <= {"before", "after"}
        assert message["table"] in sources and topic == f"crm.{sources[message['table']].name}"
        assert message["op_type"] in {"I", "U", "D", "T"}
        assert OP_TS.match(message["op_ts"]) and CURRENT_TS.match(message["current_ts"])
        assert re.fullmatch(r"\d{20}", message["pos"]) and message["primary_keys"] == ["ROW_ID"]
        assert message["current_ts"].replace("T", " ") > message["op_ts"]
        assert value.decode("utf-8").startswith('{"table":')


def test_pos_strictly_increases_over_the_whole_trail(stream):
    positions = [int(m["pos"]) for m in stream.parsed]
    assert all(a < b for a, b in zip(positions, positions[1:], strict=False))
    assert len({p[:10] for p in (m["pos"] for m in stream.parsed)}) > 1  # the trail switched files


def test_inserts_carry_every_column_and_no_before_image(stream, catalogue):
    for message in (m for m in stream.parsed if m["op_type"] == "I"):
        table = catalogue.table_by_source(message["table"])
        assert list(message["after"]) == table.column_names
        assert "before" not in message
        for column in ("CREATED", "LAST_UPD", "DB_LAST_UPD"):
            assert DATE_TEXT[table.date_format].match(message["after"][column])


def test_some_tables_write_their_dates_in_goldengates_default_colon_form(stream, catalogue):
    colon = {t.source: t for t in catalogue.tables.values() if t.date_format == GOLDENGATE_DATE}
    assert {"SIEBEL.S_CONTACT", "SIEBEL.S_CONTACT_X", "SIEBEL.S_ORDER"} <= set(colon)
    assert len(colon) < len(catalogue.tables)  # the space form stays exercised too
    date_columns = {
        (t.source, c.name) for t in colon.values() for c in t.columns if c.kind in ("now", "date")
    }
    seen = set()
    for message in (m for m in stream.parsed if m["table"] in colon):
        for column, value in (message.get("after") or {}).items():
            if (message["table"], column) in date_columns and value is not None:
                assert DATE_TEXT[GOLDENGATE_DATE].match(value), (message["table"], column, value)
                seen.add((message["table"], column))
    assert {
        ("SIEBEL.S_CONTACT", "BIRTH_DT"),
        ("SIEBEL.S_CONTACT_X", "ATTRIB_26"),
        ("SIEBEL.S_ORDER", "ORDER_DT"),
    } <= seen


def test_compressed_updates_carry_only_the_key_and_the_columns_set(stream, catalogue):
    updates = [m for m in stream.parsed if m["op_type"] == "U"]
    for message in updates:
        after, before = message["after"], message["before"]
        table = catalogue.table_by_source(message["table"])
        assert list(after)[0] == "ROW_ID" and TOUCH <= set(after)
        assert len(after) < len(table.column_names)
        assert set(before) == set(after)  # key+changed: the old values of the same columns
        assert after["MODIFICATION_NUM"] == before["MODIFICATION_NUM"] + 1
        business = set(after) - TOUCH - {"ROW_ID"}
        assert all(after[c] != before[c] for c in business)
    touch_only = [m for m in updates if set(m["after"]) == TOUCH | {"ROW_ID"}]
    assert touch_only and len(touch_only) < len(updates)


@pytest.mark.parametrize("before_image", ["key", "all"])
def test_before_image_follows_the_configured_supplemental_logging(before_image, catalogue):
    stream = Stream(before_image=before_image)
    updates_and_deletes = [m for m in stream.parsed if m["op_type"] in ("U", "D")]
    assert {m["op_type"] for m in updates_and_deletes} == {"U", "D"}
    for message in updates_and_deletes:
        columns = catalogue.table_by_source(message["table"]).column_names
        assert list(message["before"]) == (["ROW_ID"] if before_image == "key" else columns)


def test_deletes_carry_the_key_only_in_before_by_default(stream):
    deletes = [m for m in stream.parsed if m["op_type"] == "D"]
    assert deletes and all(
        m["before"] == {"ROW_ID": m["before"]["ROW_ID"]} and "after" not in m for m in deletes
    )


def test_a_column_set_to_null_is_present_with_json_null(stream):
    nulled = [
        (m, c) for m in stream.parsed if m["op_type"] == "U" for c, v in m["after"].items() if v is None
    ]
    assert len(nulled) > 10
    message, column = nulled[0]
    assert f'"{column}":null' in json.dumps(message["after"], separators=(",", ":"))
    assert message["before"][column] is not None


def test_truncate_has_no_images_and_a_null_kafka_key(stream):
    truncates = [i for i, m in enumerate(stream.parsed) if m["op_type"] == "T"]
    assert truncates
    for index in truncates:
        assert "before" not in stream.parsed[index] and "after" not in stream.parsed[index]
        assert stream.workload.messages[index].key is None


def test_kafka_key_is_the_row_id_after_the_change_and_before_it_for_deletes(stream):
    for (_, key, _), message in zip(stream.workload.messages, stream.parsed, strict=True):
        if message["op_type"] in ("I", "U"):
            assert key == message["after"]["ROW_ID"].encode()
        elif message["op_type"] == "D":
            assert key == message["before"]["ROW_ID"].encode()


def test_a_transaction_is_consecutive_and_shares_op_ts_csn_and_xid(stream):
    assert len(stream.transactions) > 500
    ends = set(stream.workload.transaction_ends)
    for indexes in stream.transactions.values():
        assert indexes == list(range(indexes[0], indexes[-1] + 1))
        assert indexes[-1] + 1 in ends
        messages = [stream.parsed[i] for i in indexes]
        assert len({(m["op_ts"], m["csn"]) for m in messages}) == 1
        expected = ["3"] if len(messages) == 1 else ["0", *["1"] * (len(messages) - 2), "2"]
        assert [m["txind"] for m in messages] == expected
    csns = [int(stream.parsed[i[0]]["csn"]) for i in stream.transactions.values()]
    assert csns == sorted(csns) and len(set(csns)) == len(csns)


def test_new_contact_with_extension_order_and_items_commit_in_one_transaction(stream):
    found = 0
    for indexes in stream.transactions.values():
        inserted = defaultdict(list)
        for i in indexes:
            if stream.parsed[i]["op_type"] == "I":
                inserted[stream.parsed[i]["table"].split(".")[1]].append(stream.parsed[i]["after"])
        for contact in inserted["S_CONTACT"]:
            extensions = [x for x in inserted["S_CONTACT_X"] if x["PAR_ROW_ID"] == contact["ROW_ID"]]
            orders = [o for o in inserted["S_ORDER"] if o["CONTACT_ID"] == contact["ROW_ID"]]
            items = [i for o in orders for i in inserted["S_ORDER_ITEM"] if i["ORDER_ID"] == o["ROW_ID"]]
            assert len(extensions) == 1  # every contact gets its extension row in its transaction
            found += bool(orders and items)
    assert found > 20


def test_an_extension_update_touches_the_parent_system_columns_in_the_same_transaction(stream):
    extension_updates = [
        i for i, m in enumerate(stream.parsed) if m["table"] == "SIEBEL.S_CONTACT_X" and m["op_type"] == "U"
    ]
    assert len(extension_updates) > 20
    state = stream.workload.state_after(0)
    cursor = 0
    for index in extension_updates:
        tx_start = stream.transactions[stream.parsed[index]["xid"]][0]
        state = stream.workload.state_after(tx_start) if tx_start != cursor else state
        cursor = tx_start
        parent_id = state["SIEBEL.S_CONTACT_X"][stream.parsed[index]["after"]["ROW_ID"]]["PAR_ROW_ID"]
        following = stream.parsed[index + 1]
        assert following["table"] == "SIEBEL.S_CONTACT" and following["op_type"] == "U"
        assert following["xid"] == stream.parsed[index]["xid"]
        assert following["after"]["ROW_ID"] == parent_id
        assert set(following["after"]) == TOUCH | {"ROW_ID"}


def test_deleting_an_order_deletes_its_items_first_in_one_transaction(stream):
    order_deletes = [
        i for i, m in enumerate(stream.parsed) if m["table"] == "SIEBEL.S_ORDER" and m["op_type"] == "D"
    ]
    assert len(order_deletes) > 10
    with_items = 0
    for index in order_deletes:
        tx = stream.transactions[stream.parsed[index]["xid"]]
        before_tx = stream.workload.state_after(tx[0])
        order_id = stream.parsed[index]["before"]["ROW_ID"]
        items = {k for k, row in before_tx["SIEBEL.S_ORDER_ITEM"].items() if row["ORDER_ID"] == order_id}
        deleted_first = {
            stream.parsed[i]["before"]["ROW_ID"]
            for i in tx
            if i < index
            and stream.parsed[i]["table"] == "SIEBEL.S_ORDER_ITEM"
            and stream.parsed[i]["op_type"] == "D"
        }
        assert items <= deleted_first
        with_items += bool(items)
    assert with_items > 5


def test_a_key_change_moves_a_list_of_values_row_to_a_new_row_id(stream):
    changes = [
        (i, m)
        for i, m in enumerate(stream.parsed)
        if m["op_type"] == "U" and m["before"]["ROW_ID"] != m["after"]["ROW_ID"]
    ]
    assert changes
    for index, message in changes:
        assert message["table"] == "SIEBEL.S_LST_OF_VAL"
        assert stream.workload.messages[index].key == message["after"]["ROW_ID"].encode()


def test_a_truncate_of_the_list_of_values_is_followed_by_its_reload(stream):
    for index, message in enumerate(stream.parsed):
        if message["op_type"] != "T":
            continue
        rows_before = stream.workload.state_after(index)[message["table"]]
        reload = stream.transaction_of(index + 1)
        assert {m["op_type"] for m in reload} == {"I"} and {m["table"] for m in reload} == {message["table"]}
        assert {m["after"]["ROW_ID"]: m["after"] for m in reload} == rows_before


def test_list_of_values_renames_change_the_display_value(stream):
    renames = [m for m in stream.of("S_LST_OF_VAL", "U") if "VAL" in m["after"]]
    assert renames and all(m["after"]["VAL"] != m["before"]["VAL"] for m in renames)


def test_siebel_value_conventions_appear(stream, catalogue):
    inserts = [m["after"] for m in stream.parsed if m["op_type"] == "I"]
    primary = [v for row in inserts for c, v in row.items() if c.startswith("PR_") and c.endswith("_ID")]
    assert SENTINEL in primary and any(v != SENTINEL for v in primary)
    flags = [v for row in inserts for c, v in row.items() if c.endswith("_FLG") and v is not None]
    assert set(flags) == {"Y", "N", "Y ", "N "}  # X_SUPPRIME_FLG is a padded CHAR(2)
    segments = {row["X_PTI1_SEGMENT"] for row in inserts if "X_PTI1_SEGMENT" in row} - {None}
    assert segments and all(len(v) == 30 and v != v.rstrip() for v in segments)
    assert any(isinstance(v, Decimal) for row in inserts for v in row.values())
    lov_codes = {(m["after"]["TYPE"], m["after"]["NAME"]) for m in stream.of("S_LST_OF_VAL", "I")}
    coded = 0
    for message in (m for m in stream.parsed if m["op_type"] in ("I", "U")):
        table = catalogue.table_by_source(message["table"])
        for column in table.columns:
            if column.kind == "lov" and message["after"].get(column.name) is not None:
                assert (column.type, message["after"][column.name]) in lov_codes
                coded += 1
    assert coded > 1000
