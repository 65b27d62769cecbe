"""`make run`'s workload ends at the moment it is generated, so a clean run's freshness checks pass."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from devtools.demo import workload_config
from devtools.workload import generate_workload


def _op_times(workload) -> list[datetime]:
    return [datetime.fromisoformat(json.loads(m.value)["op_ts"]) for m in workload.messages if m.value]


def test_the_demo_workload_commits_its_last_transaction_now():
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    workload = generate_workload(workload_config(small=True))
    after = datetime.now(UTC).replace(tzinfo=None)
    assert before <= workload.ended_at <= after
    times = _op_times(workload)
    assert max(times) <= after and max(times) >= before - timedelta(seconds=5)
    assert min(times) >= before - timedelta(hours=2)  # the whole stream is recent, not only its end


def test_a_given_end_time_gives_the_same_workload_each_time():
    ends_at = datetime(2026, 5, 17, 9, 30, 0)
    first = generate_workload(workload_config(small=True, ends_at=ends_at))
    second = generate_workload(workload_config(small=True, ends_at=ends_at))
    assert first.ended_at == ends_at
    assert first.messages == second.messages and first.state() == second.state()
    shifted = generate_workload(workload_config(small=True, ends_at=ends_at + timedelta(days=1)))
    assert len(shifted.messages) == len(first.messages) and shifted.messages != first.messages


def test_an_end_time_with_a_zone_is_taken_as_its_utc_time():
    zoned = datetime(2026, 5, 17, 11, 30, 0, tzinfo=timezone(timedelta(hours=2)))
    workload = generate_workload(workload_config(small=True, ends_at=zoned))
    assert workload.ended_at == datetime(2026, 5, 17, 9, 30, 0)
