"""What a micro-batch has to do: the tables with work, and the assets and checks that follow from them.

Loop mode (orchestration.loop) runs only these, so a table with nothing new costs a Kafka lag query and
a few reads of its Delta logs: no Dagster step and no Spark job. A table has work when

- its topic holds records bronze has not read (high watermarks against bronze's consumer group,
  transforms.bronze.lag; bronze commits the group's offsets after its Delta commit, so the lag never
  understates): then bronze/<table> runs;
- or silver has not applied every bronze version, or rows may still wait above the cut silver applied
  last (the newest commit position bronze holds of a partition is at or above that cut; the CDC tool
  writes each partition in commit order, the premise of transforms.cut).

From the tables with work: bronze of those with records waiting, `cut/<source>` of their sources,
their silver tables and everything Dagster's asset graph puts downstream of those (gold entities,
projections); the checks of every selected asset, the checks that read one (a reference to a changed
parent), and the freshness checks whose verdict the clock has changed since their last evaluation
(the table did not move, so its newest value is the one that evaluation recorded: the check runs when
it would now fail where it passed, or the other way round, or when it has no readable evaluation);
with the checks that read another table, their suite's ordering check on it (expectations.checks):
without it the suite's step would wait for that table's blocking checks. With nothing to do, the loop
starts no run at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from confluent_kafka import KafkaException
from pyspark.sql import SparkSession

from assets.names import asset_key, bronze_key, cut_key, silver_key
from expectations.checks import ordering_checks_for
from expectations.reuse import freshness_verdict, previous_evaluation
from expectations.suite import ExpectationSpec, Suite
from resources.connections import KafkaResource, LakeResource
from transforms.bronze.ingest import STAGE as BRONZE_STAGE
from transforms.bronze.kafka_reader import KafkaReadError
from transforms.bronze.lag import bronze_group_id, topic_lag
from transforms.cut import commit_position
from transforms.delta_commits import current_version, latest_progress
from transforms.silver import applied_progress
from transforms.specs.table import TableSpec


@dataclass(frozen=True)
class TableWork:
    records_waiting: int | None  # in Kafka, not yet in bronze (None: Kafka could not tell; bronze runs)
    silver_behind: bool  # bronze holds rows silver may not have applied


def silver_behind(spark: SparkSession, bronze_path: str, silver_path: str) -> bool:
    bronze_version = current_version(spark, bronze_path)
    if bronze_version is None:
        return False
    applied_version, applied_cut = applied_progress(spark, silver_path)
    if applied_version != bronze_version:
        return True
    if applied_cut is None:  # silver applied everything bronze held at that version
        return False
    frontier = (latest_progress(spark, bronze_path, BRONZE_STAGE) or {}).get("frontier", {})
    newest = [commit_position(sequence) for sequence, _ in frontier.values() if sequence]
    return bool(newest) and max(newest) >= applied_cut


def tables_with_work(
    specs: list[TableSpec], kafka: KafkaResource, spark: SparkSession, lake: LakeResource
) -> dict[str, TableWork]:
    """asset name -> its work, for the tables that have some."""
    work = {}
    for spec in specs:
        try:
            lag = topic_lag(kafka.client_config(), spec.topic, bronze_group_id(spec.asset_name))
            waiting = sum(records for _, records in lag.values())
        except (KafkaException, KafkaReadError):  # e.g. no such topic: bronze runs and its run says why
            waiting = None
        behind = silver_behind(
            spark, lake.table_path("bronze", spec.asset_name), lake.table_path("silver", spec.asset_name)
        )
        if waiting != 0 or behind:
            work[spec.asset_name] = TableWork(waiting, behind)
    return work


FreshnessDue = Callable[[dg.AssetCheckKey, ExpectationSpec], bool]


def freshness_changed(instance: dg.DagsterInstance, now: datetime | None = None) -> FreshnessDue:
    """Whether a freshness check's verdict at `now` differs from its last evaluation's in `instance`
    (or it has none that can be read): then it must run even though its table did not move."""

    def changed(key: dg.AssetCheckKey, expectation: ExpectationSpec) -> bool:
        previous = previous_evaluation(instance, key)
        if previous is None:
            return True
        evaluation, _ = previous
        verdict = freshness_verdict(evaluation, expectation, now)
        return verdict is None or verdict != evaluation.passed or "error" in evaluation.metadata

    return changed


def microbatch_selection(
    asset_graph,
    specs: list[TableSpec],
    suites: list[Suite],
    work: dict[str, TableWork],
    freshness_due: FreshnessDue,
) -> tuple[set[dg.AssetKey], set[dg.AssetCheckKey]]:
    """The assets and checks a micro-batch runs for `work` (see the module docstring); a freshness
    check of an asset that does not run is selected when `freshness_due` says so (freshness_changed)."""
    with_work = [spec for spec in specs if spec.asset_name in work]
    silver = dg.AssetSelection.assets(*[silver_key(spec) for spec in with_work])
    assets = set(silver.downstream().resolve(asset_graph)) if with_work else set()
    assets |= {bronze_key(spec) for spec in with_work if work[spec.asset_name].records_waiting != 0}
    assets |= {cut_key(spec.source) for spec in with_work}
    checks = set()
    for suite in suites:
        checked = asset_key(suite.layer, suite.table)
        for expectation in suite.expectations:
            key = dg.AssetCheckKey(checked, expectation.name)
            reads = {dg.AssetKey(list(table)) for table in expectation.tables_read()}
            if checked in assets or reads & assets:
                checks.add(key)
            elif expectation.freshness is not None and freshness_due(key, expectation):
                checks.add(key)
    checks |= ordering_checks_for(suites, checks)
    return assets, checks & set(asset_graph.asset_check_keys)
