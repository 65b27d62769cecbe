"""Tables listed in `debezium_tables` are written as Debezium Oracle change events (reference
docs/cdc-formats.md §2): JsonConverter envelopes with schemas, tombstones after deletes, a key change as
delete + tombstone + create, truncates with a null key, snapshot reads for the initial load."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal

import pytest

from devtools.workload import WorkloadConfig, generate_workload

SMALL = {"initial_rows": 120, "changes": 700}


def events(workload, topic):
    """(index, key dict or None, payload or None) of one topic's messages."""
    found = []
    for index, (message_topic, key, value) in enumerate(workload.messages):
        if message_topic == topic:
            found.append((index, key and json.loads(key), value and json.loads(value)["payload"]))
    return found


@pytest.fixture(scope="module")
def workload():
    return generate_workload(WorkloadConfig(debezium_tables=("S_PROD_INT", "SIEBEL.S_LST_OF_VAL"), **SMALL))


def test_only_the_listed_tables_are_debezium_envelopes_with_schemas(workload):
    kinds = {}
    for topic, _, value in workload.messages:
        if value is not None:
            document = json.loads(value)
            kinds.setdefault(topic, set()).add(
                "debezium" if set(document) == {"schema", "payload"} else "goldengate"
            )
    assert kinds.pop("crm.S_PROD_INT") == {"debezium"} and kinds.pop("crm.S_LST_OF_VAL") == {"debezium"}
    assert len(kinds) == 6 and all(v == {"goldengate"} for v in kinds.values())


def test_debezium_envelopes_carry_source_positions_and_transaction(workload):
    for _, key, payload in events(workload, "crm.S_PROD_INT"):
        if payload is None:
            continue
        assert set(payload) == {"before", "after", "source", "op", "ts_ms", "transaction"}
        source = payload["source"]
        assert (source["connector"], source["schema"], source["table"]) == ("oracle", "SIEBEL", "S_PROD_INT")
        assert int(source["commit_scn"]) >= int(source["scn"]) and source["snapshot"] == "false"
        assert payload["transaction"]["id"] == source["txId"]
        assert payload["op"] in {"c", "u", "d"}
        row = payload["after"] or payload["before"]
        assert key == {"ROW_ID": row["ROW_ID"]}


def test_debezium_updates_carry_full_before_and_after_rows(workload):
    updates = [p for _, _, p in events(workload, "crm.S_PROD_INT") if p and p["op"] == "u"]
    assert updates
    for payload in updates:
        assert payload["before"].keys() == payload["after"].keys() and len(payload["after"]) > 20
        assert payload["after"]["MODIFICATION_NUM"] == payload["before"]["MODIFICATION_NUM"] + 1


def test_a_debezium_delete_is_followed_by_a_tombstone_with_the_same_key(workload):
    stream = events(workload, "crm.S_PROD_INT")
    deletes = [n for n, (_, _, p) in enumerate(stream) if p and p["op"] == "d"]
    assert deletes
    for n in deletes:
        index, key, _ = stream[n]
        next_index, next_key, next_payload = stream[n + 1]
        assert next_payload is None and next_key == key and workload.messages[next_index].value is None


def test_a_debezium_key_change_is_delete_tombstone_create(workload):
    stream = events(workload, "crm.S_LST_OF_VAL")
    found = 0
    for n, (_, key, payload) in enumerate(stream):
        if payload and payload["op"] == "d":
            _, _, created = stream[n + 2]
            if created and created["op"] == "c" and created["source"]["txId"] == payload["source"]["txId"]:
                assert stream[n + 1][2] is None and stream[n + 1][1] == key
                assert created["after"]["ROW_ID"] != payload["before"]["ROW_ID"]
                assert created["after"]["VAL"] == payload["before"]["VAL"]
                found += 1
    assert found


def test_a_debezium_truncate_has_a_null_key_and_no_images(workload):
    truncates = [(key, p) for _, key, p in events(workload, "crm.S_LST_OF_VAL") if p and p["op"] == "t"]
    assert truncates
    assert all(key is None and p["before"] is None and p["after"] is None for key, p in truncates)


def test_debezium_values_use_connect_types(workload):
    truth = workload.state()["SIEBEL.S_PROD_INT"]
    (_, _, value) = next(m for m in workload.messages if m.topic == "crm.S_PROD_INT" and m.value)
    document = json.loads(value)
    after_fields = {f["field"]: f for f in document["schema"]["fields"][1]["fields"]}
    assert after_fields["LAST_UPD"]["name"] == "io.debezium.time.Timestamp"
    assert after_fields["X_LIST_PRICE"]["name"] == "org.apache.kafka.connect.data.Decimal"
    creates = [p for _, _, p in events(workload, "crm.S_PROD_INT") if p and p["op"] == "c"]
    row = next(p["after"] for p in reversed(creates) if p["after"]["ROW_ID"] in truth)
    source_row = truth[row["ROW_ID"]]
    scale = int(after_fields["X_LIST_PRICE"]["parameters"]["scale"])
    unscaled = int.from_bytes(base64.b64decode(row["X_LIST_PRICE"]), "big", signed=True)
    assert Decimal(unscaled).scaleb(-scale) == source_row["X_LIST_PRICE"]
    assert row["CREATED"] == int(datetime.fromisoformat(source_row["CREATED"] + "+00:00").timestamp() * 1000)


def test_the_debezium_initial_load_is_snapshot_reads():
    workload = generate_workload(
        WorkloadConfig(initial_load=True, debezium_tables=("S_PROD_INT",), initial_rows=300, changes=50)
    )
    load = workload.messages[: workload.transaction_ends[0]]
    reads = [json.loads(v)["payload"] for t, _, v in load if t == "crm.S_PROD_INT"]
    assert len(reads) == len(workload.state_after(len(load))["SIEBEL.S_PROD_INT"]) > 0
    assert {p["op"] for p in reads} == {"r"} and all(p["before"] is None for p in reads)
    assert [p["source"]["snapshot"] for p in reads] == ["true"] * (len(reads) - 1) + ["last"]
