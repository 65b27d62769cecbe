"""Transaction-consistent cuts across the tables of one source.

A micro-batch must never apply half of a source transaction, nor a child table's change before the
parent change that preceded it in the source, even when one topic lags behind another. Silver
therefore applies, in each run, only the changes whose COMMIT POSITION (the first component of the
source sequence: `csn` for GoldenGate with `sequence_by: [csn, pos]`, `commit_scn` for Debezium
Oracle, `commit_lsn` for SQL Server and Db2; transforms/decoders/debezium_positions.py) is below a cut that every table of the source has reached. Changes at or beyond the cut stay
in bronze and are applied by a later run; nothing is dropped.

How the cut is chosen. The CDC tool writes each Kafka partition in commit order, so once bronze holds
a partition's record at commit position c, every change of that partition below c is in bronze too.
Per partition the frontier is the commit position of its newest bronze row (by offset), and the cut
is the smallest frontier over the source's partitions. A partition does not hold the cut back when
bronze has read it up to its high watermark and its newest record is older than the idle time
(`CDC_CUT_IDLE_SECONDS`, default 30): a quiet table must not stall the others forever, which bounds
how far behind one topic may lag another before the cut trusts it (Flink's watermark idleness makes
the same trade). The newest transaction of a busy partition waits until the partition moves past it
or goes idle.

With GoldenGate's default `sequence_by: [pos]` the first component is the operation's trail position,
so cuts still respect source order across tables but may fall inside a transaction; add `csn` to the
handler's metaColumnsTemplate and put it first in `sequence_by` for transaction-exact cuts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

NOTHING = ""  # a cut position below every sequence: nothing passes
DEFAULT_IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class PartitionFrontier:
    topic: str
    partition: int
    newest_sequence: str | None  # sequence of the newest bronze row of the partition (None: no row yet)
    newest_kafka_ms: int | None  # Kafka timestamp of the newest record bronze read from it
    caught_up: bool  # bronze has read the partition up to its current high watermark

    @property
    def name(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True)
class Cut:
    """`position`: exclusive upper bound on the sequence of the changes silver may apply (an encoded
    commit position; NOTHING lets none through), or None when no partition holds the cut back."""

    position: str | None
    held_by: tuple[str, ...] = ()

    def admits(self, sequence: str) -> bool:
        return self.position is None or sequence < self.position


def commit_position(sequence: str) -> str:
    """The first component of an encoded sequence (transforms.sequence), itself an encoded sequence.

    Every sequence whose first component is below `commit_position(s)` sorts below it as text."""
    return sequence.split(".", 1)[0]


def idle_seconds_from_env() -> float:
    text = os.environ.get("CDC_CUT_IDLE_SECONDS", str(DEFAULT_IDLE_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"CDC_CUT_IDLE_SECONDS must be a number of seconds, got {text!r}") from None
    if seconds < 0:
        raise ValueError(f"CDC_CUT_IDLE_SECONDS must not be negative, got {text!r}")
    return seconds


def consistent_cut(frontiers: list[PartitionFrontier], now_ms: int, idle_seconds: float) -> Cut:
    def is_idle(frontier: PartitionFrontier) -> bool:
        if not frontier.caught_up:
            return False
        return frontier.newest_kafka_ms is None or now_ms - frontier.newest_kafka_ms >= idle_seconds * 1000

    holding = [f for f in frontiers if not is_idle(f)]
    if not holding:
        return Cut(None)
    positions = {
        f.name: NOTHING if f.newest_sequence is None else commit_position(f.newest_sequence) for f in holding
    }
    lowest = min(positions.values())
    return Cut(lowest, tuple(sorted(name for name, position in positions.items() if position == lowest)))
