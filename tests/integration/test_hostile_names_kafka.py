"""Hostile source column names (tests/hostile_names.py) through real Kafka -> bronze -> silver, then
checked by Great Expectations: the table's default silver suite (its key column is hostile too) and
an expectation on each hostile column."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from expectations import validate
from expectations.defaults import silver_defaults
from expectations.suite import ExpectationSpec
from expectations.validate import run_suite
from tests.hostile_names import BATCHES, BEFORE_LATE, DOT, LATE, SPEC, expected_rows, live_rows
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import make_consumer
from transforms.merge.layout import silver_column
from transforms.silver import apply_new_bronze

pytestmark = pytest.mark.integration


def test_hostile_column_names_go_from_kafka_through_bronze_to_silver(spark, kafka_bootstrap, tmp_lake):
    spec = SPEC.model_copy(update={"topic": f"crm.hostile.{uuid.uuid4().hex[:8]}"})
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(spec.topic, 1, 1)])[spec.topic].result(timeout=30)
    bronze, quarantine, silver = (str(tmp_lake / name) for name in ("bronze", "quarantine", "silver"))

    # two micro-batches: the second brings the late older update and the column that appears late
    for values in (BATCHES[0] + BATCHES[1], BATCHES[2] + BATCHES[3]):
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
        for value in values:
            producer.produce(spec.topic, value=value)
        assert producer.flush(30) == 0
        consumer = make_consumer({"bootstrap.servers": kafka_bootstrap}, group_id="test-hostile")
        try:
            ingested = ingest_batch(spark, spec, consumer, bronze, quarantine)
        finally:
            consumer.close()
        assert (ingested.rows_written, ingested.quarantined) == (len(values), 0)
        apply_new_bronze(spark, spec, bronze, silver)

    expected, actual = expected_rows(), live_rows(spark, silver)
    assert sorted(actual) == sorted(expected)
    for key, row in expected.items():
        assert sorted(actual[key]) == sorted(row)
        for column, value in row.items():
            assert actual[key][column] == value, (key, column)

    # Great Expectations reads every hostile name as one column: the defaults (key present and unique,
    # sequence present, incomplete rows in SQL, freshness) and an expectation per hostile column
    defaults = silver_defaults(spec)
    per_column = [
        ExpectationSpec(
            name=f"column_{index}_exists",
            type="expect_column_to_exist",
            kwargs={"column": silver_column(column)},
        )
        for index, column in enumerate([*BEFORE_LATE, LATE])
    ]
    not_null = ExpectationSpec(
        name="dotted_column_set_on_every_row",
        type="expect_column_values_to_not_be_null",
        kwargs={"column": DOT},
    )
    suite = defaults.model_copy(update={"expectations": [*defaults.expectations, *per_column, not_null]})
    now = datetime.now()
    outcomes = {o.name: o for o in run_suite(spark, suite, lambda layer, name: silver, now=now)}
    # the rows of this small table were validated on the driver (GX's pandas engine); GX's Spark engine,
    # which a big table's rows get, must read the hostile names alike
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validate, "_rows_on_driver", lambda frame: None)
        on_spark = {o.name: o for o in run_suite(spark, suite, lambda layer, name: silver, now=now)}
    assert on_spark == outcomes
    assert not [o.summary() for o in outcomes.values() if o.error], outcomes
    assert {o.name for o in outcomes.values() if not o.success} <= {"fresh"}, [
        o.summary() for o in outcomes.values() if not o.success
    ]
    assert outcomes["key_unique"].element_count == len(expected)
    dotted = sum(row.get(DOT) is not None for row in expected.values())
    assert outcomes["dotted_column_set_on_every_row"].unexpected_count == len(expected) - dotted
