"""Property: silver equals the source table as of the newest change applied, whatever order the changes
arrive in and however they are split into batches (duplicated, replayed).

Random source histories (tests.reference_model.source_histories) are delivered as a random permutation
cut into random batches with duplicates and a replayed batch; the truth is the history folded in source
order. A batch of a few keys goes through delta-rs where it may (transforms/merge/scd1_small.py), so
the SCD1 property is also held with Spark writing every MERGE. Spark is slow, so the example counts are
small; the oracle itself is checked with thousands of examples in test_reference_model.py. That any two
deliveries of one history give the same table follows: each equals the history folded in source order.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.merge.conftest import Silver, new_table_path
from tests.reference_model import deliveries, fold_in_source_order, source_histories, versions_in_source_order
from transforms import delta_rs

pytestmark = pytest.mark.integration

SPARK_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)
HISTORIES = source_histories(keys=5, max_changes=24)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return tmp_path_factory.mktemp("merge-properties")


@st.composite
def history_and_delivery(draw, max_batches: int = 3):
    history = draw(HISTORIES)
    return history, draw(deliveries(history, max_batches=max_batches))


def assert_scd1_equals_the_history(spark, lake, case) -> None:
    history, batches = case
    silver = Silver(spark, new_table_path(lake))
    for batch in batches:
        silver.apply(batch)
    assert silver.live_rows() == fold_in_source_order(history)


@settings(SPARK_SETTINGS, max_examples=15)
@given(history_and_delivery())
def test_scd1_silver_equals_the_history_folded_in_source_order_for_any_delivery(spark, lake, case):
    assert_scd1_equals_the_history(spark, lake, case)


@settings(SPARK_SETTINGS, max_examples=6)
@given(history_and_delivery())
def test_scd1_silver_merged_by_spark_alone_equals_the_history_for_any_delivery(
    spark, lake, monkeypatch, case
):
    """The same property with every MERGE written by Spark (no batch through delta-rs)."""
    monkeypatch.setattr(delta_rs, "SMALL_MERGE_CELLS", 0)
    assert_scd1_equals_the_history(spark, lake, case)


@settings(SPARK_SETTINGS, max_examples=8)
@given(history_and_delivery(max_batches=2))
def test_scd2_versions_equal_the_histories_versions_for_any_delivery(spark, lake, case):
    history, batches = case
    silver = Silver(spark, new_table_path(lake), history="scd2")
    for batch in batches:
        silver.apply(batch)
    assert silver.versions() == versions_in_source_order(history)
