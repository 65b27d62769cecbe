"""The simulated order service (devtools/workload/order_service.py) and the Debezium Postgres records
its database's changes produce (devtools/workload/debezium_postgres.py): deterministic; every record
decodes with the platform's decoder (decode_for_spec, typed columns), and the decoded changes folded by
position, in any arrival order, give exactly the true final state; plus the connector's Postgres
specifics: TOAST placeholders, schemas on payments only, key changes, rolled-back transactions that
leave no trace but burned ids, and the at-least-once re-delivery after a restart."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta

import pytest

from devtools.workload.order_service import OrderServiceConfig, generate_order_service
from tests.reference_model import DELETE, IMAGE, UPDATE, CellModel, Change, key_json
from transforms.changes import KafkaMessage, Op
from transforms.decoders import decode_for_spec
from transforms.specs.table import OutboxSpec, TableSpec

TABLES = ("public.orders", "public.order_lines", "public.payments")
PLACEHOLDER = "__debezium_unavailable_value"
ENVELOPE = {"before", "after", "source", "op", "ts_ms", "transaction"}
TOPIC = "t1234.{table}"
COLUMNS = {
    "orders": {"id": "long", "customer_id": "string", "status": "string", "currency": "string"}
    | {"total": "decimal(12,2)", "notes": "string", "created_at": "timestamp", "updated_at": "timestamp"},
    "order_lines": {"id": "long", "order_id": "long", "line_no": "int", "sku": "string"}
    | {"quantity": "int", "unit_price": "decimal(12,2)"},
    "payments": {"id": "long", "order_id": "long", "amount": "decimal(12,2)", "method": "string"}
    | {"status": "string", "paid_at": "timestamp"},
    "outbox": {"id": "string", "aggregatetype": "string", "aggregateid": "string", "type": "string"}
    | {"payload": "string", "created_at": "timestamp"},
}
SPECS = {
    TOPIC.format(table=name): TableSpec(
        table=f"public.{name}",
        topic=TOPIC.format(table=name),
        format="debezium_json",
        keys=["id"],
        sequence_by=["lsn"],
        columns=columns,
        outbox=OutboxSpec() if name == "outbox" else None,
    )
    for name, columns in COLUMNS.items()
}


@pytest.fixture(scope="module")
def workload():
    return generate_order_service(OrderServiceConfig(topic_template=TOPIC))


@pytest.fixture(scope="module")
def decoded(workload):
    """Per message: (message, its decoded change records)."""
    found = []
    for offset, (topic, key, value) in enumerate(workload.messages):
        message = KafkaMessage(topic=topic, partition=0, offset=offset, key=key, value=value)
        found.append(((topic, key, value), decode_for_spec(message, SPECS[topic])))
    return found


def payloads(workload, table: str):
    """(index, key, envelope or None for a tombstone) of one table's records."""
    for index, (topic, key, value) in enumerate(workload.messages):
        if topic == TOPIC.format(table=table):
            document = None if value is None else json.loads(value)
            if document is not None and "payload" in document:
                document = document["payload"]
            yield index, json.loads(key), document


def records_of(records, table: str):
    return [r for r in records if r.table == f"public.{table}"]


def flat(decoded):
    return [r for _, records in decoded for r in records]


def fold_by_position(records) -> dict[str, dict]:
    """Apply the changes in position order: inserts set the row, updates their present columns."""
    rows: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: (r.position, r.kafka.offset)):
        key = record.key["id"]
        if record.op is Op.DELETE:
            rows.pop(key, None)
        elif record.op is Op.INSERT:
            rows[key] = dict(record.after)
        else:
            rows[key] = {**rows[key], **record.after}
    return rows


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others():
    config = OrderServiceConfig(initial_orders=8, changes=60)
    first, again = generate_order_service(config), generate_order_service(config)
    assert first.messages == again.messages and first.state() == again.state()
    assert generate_order_service(replace(config, seed=12)).messages != first.messages


def test_shifting_the_start_shifts_the_whole_run():
    config = OrderServiceConfig(initial_orders=5, changes=40)
    shifted = replace(config, start_time=config.start_time + timedelta(days=300, microseconds=17))
    first, later = generate_order_service(config), generate_order_service(shifted)
    assert later.ended_at - shifted.start_time == first.ended_at - config.start_time
    assert len(later.messages) == len(first.messages)


def test_every_record_decodes_and_the_fold_by_position_is_the_true_state(workload, decoded):
    truth = workload.state(as_text_values=True)
    records = flat(decoded)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    for table in TABLES:
        name = table.removeprefix("public.")
        assert truth[table]
        assert fold_by_position(records_of(records, name)) == truth[table]
        assert fold_by_position(records_of(shuffled, name)) == truth[table]


def test_the_engine_rules_in_shuffled_batches_give_the_true_state(workload, decoded):
    """The cell-rule model of silver (tests/reference_model.py), fed shuffled batches with duplicates."""
    truth = workload.state(as_text_values=True)
    for table in TABLES:
        changes = [
            Change(
                key=key_json(r.key),
                seq=r.sequence,
                kind={Op.INSERT: IMAGE, Op.UPDATE: UPDATE, Op.DELETE: DELETE}[r.op],
                cols=None if r.op is Op.DELETE else dict(r.after),
            )
            for r in records_of(flat(decoded), table.removeprefix("public."))
        ]
        rng = random.Random(len(changes))
        rng.shuffle(changes)
        model = CellModel()
        for start in range(0, len(changes), 97):
            model.apply(changes[start : start + 97] + rng.sample(changes, 3))
        live = model.live_rows()
        assert {json.loads(k)["id"]: row.values for k, row in live.items()} == truth[table]
        assert all(row.incomplete == () for row in live.values())


def test_the_outbox_inserts_deduplicated_are_the_committed_events(workload, decoded):
    records = records_of(flat(decoded), "outbox")
    inserts = [r for r in records if r.op is Op.INSERT]
    events: dict[str, dict] = {}
    for record in inserts:
        assert events.setdefault(record.key["id"], record.after) == record.after
    assert events == workload.state(as_text_values=True)["public.outbox"]
    assert list(events) == [event["id"] for event in workload.events]  # in commit order
    deleted = {r.key["id"] for r in records if r.op is Op.DELETE}
    assert deleted == set(events) and len(inserts) > len(events)  # each deleted; some sent twice
    assert all(json.loads(e["payload"])["order_id"] == int(e["aggregateid"]) for e in events.values())


def test_orders_updates_that_leave_notes_carry_the_toast_placeholder(workload, decoded):
    updates = [
        (m, r) for m, found in decoded for r in found if r.table == "public.orders" and r.op is Op.UPDATE
    ]
    placeholders = [r for m, r in updates if json.loads(m[2])["after"]["notes"] == PLACEHOLDER]
    assert placeholders and all("notes" not in r.after and r.before is None for r in placeholders)
    edited = [r for m, r in updates if json.loads(m[2])["after"]["notes"] != PLACEHOLDER]
    assert edited and all(len(r.after["notes"]) >= 300 for r in edited)
    for _, _, payload in payloads(workload, "orders"):
        if payload and payload["op"] in "cr":
            assert payload["after"]["notes"] != PLACEHOLDER


def test_replica_identity_default_and_full_before_images(workload):
    orders = [p for _, _, p in payloads(workload, "orders") if p]
    assert all(p["before"] is None for p in orders if p["op"] == "u")
    for p in (p for p in orders if p["op"] == "d"):
        assert p["before"]["id"] and set(p["before"].values()) == {p["before"]["id"], None}
    lines = [p for _, _, p in payloads(workload, "order_lines") if p and p["op"] in "ud"]
    assert lines and all(p["before"] and None not in p["before"].values() for p in lines)


def test_payments_carry_the_schema_wrapper_and_the_others_do_not(workload):
    for topic, key, value in workload.messages:
        key_document = json.loads(key)
        document = None if value is None else json.loads(value)
        if topic == TOPIC.format(table="payments"):
            assert set(key_document) == {"schema", "payload"} and set(key_document["payload"]) == {"id"}
            if document is not None:
                assert set(document) == {"schema", "payload"} and set(document["payload"]) == ENVELOPE
                assert document["schema"]["name"] == "orders.public.payments.Envelope"
                fields = {f["field"]: f for f in document["schema"]["fields"]}
                amount = {f["field"]: f for f in fields["after"]["fields"]}["amount"]
                assert amount["name"] == "org.apache.kafka.connect.data.Decimal"
                assert amount["parameters"] == {"scale": "2", "connect.decimal.precision": "12"}
                assert fields["source"]["name"] == "io.debezium.connector.postgresql.Source"
        else:
            assert set(key_document) == {"id"}
            assert document is None or set(document) == ENVELOPE


def test_snapshot_reads_then_streamed_changes_with_transaction_metadata(workload):
    documents = [json.loads(v) for _, _, v in workload.messages if v is not None]
    envelopes = [d.get("payload", d) for d in documents]
    reads = [e for e in envelopes if e["op"] == "r"]
    assert reads == envelopes[: len(reads)] and all(e["transaction"] is None for e in reads)
    assert [e["source"]["snapshot"] for e in reads] == ["true"] * (len(reads) - 1) + ["last"]
    assert len({e["source"]["lsn"] for e in reads}) == 1
    snapshot_lsn, first_lsn = reads[0]["source"]["lsn"], {}
    for e in envelopes[len(reads) :]:
        source, transaction = e["source"], e["transaction"]
        assert source["snapshot"] == "false" and source["lsn"] > snapshot_lsn
        first_lsn.setdefault(source["txId"], source["lsn"])
        assert transaction["id"] == f"{source['txId']}:{first_lsn[source['txId']]}"
        assert json.loads(source["sequence"])[1] == str(source["lsn"])
        assert source["ts_ms"] < e["ts_ms"]  # processed a little after the commit


def test_rolled_back_orders_leave_no_record_but_burn_their_ids():
    workload = generate_order_service(
        OrderServiceConfig(changes=150, rollback_rate=0.3, topic_template=TOPIC)
    )
    rolled = {int(i) for i in workload.rolled_back_order_ids}
    assert rolled
    created = {p["after"]["id"] for _, _, p in payloads(workload, "orders") if p and p["op"] == "c"}
    mentioned = {key["id"] for _, key, _ in payloads(workload, "orders")}
    for table in ("order_lines", "payments"):
        mentioned |= {(p["after"] or p["before"])["order_id"] for _, _, p in payloads(workload, table) if p}
    mentioned |= {int(e["aggregateid"]) for e in workload.events}
    assert not rolled & mentioned and not rolled & {int(k) for k in workload.state()["public.orders"]}
    assert set(range(min(created), max(created) + 1)) <= created | rolled  # ids drawn, never reused


def test_the_redelivery_repeats_the_last_records_including_an_outbox_create(workload):
    messages, count = workload.messages, OrderServiceConfig().redelivered
    seen, repeats = set(), []
    for index, message in enumerate(messages):
        if message in seen:
            repeats.append(index)
        seen.add(message)
    start = repeats[0]
    assert repeats == list(range(start, start + count))
    assert messages[start : start + count] == messages[start - count : start]
    outbox = TOPIC.format(table="outbox")
    window = [json.loads(v) for t, _, v in messages[start : start + count] if t == outbox and v]
    created = [envelope["after"]["id"] for envelope in window if envelope["op"] == "c"]
    assert created and created == workload.redelivered_event_ids


def test_a_line_key_change_is_delete_tombstone_create_in_one_transaction(workload):
    stream = list(payloads(workload, "order_lines"))
    found = 0
    for n, (index, key, payload) in enumerate(stream[:-2]):
        (_, tomb_key, tomb), (create_index, new_key, created) = stream[n + 1], stream[n + 2]
        if payload and payload["op"] == "d" and created and created["op"] == "c" and tomb is None:
            if created["source"]["txId"] != payload["source"]["txId"]:
                continue
            assert tomb_key == key and new_key["id"] != key["id"] and create_index == index + 2
            assert created["source"]["lsn"] == payload["source"]["lsn"]  # one UPDATE of the key
            assert {**payload["before"], "id": new_key["id"]} == created["after"]
            found += 1
    assert found
