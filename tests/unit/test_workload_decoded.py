"""Every generated message decodes with the project's decoders (transforms.decoders.decode), and the
decoded change records, applied in stream order, give the generator's TRUE state as text (absent
columns untouched, null kept as null), for GoldenGate and Debezium tables, with an overlapping
initial load."""

from __future__ import annotations

from collections import defaultdict

import pytest

from devtools.workload import WorkloadConfig, generate_workload, load_catalogue
from transforms.changes import KafkaMessage, Op
from transforms.decoders import decode

DEBEZIUM = ("S_PROD_INT", "S_LST_OF_VAL")


@pytest.fixture(scope="module")
def decoded():
    workload = generate_workload(
        WorkloadConfig(initial_rows=200, changes=700, initial_load=True, overlap=30, debezium_tables=DEBEZIUM)
    )
    catalogue = load_catalogue()
    formats = {f"crm.{t}": "debezium_json" if t in DEBEZIUM else "goldengate_json" for t in catalogue.tables}
    records = []
    for offset, (topic, key, value) in enumerate(workload.messages):
        message = KafkaMessage(topic=topic, partition=0, offset=offset, key=key, value=value)
        records.append(decode(message, format=formats[topic], keys=["ROW_ID"]))
    return workload, records


def test_every_message_decodes_to_the_change_it_describes(decoded):
    workload, records = decoded
    sources = {f"crm.{t.name}": t.source for t in load_catalogue().tables.values()}
    for (topic, key, value), found in zip(workload.messages, records, strict=True):
        if value is None:
            assert found == []  # a Debezium tombstone carries no change
            continue
        (record,) = found
        assert record.table == sources[topic]
        if record.op is Op.TRUNCATE:
            assert key is None and record.key == {}
        elif topic.removeprefix("crm.") in DEBEZIUM:
            assert key.decode() == f'{{"ROW_ID":"{record.key["ROW_ID"]}"}}'
        else:
            assert key.decode() == record.key["ROW_ID"]


def test_decoded_changes_applied_in_order_give_the_true_state(decoded):
    workload, records = decoded
    state: dict[str, dict[str, dict]] = defaultdict(dict)
    for record in (r for found in records for r in found):
        rows = state[record.table]
        if record.op is Op.TRUNCATE:
            rows.clear()
        elif record.op is Op.DELETE:
            rows.pop(record.key["ROW_ID"], None)
        elif record.op is Op.INSERT:
            assert record.full_image
            rows[record.key["ROW_ID"]] = dict(record.after)
        else:
            old_key = (record.old_key or record.key)["ROW_ID"]
            row = rows.pop(old_key, None)
            if row is None:
                row = rows.get(record.key["ROW_ID"], {})
            rows[record.key["ROW_ID"]] = {**row, **record.after}
    truth = {t: rows for t, rows in workload.state(as_text_values=True).items() if rows}
    assert {t: rows for t, rows in state.items() if rows} == truth


def test_goldengate_updates_decode_as_partial_images_with_explicit_nulls(decoded):
    _, records = decoded
    updates = [r for found in records for r in found if r.op is Op.UPDATE and not r.table.endswith(DEBEZIUM)]
    assert updates and all(not r.full_image for r in updates)
    assert any(None in r.after.values() for r in updates)


def test_a_goldengate_key_change_decodes_as_an_update_with_the_old_key():
    workload = generate_workload(WorkloadConfig(initial_rows=120, changes=600))
    moved = []
    for offset, (topic, key, value) in enumerate(workload.messages):
        (record,) = decode(
            KafkaMessage(topic, 0, offset, key, value), format="goldengate_json", keys=["ROW_ID"]
        )
        if record.old_key is not None:
            moved.append(record)
    assert moved and all(r.op is Op.UPDATE and r.old_key != r.key for r in moved)
