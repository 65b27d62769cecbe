"""Incremental gold (transforms/gold/engine.py, `affected_keys` in assets/gold/entities.yaml) on
real Spark + Delta, with silver made by the real merge engine.

The `story` fixture builds silver the way the pipeline does (the workload generator's GoldenGate
messages, decoded by the project's decoders, merged by transforms.merge.apply_changes) in randomly
sized micro-batches, running gold after each. Then it makes one targeted source change at a time
(a contact, an address, an order line, a delete, a list-of-values rename), running every gold entity
after each and recording what the run did. At the end, and after the workload's batches, each gold
table is compared with a fresh full recompute: incremental runs must give the same table.

Gold is kept twice over the same silver: `gold` as a big table is (deletion vectors on, so Spark writes
every MERGE) and `gold_small` as a small one is (no deletion vectors, so delta-rs writes the MERGEs of
a few keys: transforms/gold/small_merge.py). Both must do the same at every step.

The whole flow through Dagster, compared with the cleanup rules applied to the source's truth, is
in tests/integration/test_make_run.py (the lake `make run` leaves).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from assets.factory import load_entities
from assets.gold_spec import GoldEntity
from devtools.workload import WorkloadConfig, generate_workload
from tests.gold_expectation import differences, read_gold
from tests.pipeline import crm_specs
from transforms import deletion_vectors
from transforms.bronze_rows import BRONZE_SCHEMA, to_bronze_row
from transforms.changes import ChangeRecord, KafkaCoordinates, KafkaMessage, Op
from transforms.decoders import decode_for_spec
from transforms.delta_commits import current_version
from transforms.gold.engine import (
    FULL,
    INCREMENTAL,
    GoldStats,
    refresh_entity,
    register_silver_views,
)
from transforms.merge import apply_changes, read_live_rows, read_table
from transforms.sequence import decode_sequence
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration

SPECS = crm_specs()
SPEC_BY_TOPIC = {spec.topic: spec for spec in SPECS}
SPEC_BY_NAME = {spec.asset_name: spec for spec in SPECS}
ENTITIES = load_entities(SPECS)
ENTITY = {entity.name: entity for entity in ENTITIES}
WORKLOAD = WorkloadConfig(seed=23, initial_rows=40, changes=160)
BATCHES = 2  # every silver batch costs one merge per table: the slow part of this module
# Commit time of the hand-made changes: years after the workload's, so silver purges the workload's
# tombstones (older than their retention) in those batches, which must not count as changed rows.
NOW = datetime(2031, 1, 1, 12, 0, 0)
SMALL = "gold_small"  # the gold kept without deletion vectors: its small MERGEs go through delta-rs
DELETION_VECTORS_FROM_BYTES = deletion_vectors.DELETION_VECTORS_FROM_BYTES  # the story patches it to 0


# ---- silver, made by the real merge engine -----------------------------------------------------------


def workload_changes(seed_config: WorkloadConfig) -> list[tuple[TableSpec, ChangeRecord]]:
    """Every change of the workload's messages, decoded as bronze does (decode_for_spec), in stream order."""
    changes = []
    for offset, (topic, key, value) in enumerate(generate_workload(seed_config).messages):
        spec = SPEC_BY_TOPIC[topic]
        message = KafkaMessage(topic=topic, partition=0, offset=offset, key=key, value=value)
        changes += [(spec, c) for c in decode_for_spec(message, spec)]
    return changes


class Lake:
    """Silver tables under <root>/silver, gold entities under <root>/<gold folder>."""

    def __init__(self, spark, root: Path) -> None:
        self.spark, self.root = spark, root
        self.offset = 10**9  # Kafka offsets of the hand-made changes

    def silver_path(self, name: str) -> str:
        return str(self.root / "silver" / name)

    def apply(self, changes: list[tuple[TableSpec, ChangeRecord]]) -> None:
        """One silver batch per table that has changes (each one silver commit)."""
        for spec in SPECS:
            mine = [to_bronze_row(change, NOW) for s, change in changes if s is spec]
            if mine:
                apply_changes(
                    self.spark,
                    self.spark.createDataFrame(mine, BRONZE_SCHEMA),
                    self.silver_path(spec.asset_name),
                    keys=spec.keys,
                    column_types=spec.columns,
                    history=spec.history,
                    tombstone_retention_hours=spec.deletes.tombstone_retention_hours,
                )

    def version(self, name: str) -> int:
        return current_version(self.spark, self.silver_path(name))

    def refresh(
        self, entity: GoldEntity, folder: str = "gold", incremental: bool = True, sql_text: str | None = None
    ) -> GoldStats:
        paths = {name: self.silver_path(name) for name in entity.sources}
        versions = {name: self.version(name) for name in entity.sources}
        register_silver_views(
            self.spark, {name: read_live_rows(self.spark, path) for name, path in paths.items()}
        )
        with pytest.MonkeyPatch.context() as patch:
            if folder == SMALL:  # a small table: no deletion vectors
                patch.setattr(deletion_vectors, "DELETION_VECTORS_FROM_BYTES", DELETION_VECTORS_FROM_BYTES)
            return refresh_entity(
                self.spark,
                name=entity.name,
                keys=entity.keys,
                sql_text=sql_text or entity.sql_text,
                gold_path=self.gold_path(entity.name, folder),
                silver_versions=versions,
                silver_paths=paths if incremental else None,
                affected_keys=entity.affected_keys if incremental else None,
            )

    def refresh_all(self, folder: str = "gold") -> dict[str, GoldStats]:
        return {entity.name: self.refresh(entity, folder) for entity in ENTITIES}

    def gold_path(self, entity: str, folder: str = "gold") -> str:
        return str(self.root / folder / entity)

    def gold(self, entity: str, folder: str = "gold") -> dict[str, dict]:
        (key,) = ENTITY[entity].keys
        return read_gold(self.spark, self.gold_path(entity, folder), key)

    def live(self, name: str) -> list[dict]:
        frame = read_live_rows(self.spark, self.silver_path(name))
        return [row.asDict() for row in frame.collect()]

    def full_recompute_differences(self, folder: str, incremental_folder: str = "gold") -> dict[str, list]:
        """Each entity recomputed whole into <folder> and compared with the incremental gold table."""
        found = {}
        for entity in ENTITIES:
            self.refresh(entity, folder=folder, incremental=False)
            found[entity.name] = differences(
                self.gold(entity.name, incremental_folder), self.gold(entity.name, folder)
            )
        return found

    def last_commit(self, entity: str, folder: str = "gold") -> dict:
        path = self.gold_path(entity, folder)
        (row,) = self.spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()
        return {
            "version": row["version"],
            "operation": row["operation"],
            "engine": row["engineInfo"],
            "metrics": dict(row["operationMetrics"] or {}),
        }

    def gold_changes(self, entity: str, version: int, folder: str = "gold") -> list[tuple[str, str]]:
        """(change type, key) of every row image gold's change data feed holds for one commit."""
        (key,) = ENTITY[entity].keys
        feed = (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", version)
            .option("endingVersion", version)
            .load(self.gold_path(entity, folder))
        )
        return sorted((row["_change_type"], row[key]) for row in feed.collect())


class SourceChanges:
    """Hand-made source changes, as the GoldenGate decoder gives them (compressed updates: the key
    and the changed columns), with commit positions after everything silver holds."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        newest = max(
            decode_sequence(row[0])[0]
            for spec in SPECS
            for row in read_table(lake.spark, lake.silver_path(spec.asset_name))
            .agg(F.max("_sequence"))
            .collect()
            if row[0] is not None
        )
        self.position = newest + 1_000

    def _record(self, table: str, op: Op, row_id: str, after: dict | None) -> tuple[TableSpec, ChangeRecord]:
        spec = SPEC_BY_NAME[table]
        self.position += 1
        self.lake.offset += 1
        return spec, ChangeRecord(
            table=spec.table,
            op=op,
            key={"ROW_ID": row_id},
            before={"ROW_ID": row_id},
            after=after,
            full_image=False,
            position=(self.position, 0),
            kafka=KafkaCoordinates(spec.topic, 0, self.lake.offset),
            commit_ts=NOW,
        )

    def update(self, table: str, row_id: str, **columns: str | None) -> tuple[TableSpec, ChangeRecord]:
        return self._record(table, Op.UPDATE, row_id, {"ROW_ID": row_id, **columns})

    def delete(self, table: str, row_id: str) -> tuple[TableSpec, ChangeRecord]:
        return self._record(table, Op.DELETE, row_id, None)


# ---- the story ------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One source change, then every entity run: what the runs did and what gold held around them."""

    stats: dict[str, GoldStats]
    before: dict[str, dict[str, dict]]
    after: dict[str, dict[str, dict]]
    commits: dict[str, dict] = field(default_factory=dict)
    changes: dict[str, list] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    small: dict[str, GoldStats] = field(default_factory=dict)  # the same runs of gold_small
    small_commits: dict[str, dict] = field(default_factory=dict)
    small_changes: dict[str, list] = field(default_factory=dict)


@dataclass
class Story:
    lake: Lake
    batch_stats: list[dict[str, GoldStats]]
    small_batch_stats: list[dict[str, GoldStats]]
    steps: dict[str, Step]
    at_end: dict[str, list]  # entity -> differences between incremental gold and a full recompute
    small_at_end: dict[str, list]  # the same for gold_small


def run_step(lake: Lake, changes: list, watched: list[str], facts: dict | None = None) -> Step:
    before = {name: lake.gold(name) for name in watched}
    lake.apply(changes)
    stats = lake.refresh_all()
    step = Step(
        stats=stats, before=before, after={name: lake.gold(name) for name in watched}, facts=facts or {}
    )
    step.small = lake.refresh_all(SMALL)
    for name in watched:
        step.commits[name] = lake.last_commit(name)
        step.changes[name] = lake.gold_changes(name, step.commits[name]["version"])
        step.small_commits[name] = lake.last_commit(name, SMALL)
        step.small_changes[name] = lake.gold_changes(name, step.small_commits[name]["version"], SMALL)
    return step


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory) -> Iterator[Story]:
    # gold as a big table has it: with deletion vectors (transforms.deletion_vectors), so a MERGE
    # rewrites no row it does not change (the small tables of the other flow tests rewrite their files)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deletion_vectors, "DELETION_VECTORS_FROM_BYTES", 0)
        yield tell_story(spark, tmp_path_factory)


def tell_story(spark, tmp_path_factory) -> Story:
    lake = Lake(spark, tmp_path_factory.mktemp("incremental_lake"))
    changes = workload_changes(WORKLOAD)
    rng = random.Random(WORKLOAD.seed)
    cuts = sorted(rng.sample(range(1, len(changes)), BATCHES - 1))
    batch_stats, small_batch_stats = [], []
    for start, end in zip([0, *cuts], [*cuts, len(changes)], strict=True):
        lake.apply(changes[start:end])
        batch_stats.append(lake.refresh_all())
        small_batch_stats.append(lake.refresh_all(SMALL))

    edit = SourceChanges(lake)
    steps = {}
    customers = lake.gold("customer")

    # one contact's e-mail
    contact = sorted(customers)[0]
    steps["contact"] = run_step(
        lake,
        [edit.update("s_contact", contact, EMAIL_ADDR="changed.once@example.com")],
        ["customer"],
        {"key": contact},
    )

    # an address two or more contacts may share: its city
    users: dict[str, list[str]] = {}
    for row in customers.values():
        if row["primary_address_id"] is not None and row["address_line_1"] is not None:
            users.setdefault(row["primary_address_id"], []).append(row["customer_id"])
    address = max(sorted(users), key=lambda a: len(users[a]))
    steps["address"] = run_step(
        lake,
        [edit.update("s_addr_per", address, CITY="Incremental City  ")],
        ["customer"],
        {"key": address, "customers": sorted(users[address])},
    )

    # an order line's quantity
    items = lake.gold("order_item")
    orders = lake.gold("order")
    item = next(
        row
        for _, row in sorted(items.items())
        if row["order_id"] in orders and row["net_price"] and row["quantity"] is not None
    )
    steps["order_item"] = run_step(
        lake,
        [edit.update("s_order_item", item["order_item_id"], QTY_REQ=str(item["quantity"] + 3))],
        ["order", "order_item"],
        {"item": item, "order": item["order_id"]},
    )

    # a contact deleted
    deleted = sorted(customers)[-1]
    steps["delete"] = run_step(lake, [edit.delete("s_contact", deleted)], ["customer"], {"key": deleted})

    # a list-of-values display value renamed: the contact status most contacts hold
    customers = lake.gold("customer")
    codes = [row["status_code"] for row in customers.values() if row["status"] is not None]
    code = max(sorted(set(codes)), key=codes.count)
    (lov,) = [
        row
        for row in lake.live("s_lst_of_val")
        if (row["TYPE"].strip(), row["NAME"].strip(), row["LANG_ID"].strip())
        == ("CONTACT_STATUS", code, "ENU")
    ]
    renamed = f"Renamed {lov['VAL'].strip()}"
    steps["rename"] = run_step(
        lake,
        [edit.update("s_lst_of_val", lov["ROW_ID"], VAL=renamed)],
        ["customer", "product"],
        {"code": code, "value": renamed, "old_value": lov["VAL"].strip()},
    )
    steps["rename"].facts["product_rerun_skipped"] = lake.refresh(ENTITY["product"]).skipped

    at_end = lake.full_recompute_differences("full_recompute")
    small_at_end = lake.full_recompute_differences("full_recompute", incremental_folder=SMALL)
    return Story(
        lake=lake,
        batch_stats=batch_stats,
        small_batch_stats=small_batch_stats,
        steps=steps,
        at_end=at_end,
        small_at_end=small_at_end,
    )


# ---- incremental equals full ----------------------------------------------------------------------------


def test_incremental_gold_equals_a_full_recompute_after_random_workload_batches_and_targeted_changes(story):
    first, *later = story.batch_stats
    assert {name: (s.mode, s.reason) for name, s in first.items()} == {
        e.name: (FULL, "first run") for e in ENTITIES
    }
    modes = {s.mode for stats in later for s in stats.values()}
    assert modes == {INCREMENTAL}, "the later batches must exercise the incremental path, not fall back"
    assert any(s.keys_recomputed > 0 for stats in later for s in stats.values())
    assert story.at_end == {entity.name: [] for entity in ENTITIES}


def test_gold_written_by_delta_rs_does_what_spark_does_at_every_step_and_equals_a_full_recompute(story):
    def outcome(stats: GoldStats) -> tuple:
        return stats.mode, stats.keys_recomputed, stats.rows, stats.inserted, stats.updated, stats.deleted

    for spark_runs, small_runs in zip(story.batch_stats, story.small_batch_stats, strict=True):
        assert {n: outcome(s) for n, s in small_runs.items()} == {
            n: outcome(s) for n, s in spark_runs.items()
        }
    written_by = set()
    for name, step in story.steps.items():
        assert {n: outcome(s) for n, s in step.small.items()} == {
            n: outcome(s) for n, s in step.stats.items()
        }, name
        assert step.small_changes == step.changes, name
        for entity, stats in step.small.items():
            if entity in step.small_commits and stats.keys_recomputed:
                commit = step.small_commits[entity]
                assert (commit["operation"], commit["engine"].split(":")[0]) == ("MERGE", "delta-rs"), name
                assert step.commits[entity]["engine"].startswith("Apache-Spark"), name
                written_by.add(entity)
    assert written_by == {"customer", "order", "order_item"}
    assert story.small_at_end == {entity.name: [] for entity in ENTITIES}


# ---- what each change recomputes --------------------------------------------------------------------------


def test_an_updated_contact_recomputes_only_its_own_gold_row(story):
    step = story.steps["contact"]
    key = step.facts["key"]
    stats = step.stats["customer"]
    assert (stats.mode, stats.keys_recomputed, stats.rows) == (INCREMENTAL, 1, 1)
    assert (stats.inserted, stats.updated, stats.deleted) == (0, 1, 0)
    assert step.after["customer"][key]["email"] == "changed.once@example.com"
    others_before = {k: v for k, v in step.before["customer"].items() if k != key}
    others_after = {k: v for k, v in step.after["customer"].items() if k != key}
    assert others_after == others_before
    commit = step.commits["customer"]
    assert commit["operation"] == "MERGE"
    assert commit["metrics"]["numTargetRowsUpdated"] == "1"
    assert commit["metrics"]["numTargetRowsCopied"] == "0"  # deletion vectors: no other row rewritten
    assert step.changes["customer"] == [("update_postimage", key), ("update_preimage", key)]
    # the entities that do not read s_contact did not run at all
    assert {name for name, s in step.stats.items() if s.skipped} == {
        "account",
        "order",
        "order_item",
        "product",
    }


def test_a_changed_address_reaches_every_contact_whose_primary_address_it_is(story):
    step = story.steps["address"]
    customers = step.facts["customers"]
    stats = step.stats["customer"]
    assert (stats.mode, stats.keys_recomputed, stats.updated) == (INCREMENTAL, len(customers), len(customers))
    assert {k for k, row in step.after["customer"].items() if row["city"] == "Incremental City"} == set(
        customers
    )
    assert sorted({key for _, key in step.changes["customer"]}) == customers


def test_a_changed_order_line_updates_its_orders_totals(story):
    step = story.steps["order_item"]
    item, order = step.facts["item"], step.facts["order"]
    before, after = step.before["order"][order], step.after["order"][order]
    assert after["total_amount"] == before["total_amount"] + item["net_price"] * 3
    assert after["item_count"] == before["item_count"]
    for entity in ("order", "order_item"):
        stats = step.stats[entity]
        assert (stats.mode, stats.keys_recomputed, stats.updated) == (INCREMENTAL, 1, 1)
    assert {key for _, key in step.changes["order"]} == {order}
    assert step.after["order_item"][item["order_item_id"]]["quantity"] == item["quantity"] + 3


def test_a_deleted_contact_removes_its_gold_row(story):
    step = story.steps["delete"]
    key = step.facts["key"]
    stats = step.stats["customer"]
    assert (stats.mode, stats.keys_recomputed, stats.rows) == (INCREMENTAL, 1, 0)
    assert (stats.inserted, stats.updated, stats.deleted) == (0, 0, 1)
    assert key in step.before["customer"] and key not in step.after["customer"]
    assert len(step.after["customer"]) == len(step.before["customer"]) - 1
    assert step.changes["customer"] == [("delete", key)]


def test_a_renamed_display_value_reaches_every_row_that_shows_it_and_no_other(story):
    step = story.steps["rename"]
    code, value = step.facts["code"], step.facts["value"]
    holders = {k for k, row in step.before["customer"].items() if row["status_code"] == code}
    assert 0 < len(holders) < len(step.before["customer"])
    assert {k for k, row in step.after["customer"].items() if row["status"] == value} == holders
    assert all(
        row["status"] == step.facts["old_value"] for k, row in step.before["customer"].items() if k in holders
    )
    stats = step.stats["customer"]
    assert (stats.mode, stats.keys_recomputed, stats.updated) == (INCREMENTAL, len(holders), len(holders))
    # every entity reads s_lst_of_val: the others find no row holding that code and rewrite nothing
    for name in ("account", "order", "order_item", "product"):
        assert (step.stats[name].mode, step.stats[name].keys_recomputed) == (INCREMENTAL, 0)
    assert step.after["product"] == step.before["product"]
    assert step.changes["product"] == []  # a commit that records the silver versions, without data,
    assert step.facts["product_rerun_skipped"]  # so the next run finds nothing new


# ---- when gold recomputes everything (these go on with the story's lake once its facts are recorded) ---------


def test_a_changed_sql_text_recomputes_the_whole_entity(story):
    lake, product = story.lake, ENTITY["product"]
    reworded = lake.refresh(product, sql_text="-- reworded header\n" + product.sql_text)
    again = lake.refresh(product, sql_text="-- reworded header\n" + product.sql_text)
    assert (reworded.mode, reworded.reason, reworded.updated) == (FULL, "the SQL changed", 0)
    assert reworded.keys_recomputed == len(lake.gold("product")) > 0
    assert again.skipped


def test_a_vacuumed_change_data_feed_falls_back_to_a_full_recompute_that_says_so(spark, story):
    lake, customer = story.lake, ENTITY["customer"]
    assert lake.refresh(customer).skipped
    key = sorted(lake.gold("customer"))[0]
    lake.apply([SourceChanges(lake).update("s_contact", key, LAST_NAME="Vacuumed")])
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        spark.sql(f"VACUUM delta.`{lake.silver_path('s_contact')}` RETAIN 0 HOURS")
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    stats = lake.refresh(customer)
    assert stats.mode == FULL
    assert stats.reason.startswith("s_contact: change data feed of versions ")
    assert (stats.updated, lake.gold("customer")[key]["last_name"]) == (1, "Vacuumed")


def test_a_delta_rs_merge_that_fails_before_its_commit_is_written_by_spark_instead(story, monkeypatch):
    """delta-rs failing before it commits (say, DataNodes its own HDFS client cannot reach) leaves the
    table as it was: gold then writes the same MERGE with Spark."""
    import deltalake

    lake, customer = story.lake, ENTITY["customer"]
    lake.refresh(customer, SMALL)  # up to date with the tests before (a vacuumed feed: a full recompute)
    key = sorted(lake.gold("customer", SMALL))[0]
    lake.apply([SourceChanges(lake).update("s_contact", key, LAST_NAME="Written By Spark")])
    before = lake.last_commit("customer", SMALL)["version"]

    def unreachable(*args, **kwargs):
        raise OSError("no route to the DataNodes (injected)")

    monkeypatch.setattr(deltalake.DeltaTable, "merge", unreachable)
    stats = lake.refresh(customer, SMALL)

    commit = lake.last_commit("customer", SMALL)
    assert (stats.mode, stats.keys_recomputed, stats.updated) == (INCREMENTAL, 1, 1)
    assert commit["version"] == before + 1
    assert (commit["operation"], commit["engine"].split("/")[0]) == ("MERGE", "Apache-Spark")
    assert lake.gold("customer", SMALL)[key]["last_name"] == "Written By Spark"
    assert lake.refresh(customer, SMALL).skipped  # the progress went in with Spark's commit
