"""The generator's TRUE source state is what the emitted messages say, applied in order; it is
deterministic per seed; and the source keeps its referential integrity (cascades leave no orphans)."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

import pytest

from devtools.workload import WorkloadConfig, as_text, generate_workload, load_catalogue

SMALL = {"initial_rows": 120, "changes": 600}


def replay(messages) -> dict[str, dict[str, dict]]:
    """A tiny independent applier of GoldenGate op messages: I sets the full row; U merges the columns
    present in `after` into the row (moving it when the key changed); D removes it; T empties the table."""
    state: dict[str, dict[str, dict]] = defaultdict(dict)
    for _, _, value in messages:
        message = json.loads(value, parse_float=Decimal)
        rows = state[message["table"]]
        op = message["op_type"]
        if op == "T":
            rows.clear()
        elif op == "I":
            rows[message["after"]["ROW_ID"]] = dict(message["after"])
        elif op == "D":
            rows.pop(message["before"]["ROW_ID"], None)
        else:
            old_key, new_key = message["before"]["ROW_ID"], message["after"]["ROW_ID"]
            row = rows.pop(old_key, None)
            if row is None:  # after an initial load the row may already sit at the new key
                row = rows.get(new_key, {})
            rows[new_key] = {**row, **message["after"]}
    return state


def texts(state) -> dict:
    return {
        t: {k: {c: as_text(v) for c, v in row.items()} for k, row in rows.items()}
        for t, rows in state.items()
        if rows
    }


def non_empty(state) -> dict:
    return {t: rows for t, rows in state.items() if rows}


@pytest.fixture(scope="module")
def workload():
    return generate_workload(WorkloadConfig(**SMALL))


@pytest.mark.parametrize("before_image", ["key", "key+changed", "all"])
def test_replaying_the_messages_in_order_gives_the_true_final_state(before_image):
    workload = generate_workload(WorkloadConfig(before_image=before_image, **SMALL))
    truth = workload.state(as_text_values=True)
    assert sum(len(rows) for rows in truth.values()) > 300
    assert texts(replay(workload.messages)) == non_empty(truth)


def test_the_truth_holds_every_catalogue_column_of_every_row(workload):
    catalogue = load_catalogue()
    for table in catalogue.tables.values():
        rows = workload.state()[table.source]
        assert rows, table.source
        assert all(list(row) == table.column_names for row in rows.values())


def test_initial_load_with_overlap_replays_to_the_true_final_state():
    workload = generate_workload(WorkloadConfig(initial_load=True, overlap=40, **SMALL))
    parsed = [json.loads(v) for _, _, v in workload.messages]
    load_size = workload.transaction_ends[0]
    loaded = parsed[:load_size]
    assert {m["op_type"] for m in loaded} == {"I"} and "xid" not in loaded[0]
    assert {m["pos"][:10] for m in loaded} == {"0000000000"}
    assert all(int(m["pos"][:10]) >= 1 for m in parsed[load_size:])
    # the overlap: changes already contained in the load arrive again after it
    load_versions = {(m["table"], m["after"]["ROW_ID"]): m["after"]["MODIFICATION_NUM"] for m in loaded}
    stale = [
        m
        for m in parsed[load_size : load_size + 200]
        if m["op_type"] == "U"
        and m["after"]["MODIFICATION_NUM"] <= load_versions.get((m["table"], m["after"]["ROW_ID"]), -1)
    ]
    assert stale
    assert texts(replay(workload.messages)) == non_empty(workload.state(as_text_values=True))


def test_initial_load_without_overlap_is_the_source_at_the_load():
    workload = generate_workload(WorkloadConfig(initial_load=True, **SMALL))
    load_size = workload.transaction_ends[0]
    assert texts(replay(workload.messages[:load_size])) == non_empty(workload.state_after(load_size, True))
    assert texts(replay(workload.messages)) == non_empty(workload.state(as_text_values=True))


def test_the_same_seed_gives_identical_bytes_and_another_seed_different_ones():
    first = generate_workload(WorkloadConfig(seed=11, **SMALL))
    again = generate_workload(WorkloadConfig(seed=11, **SMALL))
    other = generate_workload(WorkloadConfig(seed=12, **SMALL))
    assert first.messages == again.messages and first.state_json() == again.state_json()
    assert first.messages != other.messages and first.state_json() != other.state_json()


def test_cascades_and_reference_updates_leave_no_orphans_in_the_truth(workload):
    catalogue = load_catalogue()
    state = workload.state()
    checked = 0
    for table in catalogue.tables.values():
        for column in (c for c in table.columns if c.references):
            target = state[catalogue.table(column.references).source]
            for row in state[table.source].values():
                value = row[column.name]
                assert value is None or value == catalogue.no_match_sentinel or value in target, (
                    f"{table.name}.{column.name} = {value} has no {column.references} row"
                )
                checked += value in target
    assert checked > 500
    for base in catalogue.tables.values():
        for extension in catalogue.extensions(base.name):
            parents = [row["PAR_ROW_ID"] for row in state[extension.source].values()]
            assert sorted(parents) == sorted(state[base.source])  # exactly one extension row per base row


def test_deletes_really_happened_with_their_cascades(workload):
    parsed = [json.loads(v) for _, _, v in workload.messages]
    deleted = {(m["table"], m["before"]["ROW_ID"]) for m in parsed if m["op_type"] == "D"}
    tables = {table for table, _ in deleted}
    assert {"SIEBEL.S_ORDER", "SIEBEL.S_ORDER_ITEM", "SIEBEL.S_CONTACT", "SIEBEL.S_CONTACT_X"} <= tables


def test_list_of_values_codes_in_the_truth_resolve_to_list_of_values_rows(workload):
    catalogue = load_catalogue()
    lov = catalogue.list_of_values
    state = workload.state()
    codes = {
        (row[lov.type_column], row[lov.code_column])
        for row in state[catalogue.table(lov.table).source].values()
        if row[lov.language_column] == lov.language
    }
    for table in catalogue.tables.values():
        for column in (c for c in table.columns if c.kind == "lov"):
            for row in state[table.source].values():
                assert row[column.name] is None or (column.type, row[column.name]) in codes


def test_state_after_a_transaction_end_equals_the_replay_of_that_prefix(workload):
    ends = workload.transaction_ends
    for end in [ends[0], ends[len(ends) // 3], ends[len(ends) // 2], ends[-2]]:
        assert texts(replay(workload.messages[:end])) == non_empty(
            workload.state_after(end, as_text_values=True)
        )
    assert workload.state_after(len(workload.messages)) == workload.state()
    assert ends[-1] == len(workload.messages) and ends == sorted(set(ends))


def test_the_json_dump_of_the_state_is_the_truth(workload):
    dumped = json.loads(workload.state_json(), parse_float=Decimal)
    assert dumped == workload.state()
    assert list(dumped) == [t.source for t in load_catalogue().tables.values()]


def test_messages_jsonl_has_one_line_per_message(workload):
    lines = workload.messages_jsonl().splitlines()
    assert len(lines) == len(workload.messages)
    for line, (topic, key, value) in zip(lines, workload.messages, strict=True):
        record = json.loads(line)
        assert record["topic"] == topic
        assert record["key"] == (None if key is None else key.decode())
        assert record["value"].encode() == value


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"before_image": "full"}, "before_image"),
        ({"overlap": 5}, "overlap needs initial_load"),
        ({"initial_load": True, "overlap": 50, "changes": 10}, "overlap 50"),
        ({"operation_weights": {"upsert": 1}}, "unknown operations"),
        ({"topic_template": "crm"}, "topic_template"),
    ],
)
def test_bad_settings_are_rejected_with_the_setting_named(settings, message):
    with pytest.raises(ValueError, match=message):
        WorkloadConfig(**settings)


def test_an_unknown_debezium_table_is_rejected():
    with pytest.raises(ValueError, match="S_NOPE"):
        generate_workload(WorkloadConfig(debezium_tables=("S_NOPE",), initial_rows=10, changes=1))
