"""Transaction-consistent cuts across tables (transforms.cut), through the real asset graph.

The CRM workload's transactions span tables (an order and its items, a contact and its extension
row, ...). One topic is delivered only up to the middle of the stream while the others are complete:
with the cut, every silver table shows the source as of ONE transaction boundary, a state the source
really had; nothing beyond the lagging topic's position is applied, and nothing is lost once it
catches up.
"""

from __future__ import annotations

import time
from collections import Counter

import dagster as dg
import pytest
from delta.tables import DeltaTable

from devtools.workload import WorkloadConfig, generate_workload
from devtools.workload.compare import differences, silver_rows, truth_rows
from devtools.workload.producer import produce_messages
from tests.pipeline import materialize_all, resources, specs_on_topics, unique_prefix

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
SILVER_ONLY = dg.AssetSelection.groups("bronze", "silver")  # the cut asset is in the bronze group


def silver_state(spark, lake, specs) -> dict[str, dict]:
    paths = {spec.table: str(lake / "silver" / spec.asset_name) for spec in specs}
    return {
        spec.table: silver_rows(spark, paths[spec.table], spec)
        if DeltaTable.isDeltaTable(spark, paths[spec.table])
        else {}
        for spec in specs
    }


def matches(silver: dict[str, dict], truth: dict, specs) -> bool:
    return all(not differences(silver[s.table], truth_rows(truth[s.table], s)) for s in specs)


def boundary_shown(workload, silver, specs) -> int | None:
    """The transaction end (message count) whose source state silver shows, if any."""
    for end in reversed(workload.transaction_ends):
        if matches(silver, workload.state_after(end, as_text_values=True), specs):
            return end
    return None


def test_a_lagging_topic_holds_every_table_at_one_source_transaction_boundary(
    spark, kafka_bootstrap, tmp_lake, monkeypatch
):
    """The other topics went quiet an hour ago (their records carry that Kafka time); the lagging
    topic is still being written (fresh records) and has reached only the middle of the stream."""
    prefix = unique_prefix()
    workload = generate_workload(
        WorkloadConfig(
            seed=23, initial_rows=30, changes=160, initial_load=True, topic_template=prefix + ".{table}"
        )
    )
    specs = specs_on_topics(prefix)
    lagging = Counter(m.topic for m in workload.messages[len(workload.messages) // 3 :]).most_common(1)[0][0]
    middle = workload.transaction_ends[len(workload.transaction_ends) // 2]
    others = [m for m in workload.messages if m.topic != lagging]
    lagging_early = [m for m in workload.messages[:middle] if m.topic == lagging]
    lagging_late = [m for m in workload.messages[middle:] if m.topic == lagging]
    assert lagging_late, "the lagging topic must have changes after the middle of the stream"
    res = resources(kafka_bootstrap, tmp_lake)
    monkeypatch.setenv("CDC_CUT_IDLE_SECONDS", "600")

    produce_messages(kafka_bootstrap, others, partitions=3, timestamp_ms=int(time.time() * 1000) - HOUR_MS)
    produce_messages(kafka_bootstrap, lagging_early, partitions=3)
    assert materialize_all(specs, res, selection=SILVER_ONLY).success

    shown = boundary_shown(workload, silver_state(spark, tmp_lake, specs), specs)
    assert shown is not None, "silver shows a state the source never had"
    assert 0 < shown <= middle, (
        f"silver went past the lagging topic: boundary {shown}, topic stopped at {middle}"
    )

    produce_messages(kafka_bootstrap, lagging_late, partitions=3)
    assert materialize_all(specs, res, selection=SILVER_ONLY).success
    caught_up = boundary_shown(workload, silver_state(spark, tmp_lake, specs), specs)
    assert caught_up is not None and caught_up > shown

    monkeypatch.setenv("CDC_CUT_IDLE_SECONDS", "0")  # every partition is read to its end and now quiet
    assert materialize_all(specs, res, selection=SILVER_ONLY).success
    final = silver_state(spark, tmp_lake, specs)
    assert matches(final, workload.state(as_text_values=True), specs), "held-back changes were lost"
    bronze_rows = sum(
        spark.read.format("delta").load(str(tmp_lake / "bronze" / s.asset_name)).count() for s in specs
    )
    assert bronze_rows == len(workload.messages)


def test_without_a_cut_the_same_delivery_shows_a_state_the_source_never_had(spark, kafka_bootstrap, tmp_lake):
    """The control: the assertion above has teeth (CDC_CUT_IDLE_SECONDS=0 turns the cut off here)."""
    prefix = unique_prefix()
    workload = generate_workload(
        WorkloadConfig(
            seed=23, initial_rows=30, changes=160, initial_load=True, topic_template=prefix + ".{table}"
        )
    )
    specs = specs_on_topics(prefix)
    lagging = Counter(m.topic for m in workload.messages[len(workload.messages) // 3 :]).most_common(1)[0][0]
    middle = workload.transaction_ends[len(workload.transaction_ends) // 2]
    produce_messages(
        kafka_bootstrap,
        [m for i, m in enumerate(workload.messages) if m.topic != lagging or i < middle],
        partitions=3,
    )
    assert materialize_all(specs, resources(kafka_bootstrap, tmp_lake), selection=SILVER_ONLY).success
    assert boundary_shown(workload, silver_state(spark, tmp_lake, specs), specs) is None
