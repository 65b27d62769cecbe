"""orchestration.pending.microbatch_selection on the shipped graph: a table with work brings its chain
(bronze if records wait, the source's cut, silver, the gold entities and projections built from it),
the checks of those assets and of assets that read them (with their suites' ordering checks), and
every freshness check; a table without work brings nothing. Expected sets are derived from the specs,
entities and projections, not from the Dagster graph the function walks. No servers."""

from __future__ import annotations

import dagster as dg
import pytest

from expectations.suite import load_suites
from orchestration.definitions import defs, entities, projections, specs
from orchestration.pending import TableWork, microbatch_selection

SUITES = load_suites()
GRAPH = defs.resolve_asset_graph()


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
    assets, checks = microbatch_selection(GRAPH, specs, SUITES, {table: TableWork(3, False)})

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
    assets, _ = microbatch_selection(GRAPH, specs, SUITES, {"s_order": TableWork(0, True)})

    assert assets == expected_assets("s_order", with_bronze=False)


def test_nothing_to_do_runs_only_the_freshness_checks():
    assets, checks = microbatch_selection(GRAPH, specs, SUITES, {})

    assert assets == set()
    assert checks == freshness_checks() and checks


def test_a_table_whose_lag_kafka_could_not_tell_runs_its_bronze_so_the_run_says_why():
    assets, _ = microbatch_selection(GRAPH, specs, SUITES, {"s_order": TableWork(None, False)})

    assert assets == expected_assets("s_order", with_bronze=True)
