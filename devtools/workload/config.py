"""Workload settings. Table knowledge lives in crm_schema.yaml; these are the knobs of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from devtools.workload.catalogue import DEFAULT_CATALOGUE
from devtools.workload.goldengate import BEFORE_IMAGES

OPERATIONS = ("insert", "update", "delete", "key_change", "truncate_reload")


@dataclass(frozen=True)
class WorkloadConfig:
    """
    seed            same seed (and settings) -> byte-identical messages
    initial_rows    rows the database holds before the change stream (list of values included)
    changes         business transactions in the change stream (each is one or more messages)
    before_image    GoldenGate before image of updates: key | key+changed | all
    initial_load    True: the initial rows arrive as a GoldenGate initial load (inserts from a
                    separate trail, positions below the change trail), followed by the changes
    overlap         with initial_load: this many change transactions happen after the capture
                    started but before the load's snapshot, so they appear in the stream after the
                    load although the load already contains their effect
    debezium_tables tables (e.g. S_PROD_INT) written as Debezium JSON instead of GoldenGate JSON
    topic_template  Kafka topic per table; {table} is the short table name (S_CONTACT)
    transaction_fields  GoldenGate xid/csn/txind fields and the Debezium transaction block
    operation_weights   relative frequency of each kind of change transaction
    """

    seed: int = 7
    initial_rows: int = 200
    changes: int = 2000
    before_image: str = "key+changed"
    initial_load: bool = False
    overlap: int = 0
    debezium_tables: tuple[str, ...] = ()
    debezium_tombstones: bool = True
    topic_template: str = "crm.{table}"
    transaction_fields: bool = True
    operation_weights: dict[str, float] = field(
        default_factory=lambda: {
            "insert": 25,
            "update": 58,
            "delete": 12,
            "key_change": 1.5,
            "truncate_reload": 0.5,
        }
    )
    start_time: datetime = datetime(2024, 3, 1, 8, 0, 0)
    catalogue_path: Path = DEFAULT_CATALOGUE

    def __post_init__(self) -> None:
        if self.before_image not in BEFORE_IMAGES:
            raise ValueError(f"before_image {self.before_image!r}: use one of {BEFORE_IMAGES}")
        if self.initial_rows < 0 or self.changes < 0:
            raise ValueError("initial_rows and changes are counts (>= 0)")
        if self.overlap and not self.initial_load:
            raise ValueError("overlap needs initial_load")
        if not 0 <= self.overlap <= self.changes:
            raise ValueError(f"overlap {self.overlap} must be between 0 and changes ({self.changes})")
        unknown = set(self.operation_weights) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; use {OPERATIONS}")
        if "{table}" not in self.topic_template:
            raise ValueError("topic_template needs {table}")
