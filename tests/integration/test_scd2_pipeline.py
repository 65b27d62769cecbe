"""SCD2 through Kafka and Dagster: GoldenGate messages produced to a real broker, the real bronze, cut
and silver assets of an SCD2 table spec materialized by Dagster, and the versions read back.

docs/DESIGN.md: a version is a distinct state of the row; a change that leaves the state as it was
opens none, and a late change inside a run of equal states splits it where the source did.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets.factory import build_assets
from devtools.workload.capture import WorkloadMessage
from devtools.workload.producer import produce_messages
from tests.pipeline import resources, unique_prefix
from transforms.merge import read_history
from transforms.sequence import decode_sequence
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration


def _gg(topic: str, op: str, pos: int, row_id: str, name: str | None = None) -> WorkloadMessage:
    image = {"ROW_ID": row_id} if op == "D" else {"ROW_ID": row_id, "NAME": name}
    value = {
        "table": "SIEBEL.S_CONTACT",
        "op_type": op,
        "op_ts": f"2024-01-01 10:00:{pos:02d}.000000",
        "pos": f"{pos:020d}",
        "before" if op == "D" else "after": image,
    }
    return WorkloadMessage(topic, row_id.encode(), json.dumps(value).encode())


def _versions(spark, path: str) -> dict[str, list[tuple]]:
    def position(seq):
        return None if seq is None else decode_sequence(seq)[0]

    versions: dict[str, list[tuple]] = {}
    for row in read_history(spark, path).orderBy("ROW_ID", "_valid_from_seq").collect():
        versions.setdefault(row["ROW_ID"], []).append(
            (row["NAME"], position(row["_valid_from_seq"]), position(row["_valid_to_seq"]))
        )
    return versions


def test_scd2_versions_through_kafka_and_dagster_are_the_distinct_states_of_the_source(
    spark, kafka_bootstrap, tmp_lake
):
    prefix = unique_prefix()
    topic = f"{prefix}.S_CONTACT"
    spec = TableSpec(
        table="SIEBEL.S_CONTACT",
        name="contact_history",
        topic=topic,
        format="goldengate_json",
        keys=["ROW_ID"],
        history="scd2",
        source=prefix,
    )
    graph = build_assets([spec], [])
    res = resources(kafka_bootstrap, tmp_lake)
    silver_path = str(tmp_lake / "silver" / spec.asset_name)

    # 1-A: Alice at 5, 10 and 15 (the same value three times), Charlie at 20.
    # 1-B: Alice at 10 and 11, a delete at 12, Bob at 20, delivered newest first.
    first = [
        _gg(topic, "I", 5, "1-A", "Alice"),
        _gg(topic, "U", 10, "1-A", "Alice"),
        _gg(topic, "U", 15, "1-A", "Alice"),
        _gg(topic, "U", 20, "1-A", "Charlie"),
        _gg(topic, "I", 20, "1-B", "Bob"),
        _gg(topic, "D", 12, "1-B"),
        _gg(topic, "U", 11, "1-B", "Alice"),
        _gg(topic, "I", 10, "1-B", "Alice"),
    ]
    produce_messages(kafka_bootstrap, first, partitions=2)
    assert dg.materialize(graph, resources=res).success
    assert _versions(spark, silver_path) == {
        "1-A": [("Alice", 5, 20), ("Charlie", 20, None)],
        "1-B": [("Alice", 10, 12), ("Bob", 20, None)],
    }

    produce_messages(kafka_bootstrap, [_gg(topic, "U", 12, "1-A", "Bob")], partitions=2)  # late: arrives last
    result = dg.materialize(graph, resources=res)
    assert result.success
    assert _versions(spark, silver_path) == {
        "1-A": [("Alice", 5, 12), ("Bob", 12, 15), ("Alice", 15, 20), ("Charlie", 20, None)],
        "1-B": [("Alice", 10, 12), ("Bob", 20, None)],
    }
    silver = result.asset_materializations_for_node(f"silver__{spec.asset_name}")[0].metadata
    assert (silver["rows_inserted"].value, silver["rows_updated"].value) == (2, 1)  # Alice@5 now ends at 12
