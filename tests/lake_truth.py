"""A CRM workload's lake compared with the truth, layer by layer, as the whole-flow and fault tests judge
it: bronze holds each Kafka record once, silver equals the generator's source state, gold the cleanup
rules applied to it (tests/gold_expectation.py). Each function returns the problems it found (empty:
equal), so a test asserts on them and a failure says what differs. `lake`: the lake root (a local
folder or a URI: hdfs://, s3a://)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from devtools.workload import Workload
from devtools.workload.compare import differences as silver_differences
from devtools.workload.compare import silver_rows, truth_rows
from tests.gold_expectation import ambiguous_lookups, expected_gold, read_gold, truth_as_silver
from tests.gold_expectation import differences as gold_differences
from transforms.delta_commits import current_version


def bronze_problems(spark, lake: str | Path, specs, workload: Workload) -> list[str]:
    """Each table's bronze holds each of its topic's records once, and nothing went to quarantine."""
    per_topic = Counter(message.topic for message in workload.messages)
    problems = []
    for spec in specs:
        bronze = spark.read.format("delta").load(f"{lake}/bronze/{spec.asset_name}")
        rows, records = bronze.count(), bronze.select("topic", "partition", "offset").distinct().count()
        if rows != per_topic[spec.topic] or records != rows:
            problems.append(
                f"bronze {spec.asset_name}: {rows} rows of {records} records, {per_topic[spec.topic]} produced"
            )
        if current_version(spark, f"{lake}/quarantine/{spec.asset_name}") is not None:
            problems.append(f"quarantine {spec.asset_name} has rows")
    return problems


def silver_problems(spark, lake: str | Path, specs, workload: Workload) -> list[str]:
    """Each table's silver equals the source table the workload ended with."""
    truth = workload.state(as_text_values=True)
    problems = []
    for spec in specs:
        rows = silver_rows(spark, f"{lake}/silver/{spec.asset_name}", spec)
        found = silver_differences(rows, truth_rows(truth[spec.table], spec))
        if found:
            problems.append(f"silver {spec.table}: {len(found)} differences, e.g. {found[:3]}")
    return problems


def gold_problems(spark, lake: str | Path, specs, entities, workload: Workload) -> list[str]:
    """Each gold entity equals the cleanup rules applied to the source the workload ended with."""
    from transforms.gold.engine import HASH_COLUMN

    source = truth_as_silver(workload.state(as_text_values=True), specs)
    ambiguous = ambiguous_lookups(source)  # the rules would not say which display value is right
    problems = [f"ambiguous list-of-values lookups in the source: {ambiguous}"] if ambiguous else []
    expected = expected_gold(source)
    for entity in entities:
        (key,) = entity.keys
        stored = read_gold(spark, f"{lake}/gold/{entity.name}", key)
        rows = {k: {c: v for c, v in row.items() if c != HASH_COLUMN} for k, row in stored.items()}
        found = gold_differences(rows, expected[entity.name])
        if found:
            problems.append(f"gold {entity.name}: {len(found)} differences, e.g. {found[:3]}")
    return problems
