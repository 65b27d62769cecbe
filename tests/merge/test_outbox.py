"""A transactional outbox table in silver (TableSpec.outbox): every committed event once, keyed by its
id; the service deleting its outbox rows (Debezium's recommended pattern) or truncating the table is
not an event and changes nothing; a re-delivered event is the same event. A bronze batch holding only
such deletes is applied (silver records its progress) without a row changing."""

from __future__ import annotations

from delta.tables import DeltaTable

from tests.reference_model import DELETE, IMAGE, TRUNCATE, TRUNCATE_KEY, Change, key_json, to_bronze_row
from transforms.bronze_rows import BRONZE_SCHEMA
from transforms.merge import read_live_rows
from transforms.sequence import encode_sequence
from transforms.silver import applied_progress, apply_new_bronze
from transforms.specs.table import OutboxSpec, TableSpec

SPEC = TableSpec(
    table="SRC.T", topic="svc.outbox", format="debezium_json", keys=["ID"], outbox=OutboxSpec(event_id="ID")
)


def _event(event_id: str, position: int, order: str) -> Change:
    return Change(key_json({"ID": event_id}), encode_sequence((position,)), IMAGE, {"AGG": order})


def _delete(event_id: str, position: int) -> Change:
    return Change(key_json({"ID": event_id}), encode_sequence((position,)), DELETE)


def _events(spark, silver: str) -> dict[str, str]:
    return {row["ID"]: row["AGG"] for row in read_live_rows(spark, silver).collect()}


def test_outbox_silver_keeps_each_committed_event_once_whatever_deletes_truncates_and_redeliveries_follow(
    spark, tmp_lake
):
    bronze, silver = str(tmp_lake / "bronze"), str(tmp_lake / "silver")
    DeltaTable.create(spark).location(bronze).addColumns(BRONZE_SCHEMA).property(
        "delta.enableChangeDataFeed", "true"
    ).execute()

    def bronze_append(changes: list[Change]) -> None:
        rows = [to_bronze_row(change, offset=offset) for offset, change in enumerate(changes)]
        spark.createDataFrame(rows, BRONZE_SCHEMA).write.format("delta").mode("append").save(bronze)

    # the service's transactions: insert an event, delete it right after
    bronze_append([_event("e1", 10, "o1"), _delete("e1", 11), _event("e2", 20, "o2"), _delete("e2", 21)])
    first = apply_new_bronze(spark, SPEC, bronze, silver)
    assert first.stats.changes_read == 2 and _events(spark, silver) == {"e1": "o1", "e2": "o2"}

    # a batch of nothing but housekeeping: applied, recorded, no row touched
    silver_version = DeltaTable.forPath(spark, silver).history(1).first()["version"]
    bronze_append([_delete("e2", 21), Change(TRUNCATE_KEY, encode_sequence((30,)), TRUNCATE)])
    housekeeping = apply_new_bronze(spark, SPEC, bronze, silver)
    assert housekeeping.stats.changes_read == 0 and housekeeping.bronze_to == 2
    assert applied_progress(spark, silver) == (2, None)
    assert DeltaTable.forPath(spark, silver).history(1).first()["version"] == silver_version + 1
    assert _events(spark, silver) == {"e1": "o1", "e2": "o2"}
    assert apply_new_bronze(spark, SPEC, bronze, silver).bronze_from is None  # nothing left to read

    # the connector re-delivers e1 after a restart, and a new event arrives
    bronze_append([_event("e1", 10, "o1"), _delete("e1", 11), _event("e3", 40, "o1")])
    apply_new_bronze(spark, SPEC, bronze, silver)
    assert _events(spark, silver) == {"e1": "o1", "e2": "o2", "e3": "o1"}
