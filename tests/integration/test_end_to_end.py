"""The whole flow on real servers, through Dagster: CRM workload (initial load overlapping the change
stream) -> Kafka -> bronze -> silver -> gold, in two micro-batches. Silver must equal the generator's
true source tables, and gold the cleanup rules applied in plain Python (tests/gold_expectation.py) to
that truth; the second batch updates gold incrementally; a third run with nothing new changes nothing.
"""

from __future__ import annotations

import pytest

from assets.factory import load_entities
from orchestration.workload import WorkloadConfig, generate_workload
from orchestration.workload.compare import differences as silver_differences
from orchestration.workload.compare import silver_rows, truth_rows
from orchestration.workload.producer import produce_messages
from tests.gold_expectation import ambiguous_lookups, differences, expected_gold, read_gold, truth_as_silver
from tests.pipeline import materialize_all, resources, specs_on_topics, unique_prefix
from transforms.gold.engine import HASH_COLUMN, INCREMENTAL

pytestmark = pytest.mark.integration


def gold_metadata(result, entity: str) -> dict:
    (event,) = result.asset_materializations_for_node(f"gold__{entity}")
    return {name: value.value for name, value in event.metadata.items()}


def test_silver_equals_the_source_and_gold_the_cleanup_rules_after_an_initial_load_and_two_micro_batches(
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
        problems = silver_differences(silver, truth_rows(truth[spec.table], spec))
        assert not problems, f"{spec.table}: {len(problems)} differences, e.g. {problems[:3]}"
    bronze_events = sum(
        spark.read.format("delta").load(str(tmp_lake / "bronze" / s.asset_name)).count() for s in specs
    )
    assert bronze_events == len(workload.messages)

    source = truth_as_silver(truth, specs)
    assert ambiguous_lookups(source) == []
    expected = expected_gold(source)
    for entity in load_entities(specs):
        (key,) = entity.keys
        rows = read_gold(spark, str(tmp_lake / "gold" / entity.name), key)
        gold = {k: {c: v for c, v in row.items() if c != HASH_COLUMN} for k, row in rows.items()}
        problems = differences(gold, expected[entity.name])
        assert not problems, f"gold {entity.name}: {len(problems)} differences, e.g. {problems[:3]}"
        assert gold, f"gold {entity.name} is empty"
    for entity in ("customer", "order"):  # the second micro-batch updated gold incrementally
        metadata = gold_metadata(second, entity)
        assert (metadata["mode"], metadata["full_recompute_reason"]) == (INCREMENTAL, "-"), metadata
        assert metadata["keys_recomputed"] > 0

    # a third run with nothing new changes no table
    def history_lengths() -> dict[str, int]:
        return {f"{layer}/{name}": spark.sql(f"DESCRIBE HISTORY delta.`{tmp_lake}/{layer}/{name}`").count()
                for layer, names in (("silver", [s.asset_name for s in specs]),
                                     ("gold", [e.name for e in load_entities(specs)]))
                for name in names}
    versions = history_lengths()
    assert materialize_all(specs, res).success
    assert history_lengths() == versions
