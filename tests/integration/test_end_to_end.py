"""The whole flow on real servers: CRM workload -> Kafka -> bronze -> silver -> gold, through Dagster."""

from __future__ import annotations

import pytest

from orchestration.workload import WorkloadConfig, generate_workload
from orchestration.workload.compare import differences, silver_rows, truth_rows
from orchestration.workload.producer import produce_messages
from tests.pipeline import materialize_all, resources, specs_on_topics, unique_prefix

pytestmark = pytest.mark.integration


def test_silver_equals_the_source_after_an_initial_load_and_changes_in_two_micro_batches(
    spark, kafka_bootstrap, tmp_lake
):
    prefix = unique_prefix()
    workload = generate_workload(
        WorkloadConfig(seed=11, initial_rows=60, changes=300, initial_load=True, overlap=5,
                       topic_template=prefix + ".{table}")
    )
    specs = specs_on_topics(prefix)
    half = len(workload.messages) // 2
    res = resources(kafka_bootstrap, tmp_lake)

    produce_messages(kafka_bootstrap, workload.messages[:half], partitions=3)
    first = materialize_all(specs, res)
    assert first.success
    produce_messages(kafka_bootstrap, workload.messages[half:], partitions=3)
    second = materialize_all(specs, res)
    assert second.success

    truth = workload.state(as_text_values=True)
    for spec in specs:
        silver = silver_rows(spark, str(tmp_lake / "silver" / spec.asset_name), spec)
        expected = truth_rows(truth[spec.table], spec)
        problems = differences(silver, expected)
        assert not problems, f"{spec.table}: {len(problems)} differences, e.g. {problems[:3]}"

    bronze_events = sum(
        spark.read.format("delta").load(str(tmp_lake / "bronze" / s.asset_name)).count() for s in specs
    )
    assert bronze_events == len(workload.messages)

    # a third run with nothing new changes no table
    versions = {s.asset_name: spark.sql(f"DESCRIBE HISTORY delta.`{tmp_lake}/silver/{s.asset_name}`").count() for s in specs}
    assert materialize_all(specs, res).success
    again = {s.asset_name: spark.sql(f"DESCRIBE HISTORY delta.`{tmp_lake}/silver/{s.asset_name}`").count() for s in specs}
    assert again == versions
