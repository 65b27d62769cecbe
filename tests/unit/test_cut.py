"""The transaction-consistent cut across the partitions of one source (transforms.cut)."""

from __future__ import annotations

import pytest

from transforms.cut import (
    NOTHING,
    Cut,
    PartitionFrontier,
    commit_position,
    consistent_cut,
    idle_seconds_from_env,
)
from transforms.sequence import encode_sequence

NOW_MS = 1_000_000_000


def seq(*components: int) -> str:
    return encode_sequence(components)


def frontier(name: str, newest: str | None, *, caught_up: bool = True, age_s: float = 0) -> PartitionFrontier:
    topic, partition = name.split(":")
    return PartitionFrontier(topic, int(partition), newest, NOW_MS - int(age_s * 1000), caught_up)


def test_commit_position_is_the_first_component_and_orders_below_its_sequences():
    assert commit_position(seq(120, 7, 3)) == seq(120)
    assert seq(119, 999) < commit_position(seq(120, 7)) <= seq(120, 0) < seq(121)


def test_the_cut_is_the_lowest_newest_commit_position_of_the_busy_partitions():
    cut = consistent_cut(
        [
            frontier("orders:0", seq(50, 3)),
            frontier("orders:1", seq(70, 1)),
            frontier("contacts:0", seq(40, 9)),
        ],
        NOW_MS,
        idle_seconds=60,
    )
    assert cut == Cut(seq(40), ("contacts[0]",))


def test_changes_below_the_cut_pass_and_the_cut_transaction_waits():
    cut = consistent_cut([frontier("a:0", seq(40, 2)), frontier("b:0", seq(55, 1))], NOW_MS, idle_seconds=60)
    assert cut.admits(seq(39, 999, 5))
    assert not cut.admits(seq(40, 1, 0))  # the same transaction as the newest row of a:0: it may go on
    assert not cut.admits(seq(55, 1, 0))


def test_an_idle_caught_up_partition_does_not_hold_the_cut():
    cut = consistent_cut(
        [frontier("a:0", seq(10), age_s=120), frontier("b:0", seq(80), age_s=1)], NOW_MS, idle_seconds=60
    )
    assert cut.position == seq(80)


def test_a_partition_with_a_backlog_holds_the_cut_however_old_its_newest_record():
    cut = consistent_cut(
        [frontier("a:0", seq(10), caught_up=False, age_s=3600), frontier("b:0", seq(80), age_s=3600)],
        NOW_MS,
        idle_seconds=60,
    )
    assert cut == Cut(seq(10), ("a[0]",))


def test_a_backlog_with_no_row_in_bronze_yet_lets_nothing_pass():
    cut = consistent_cut([frontier("a:0", None, caught_up=False), frontier("b:0", seq(80))], NOW_MS, 60)
    assert cut.position == NOTHING
    assert not cut.admits(seq(0, 0))


def test_no_cut_when_every_partition_is_idle_or_empty():
    never_written = PartitionFrontier("b", 0, None, None, caught_up=True)
    cut = consistent_cut([frontier("a:0", seq(10), age_s=61), never_written], NOW_MS, idle_seconds=60)
    assert cut == Cut(None)
    assert cut.admits(seq(10**12))


def test_idle_seconds_come_from_the_environment_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("CDC_CUT_IDLE_SECONDS", "12.5")
    assert idle_seconds_from_env() == 12.5
    monkeypatch.setenv("CDC_CUT_IDLE_SECONDS", "soon")
    with pytest.raises(ValueError, match="CDC_CUT_IDLE_SECONDS.*'soon'"):
        idle_seconds_from_env()
