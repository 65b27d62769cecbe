"""Backfills and rebuilds against real Kafka, Spark and Delta: a date backfill rewrites that date only,
idempotently, leaving the regular offsets alone; aged-out dates fail by name; silver and gold rebuilds
give the same rows and the next micro-batch continues from them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from assets.factory import build_assets
from assets.gold_spec import GoldEntity
from orchestration.backfills import (
    build_bronze_backfill_job,
    build_gold_rebuild_job,
    build_silver_rebuild_job,
    side_path,
)
from tests.pipeline import resources
from transforms.bronze.backfill import BackfillRangeAgedOut, backfill_date
from transforms.bronze.ingest import ingest_batch, stored_offsets
from transforms.bronze.kafka_reader import make_consumer
from transforms.delta_commits import current_version, latest_progress
from transforms.gold.engine import refresh_entity, register_silver_views, silver_version_map
from transforms.merge import read_live_rows, read_table
from transforms.silver import apply_new_bronze
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
POISON = b"{not json"


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


class Topic:
    """A fresh topic (no time retention: only delete_records removes records) and the table reading it."""

    def __init__(self, bootstrap: str, partitions: int):
        self.bootstrap = bootstrap
        self.name = f"crm.backfill.{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = NewTopic(self.name, partitions, 1, config={"retention.ms": "-1"})
        admin.create_topics([topic])[self.name].result(timeout=30)
        self.pos = 0
        self.spec = TableSpec(
            table="SIEBEL.S_TEST", topic=self.name, format="goldengate_json", keys=["ROW_ID"]
        )

    def message(self, op: str, row_id: str, op_ts: datetime, **images) -> bytes:
        self.pos += 1
        return json.dumps(
            {
                "table": "SIEBEL.S_TEST",
                "op_type": op,
                "op_ts": op_ts.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "pos": f"{self.pos:020d}",
                "primary_keys": ["ROW_ID"],
                **images,
            }
        ).encode()

    def insert(self, row_id: str, name: str, op_ts: datetime) -> bytes:
        return self.message("I", row_id, op_ts, after={"ROW_ID": row_id, "NAME": name, "CITY": "Lyon"})

    def update(self, row_id: str, name: str, op_ts: datetime) -> bytes:
        return self.message(
            "U", row_id, op_ts, before={"ROW_ID": row_id}, after={"ROW_ID": row_id, "NAME": name}
        )

    def delete(self, row_id: str, op_ts: datetime) -> bytes:
        return self.message("D", row_id, op_ts, before={"ROW_ID": row_id})

    def produce(self, records: list[tuple[int, datetime, bytes]]) -> None:
        """(partition, Kafka timestamp, value) in order."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all"})
        for partition, kafka_time, value in records:
            producer.produce(
                self.name, value=value, partition=partition, timestamp=int(kafka_time.timestamp() * 1000)
            )
        assert producer.flush(30) == 0

    def inserts_on(
        self, day: date, partition: int, count: int, hour: int = 10
    ) -> list[tuple[int, datetime, bytes]]:
        """Inserts committed on `day`, captured 2 seconds later."""
        records = []
        for i in range(count):
            op_ts = at(day, hour, i)
            records.append(
                (
                    partition,
                    op_ts + timedelta(seconds=2),
                    self.insert(f"{day:%d}-{partition}-{i}", f"n{i}", op_ts),
                )
            )
        return records


class Lake:
    def __init__(self, kafka_bootstrap: str, root: Path, spec: TableSpec):
        self.resources = resources(kafka_bootstrap, root)
        lake = self.resources["lake"]
        self.bronze = lake.table_path("bronze", spec.asset_name)
        self.quarantine = lake.table_path("quarantine", spec.asset_name)
        self.silver = lake.table_path("silver", spec.asset_name)
        self.spec = spec
        self.kafka = {"bootstrap.servers": kafka_bootstrap}

    def ingest(self, spark):
        consumer = make_consumer(self.kafka, group_id="test-backfill-regular")
        try:
            return ingest_batch(spark, self.spec, consumer, self.bronze, self.quarantine)
        finally:
            consumer.close()

    def backfill(self, spark, day: date):
        consumer = make_consumer(self.kafka, group_id="test-backfill")
        try:
            return backfill_date(spark, self.spec, consumer, self.bronze, self.quarantine, day)
        finally:
            consumer.close()


def rows_of(spark, path: str, day: date | None = None, *, without: tuple[str, ...] = ()) -> list[tuple]:
    frame = spark.read.format("delta").load(path)
    if day is not None:
        frame = frame.where(F.col("event_date") == F.lit(day))
    columns = [c for c in frame.columns if c not in without]
    return sorted(tuple(row) for row in frame.select(*columns).collect())


def silver_rows(spark, path: str) -> list[tuple]:
    frame = read_table(spark, path)
    columns = sorted(frame.columns)
    return sorted(tuple(str(row[c]) for c in columns) for row in frame.collect())


def three_days(topic: Topic) -> list[tuple[int, datetime, bytes]]:
    """Two partitions, inserts on D1, D2, D3, plus the edges of the day boundary and poison records."""
    records = topic.inserts_on(D1, 0, 3) + topic.inserts_on(D1, 1, 2)
    records += topic.inserts_on(D2, 0, 4) + topic.inserts_on(D2, 1, 3)
    # committed late on D1, captured on D2: its event date is D1
    records.append((1, at(D2, 0, 5), topic.insert("early", "x", at(D1, 23, 59))))
    records.append((1, at(D2, 12), POISON))  # quarantined, event date D2 (Kafka time)
    records.append((0, at(D1, 12), POISON))  # quarantined, event date D1
    records += topic.inserts_on(D3, 0, 2) + topic.inserts_on(D3, 1, 2)
    # committed on D2, captured 40 minutes later on D3: its event date is D2
    records.append((0, at(D3, 0, 30), topic.insert("late", "y", at(D2, 23, 50))))
    return records


def test_date_backfill_rewrites_that_date_only_and_running_it_twice_gives_the_same_rows(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=2)
    topic.produce(three_days(topic))
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    assert lake.ingest(spark).rows_written == 18
    before = {day: rows_of(spark, lake.bronze, day) for day in (D1, D2, D3)}
    assert [len(before[d]) for d in (D1, D2, D3)] == [6, 8, 4]
    quarantined_d1 = rows_of(spark, lake.quarantine, D1)
    # lose part of D2 (as a faulty job or a bad manual fix would), which the backfill must restore
    DeltaTable.forPath(spark, lake.bronze).delete(
        (F.col("event_date") == F.lit(D2)) & (F.col("partition") == 0)
    )
    assert len(rows_of(spark, lake.bronze, D2)) == 3

    for attempt in (1, 2):
        result = lake.backfill(spark, D2)
        assert (result.rows_written, result.quarantined) == (8, 1), attempt
        # the date's rows are back, the same changes at the same offsets, once each
        assert rows_of(spark, lake.bronze, D2, without=("ingested_at",)) == [row[:-1] for row in before[D2]]
        # other dates untouched, to the ingestion time
        assert rows_of(spark, lake.bronze, D1) == before[D1]
        assert rows_of(spark, lake.bronze, D3) == before[D3]
        bronze = spark.read.format("delta").load(lake.bronze)
        assert bronze.count() == bronze.select("topic", "partition", "offset").distinct().count() == 18
        quarantine = spark.read.format("delta").load(lake.quarantine)
        assert quarantine.count() == 2
        assert [
            bytes(r["raw_value"]) for r in quarantine.where(F.col("event_date") == F.lit(D2)).collect()
        ] == [POISON]
        assert rows_of(spark, lake.quarantine, D1) == quarantined_d1


def test_date_backfill_leaves_the_regular_offsets_alone_and_the_next_batch_reads_only_new_records(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=2)
    topic.produce(three_days(topic))
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    first = lake.ingest(spark)
    recorded = stored_offsets(spark, lake.bronze)
    topic.produce(
        topic.inserts_on(D3, 0, 3, hour=15) + topic.inserts_on(D3, 1, 2, hour=15)
    )  # not ingested yet

    result = lake.backfill(spark, D3)
    assert result.left_to_regular_batches == 5  # D3's new records are the regular batches' to read
    assert result.rows_written == 4 and len(rows_of(spark, lake.bronze, D3)) == 4
    assert stored_offsets(spark, lake.bronze) == recorded
    assert latest_progress(spark, lake.bronze, "bronze")["batch"] == 1  # the backfill commit is not a batch

    following = lake.ingest(spark)
    assert (following.batch, following.records_read, following.rows_written) == (2, 5, 5)
    assert following.offsets_before() == first.offsets_after()
    bronze = spark.read.format("delta").load(lake.bronze)
    assert bronze.count() == bronze.select("topic", "partition", "offset").distinct().count() == 23
    assert lake.ingest(spark).batch is None


def test_backfill_of_a_date_deleted_by_kafka_retention_fails_naming_topic_partition_and_date(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=1)
    topic.produce(topic.inserts_on(D1, 0, 4) + topic.inserts_on(D2, 0, 4))
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    assert lake.ingest(spark).rows_written == 8
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    deleted = admin.delete_records([TopicPartition(topic.name, 0, 2)])
    assert (
        next(iter(deleted.values())).result(timeout=30).low_watermark == 2
    )  # offsets 0 and 1 of D1 are gone
    version = current_version(spark, lake.bronze)

    job = build_bronze_backfill_job([topic.spec])
    run = job.execute_in_process(partition_key=D1.isoformat(), resources=lake.resources, raise_on_error=False)
    assert not run.success
    failure = run.failure_data_for_node(
        f"backfill_bronze_{topic.spec.asset_name}"
    ).error.cause  # the op's own error
    assert failure.cls_name == BackfillRangeAgedOut.__name__
    assert f"{topic.name}[0]" in failure.message and "2024-05-01" in failure.message
    assert current_version(spark, lake.bronze) == version  # nothing written, no partial date

    # the day after, whose records Kafka still has, is rebuilt as usual by the same job
    run = job.execute_in_process(partition_key=D2.isoformat(), resources=lake.resources)
    assert run.success
    assert len(rows_of(spark, lake.bronze, D2)) == 4 and len(rows_of(spark, lake.bronze, D1)) == 4


def test_silver_is_unchanged_when_it_applies_a_backfilled_date_again(spark, kafka_bootstrap, tmp_lake):
    topic = Topic(kafka_bootstrap, partitions=2)
    records = three_days(topic)
    records.append((0, at(D2, 14, 0, 2), topic.update("02-0-1", "renamed", at(D2, 14))))
    records.append((1, at(D2, 14, 1, 2), topic.delete("02-1-0", at(D2, 14, 1))))
    topic.produce(records)
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    lake.ingest(spark)
    apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    before = silver_rows(spark, lake.silver)

    lake.backfill(spark, D2)
    again = apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    assert again.stats.changes_read == 10  # the rewritten date came back through the change feed
    assert silver_rows(spark, lake.silver) == before


def test_silver_rebuild_gives_the_same_rows_in_one_commit_and_the_next_micro_batch_applies_new_changes(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=2)
    topic.produce(topic.inserts_on(D1, 0, 3) + topic.inserts_on(D1, 1, 3))
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    lake.ingest(spark)
    apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    topic.produce(
        [
            (0, at(D2, 9), topic.update("01-0-1", "second", at(D2, 9))),
            (1, at(D2, 9, 1), topic.delete("01-1-2", at(D2, 9, 1))),
        ]
    )
    lake.ingest(spark)
    apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    before = silver_rows(spark, lake.silver)
    version_before = current_version(spark, lake.silver)

    job = build_silver_rebuild_job([topic.spec])
    run = job.execute_in_process(run_config={"tables": [topic.spec.asset_name]}, resources=lake.resources)
    assert run.success
    assert silver_rows(spark, lake.silver) == before
    rebuilt = current_version(spark, lake.silver)
    for version in range(version_before + 1, rebuilt + 1):  # no reader ever saw silver empty or half built
        frame = spark.read.format("delta").option("versionAsOf", version).load(lake.silver)
        assert frame.count() == len(before), version
    progress = latest_progress(spark, lake.silver, "silver")
    assert progress["rebuilt"] and progress["bronze_version"] == current_version(spark, lake.bronze)
    assert not Path(side_path(lake.silver)).exists()
    assert spark.read.format("delta").load(f"{lake.silver}/_changes").count() >= 8

    topic.produce(
        [
            (0, at(D2, 10), topic.update("01-0-1", "third", at(D2, 10))),
            (1, at(D2, 10, 1), topic.insert("new", "fresh", at(D2, 10, 1))),
        ]
    )
    lake.ingest(spark)
    batch = apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    assert batch.stats.changes_read == 2  # only what came after the rebuilt bronze version
    live = {row["ROW_ID"]: row["NAME"] for row in read_live_rows(spark, lake.silver).collect()}
    assert live["01-0-1"] == "third" and live["new"] == "fresh" and "01-1-2" not in live
    assert len(live) == 6


def test_gold_rebuild_recomputes_the_same_rows_and_the_next_refresh_continues_from_it(
    spark, kafka_bootstrap, tmp_lake
):
    topic = Topic(kafka_bootstrap, partitions=1)
    topic.produce(topic.inserts_on(D1, 0, 4))
    lake = Lake(kafka_bootstrap, tmp_lake, topic.spec)
    lake.ingest(spark)
    apply_new_bronze(spark, topic.spec, lake.bronze, lake.silver)
    name = topic.spec.asset_name
    entity = GoldEntity(
        name="test_person",
        keys=["person_id"],
        sql_file="test_person.sql",
        sources=(name,),
        sql_text=f"SELECT ROW_ID AS person_id, upper(NAME) AS name, CITY AS city FROM {name}",
    )
    gold = lake.resources["lake"].table_path("gold", entity.name)
    paths = {name: lake.silver}

    def refresh():
        register_silver_views(spark, {name: read_live_rows(spark, lake.silver)})
        return refresh_entity(
            spark,
            name=entity.name,
            keys=entity.keys,
            sql_text=entity.sql_text,
            gold_path=gold,
            silver_versions=silver_version_map(spark, paths),
        )

    refresh()
    before = rows_of(spark, gold)

    run = build_gold_rebuild_job([entity]).execute_in_process(resources=lake.resources)
    assert run.success
    assert rows_of(spark, gold) == before and len(before) == 4
    progress = latest_progress(spark, gold, "gold")
    assert progress["rebuilt"] and progress["silver_versions"] == silver_version_map(spark, paths)
    assert refresh().skipped  # the regular refresh sees the rebuilt state as current


def test_backfill_and_rebuild_ops_hold_the_pool_of_the_table_they_write():
    spec = TableSpec(table="SIEBEL.S_TEST", topic="crm.S_TEST", format="goldengate_json", keys=["ROW_ID"])
    entity = GoldEntity(
        name="test_person",
        keys=["person_id"],
        sql_file="x.sql",
        sources=(spec.asset_name,),
        sql_text=f"SELECT ROW_ID AS person_id FROM {spec.asset_name}",
    )
    asset_pools = {a.key.path[0]: a.op.pool for a in build_assets([spec], [entity])}
    op_pools = {
        job.name: {node.definition.pool for node in job.graph.nodes}
        for job in (
            build_bronze_backfill_job([spec]),
            build_silver_rebuild_job([spec]),
            build_gold_rebuild_job([entity]),
        )
    }
    assert op_pools == {
        "bronze_date_backfill": {asset_pools["bronze"]},
        "rebuild_silver": {asset_pools["silver"]},
        "rebuild_gold": {asset_pools["gold"]},
    }


def test_rebuild_run_config_chooses_the_tables_and_refuses_unknown_names():
    specs = [
        TableSpec(table=f"SIEBEL.{name}", topic=f"crm.{name}", format="goldengate_json", keys=["ROW_ID"])
        for name in ("S_ONE", "S_TWO")
    ]
    job = build_silver_rebuild_job(specs)
    chosen = {
        op: entry["config"]["chosen"]
        for op, entry in dg.validate_run_config(job, {"tables": ["s_two"]})["ops"].items()
    }
    assert chosen == {"rebuild_silver_s_one": False, "rebuild_silver_s_two": True}
    every = dg.validate_run_config(job, {})["ops"]
    assert all(entry["config"]["chosen"] for entry in every.values())
    with pytest.raises(dg.DagsterInvalidConfigError, match="s_three"):
        dg.validate_run_config(job, {"tables": ["s_three"]})


def test_projection_rebuild_ops_hold_the_pool_of_their_projection_and_run_config_chooses_them():
    from orchestration.definitions import defs

    job = defs.get_job_def("rebuild_projections")
    asset_pools = {
        key.path[-1]: defs.get_assets_def(key).op.pool
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[0] == "cassandra"
    }
    op_pools = {
        node.name.removeprefix("rebuild_projection_"): node.definition.pool for node in job.graph.nodes
    }
    assert op_pools == asset_pools and len(op_pools) == 4
    chosen = dg.validate_run_config(job, {"projections": ["order_by_id"]})["ops"]
    assert {op for op, entry in chosen.items() if entry["config"]["chosen"]} == {
        "rebuild_projection_order_by_id"
    }
