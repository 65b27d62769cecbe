"""orchestration.pending.microbatch_selection on the shipped graph: a table with work brings its chain
(bronze if records wait, the source's cut, silver, the gold entities and projections built from it),
the checks of those assets and of assets that read them (with their suites' ordering checks), and
the freshness checks whose verdict the clock changed; a table without work brings nothing. Expected
sets are derived from the specs, entities and projections, not from the Dagster graph the function
walks. No servers (the instance is an ephemeral one in memory)."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pytest

from expectations.suite import load_suites
from orchestration.definitions import defs, entities, projections, specs
from orchestration.pending import TableWork, freshness_changed, microbatch_selection

SUITES = load_suites()
GRAPH = defs.resolve_asset_graph()


def every_freshness_check_due(key, expectation) -> bool:
    return True


def expected_assets(table: str, with_bronze: bool) -> set[dg.AssetKey]:
    source = next(spec.source for spec in specs if spec.asset_name == table)
    gold = {entity.name for entity in entities if table in entity.sources}
    served = {p.projection for p in projections if gold & set(p.entities)}
    return {
        *([dg.AssetKey(["bronze", table])] if with_bronze else []),
        dg.AssetKey(["cut", source]),
        dg.AssetKey(["silver", table]),
        *(dg.AssetKey(["gold", name]) for name in gold),
        *(dg.AssetKey(["cassandra", name]) for name in served),
    }


def freshness_checks() -> set[dg.AssetCheckKey]:
    return {
        dg.AssetCheckKey(dg.AssetKey([s.layer, s.table]), e.name)
        for s in SUITES
        for e in s.expectations
        if e.freshness is not None
    }


@pytest.mark.parametrize("table", ["s_prod_int", "s_contact"])
def test_a_table_with_records_waiting_brings_its_chain_and_the_checks_that_read_it(table):
    assets, checks = microbatch_selection(
        GRAPH, specs, SUITES, {table: TableWork(3, False)}, every_freshness_check_due
    )

    assert assets == expected_assets(table, with_bronze=True)
    expected_checks = freshness_checks()
    for suite in SUITES:
        for expectation in suite.expectations:
            reads = {dg.AssetKey(list(t)) for t in expectation.tables_read()}
            if dg.AssetKey([suite.layer, suite.table]) in assets or reads & assets:
                expected_checks.add(
                    dg.AssetCheckKey(dg.AssetKey([suite.layer, suite.table]), expectation.name)
                )
                # its suite's ordering check on each table of its own layer it reads (gold reads silver
                # tables upstream of it: those need none)
                expected_checks |= {
                    dg.AssetCheckKey(dg.AssetKey(list(t)), f"read_by_{suite.layer}_{suite.table}")
                    for t in expectation.tables_read()
                    if t[0] == suite.layer
                }
    assert checks == expected_checks
    assert any(key.name.startswith("read_by_") for key in checks)
    # the subset builds: the suites reading each other's tables do not wait for each other's blocking checks
    defs.resolve_job_def("microbatch").get_subset(asset_selection=assets, asset_check_selection=checks)
    assert any(key.asset_key not in assets for key in checks - freshness_checks()), (
        "no check of a reading asset"
    )


def test_silver_behind_bronze_runs_silver_without_bronze():
    assets, _ = microbatch_selection(
        GRAPH, specs, SUITES, {"s_order": TableWork(0, True)}, every_freshness_check_due
    )

    assert assets == expected_assets("s_order", with_bronze=False)


def test_nothing_to_do_runs_only_the_freshness_checks():
    assets, checks = microbatch_selection(GRAPH, specs, SUITES, {}, every_freshness_check_due)

    assert assets == set()
    assert checks == freshness_checks() and checks


def test_a_table_whose_lag_kafka_could_not_tell_runs_its_bronze_so_the_run_says_why():
    assets, _ = microbatch_selection(
        GRAPH, specs, SUITES, {"s_order": TableWork(None, False)}, every_freshness_check_due
    )

    assert assets == expected_assets("s_order", with_bronze=True)


def test_with_nothing_to_do_only_the_freshness_checks_whose_verdict_changed_run():
    due = sorted(freshness_checks(), key=str)[:1]

    assets, checks = microbatch_selection(GRAPH, specs, SUITES, {}, lambda key, expectation: key in due)

    assert assets == set() and checks == set(due)
    assert microbatch_selection(GRAPH, specs, SUITES, {}, lambda key, expectation: False) == (set(), set())


def test_a_table_with_work_runs_its_freshness_check_whatever_the_clock_says():
    _, checks = microbatch_selection(
        GRAPH, specs, SUITES, {"s_contact": TableWork(3, False)}, lambda key, expectation: False
    )

    assert [key.name for key in checks if key.asset_key == dg.AssetKey(["silver", "s_contact"])]
    assert not [
        key for key in checks & freshness_checks() if key.asset_key != dg.AssetKey(["silver", "s_contact"])
    ]


def _record_evaluation(instance, key: dg.AssetCheckKey, passed: bool, **metadata) -> None:
    evaluation = dg.AssetCheckEvaluation(
        asset_key=key.asset_key, check_name=key.name, passed=passed, metadata=metadata
    )
    instance.report_runless_asset_event(evaluation)


def test_a_freshness_check_is_due_when_never_evaluated_or_when_the_clock_flips_its_verdict():
    suite = next(s for s in SUITES if s.layer == "silver" and s.table == "s_contact")
    fresh = next(e for e in suite.expectations if e.freshness is not None)
    key = dg.AssetCheckKey(dg.AssetKey(["silver", "s_contact"]), fresh.name)
    newest = datetime(2026, 6, 1, 12, 0)
    before_lag, after_lag = newest + fresh.freshness.lag / 2, newest + fresh.freshness.lag * 2
    with dg.DagsterInstance.ephemeral() as instance:
        assert freshness_changed(instance, before_lag)(key, fresh)  # never evaluated

        _record_evaluation(instance, key, True, observed_value=str(newest))
        assert not freshness_changed(instance, before_lag)(key, fresh)  # still fresh: nothing to say
        assert freshness_changed(instance, after_lag)(key, fresh)  # now stale: it must report that

        _record_evaluation(instance, key, False, observed_value=str(newest))
        assert not freshness_changed(instance, after_lag)(key, fresh)  # stale, and it said so

        _record_evaluation(instance, key, True, observed_value="not a time")
        assert freshness_changed(instance, before_lag)(key, fresh)  # nothing it can judge from
