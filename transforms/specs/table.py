"""A source table's spec: the engine's input for bronze and silver (a declarative file per table;
assets.table_spec loads them).

The minimal spec is four fields::

    table: SIEBEL.S_CONTACT      # as the CDC tool reports it (GoldenGate `table`; Debezium `<schema>.<table>`)
    topic: crm.S_CONTACT
    format: goldengate_json      # or debezium_json
    keys: [ROW_ID]               # the source's own column names

Everything else has a default (see the model below).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from transforms.changes import Op
from transforms.decoders.column_types import site_pattern
from transforms.decoders.debezium_positions import describe_position_fields, every_position_field

COLUMN_TYPE = re.compile(r"^(string|long|int|double|boolean|date|timestamp|decimal\(\d+,\s*\d+\))$")
SEQUENCE_FIELDS = {
    "goldengate_json": {"csn", "pos"},
    # The spec does not name the connector (each message does): any connector's field is accepted
    # here, and decoding refuses a field the message's connector does not have.
    "debezium_json": every_position_field(),
}
SEQUENCE_FIELDS_HINT = {
    "goldengate_json": f"use fields of {sorted(SEQUENCE_FIELDS['goldengate_json'])}",
    "debezium_json": f"use the position fields of the table's connector ({describe_position_fields()})",
}


def _column_type(type_name: str) -> str:
    if not COLUMN_TYPE.match(type_name):
        raise ValueError(
            f"type {type_name!r} is not one of string, long, int, double, boolean, date, timestamp, decimal(p,s)"
        )
    return type_name


ColumnType = Annotated[str, AfterValidator(_column_type)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeletesSpec(_Strict):
    # tombstone: a deleted key is remembered, so a late older change cannot resurrect it.
    mode: Literal["tombstone"] = "tombstone"
    tombstone_retention_hours: int = Field(default=7 * 24, ge=1)


LAG = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
LAG_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_lag(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `2d` -> timedelta."""
    match = LAG.match(str(text))
    if not match:
        raise ValueError(f"max_lag {text!r} is not a number followed by s, m, h or d (e.g. 6h)")
    return timedelta(**{LAG_UNITS[match.group(2)]: int(match.group(1))})


class OutboxSpec(_Strict):
    """A transactional outbox table (Debezium's outbox event router shape; the defaults are its column
    names): each row is one domain event the service wrote in the same transaction as its business
    change. Silver keeps every event once, keyed by `event_id` (a re-delivered row is the same event),
    with its source position (`_sequence`) to order an aggregate's events; a delete or truncate of
    outbox rows is the service clearing the table, not an event, and changes nothing in silver."""

    event_id: str = "id"
    aggregate_type: str = "aggregatetype"
    aggregate_id: str = "aggregateid"
    event_type: str = "type"
    payload: str = "payload"


class ChecksSpec(_Strict):
    """The parameters of the default checks every table gets (expectations/defaults.py); a table's
    `checks:` block changes them for that table."""

    quarantined_max: int = Field(default=10, ge=0)
    """bronze `few_quarantined_in_last_batch`: at most this many records of the newest batch quarantined."""
    incomplete_mostly: float = Field(default=0.95, gt=0, le=1)
    """silver `few_incomplete_rows`: at least this share of the live rows has every column known."""
    fresh_max_lag: str = "1d"
    """silver `fresh`: the newest change applied is at most this old (`90s`, `30m`, `6h`, `2d`)."""

    @field_validator("fresh_max_lag", mode="before")
    @classmethod
    def _lag(cls, max_lag: object) -> str:
        parse_lag(str(max_lag))
        return str(max_lag)


class TableSpec(_Strict):
    table: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    format: Literal["goldengate_json", "debezium_json"]
    keys: list[str] = Field(min_length=1)
    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    description: str | None = None
    history: Literal["scd1", "scd2"] = "scd1"
    sequence_by: list[str] | None = None
    source: str = Field(default="default", pattern=r"^[a-z][a-z0-9_]*$")
    """The source database the table belongs to: its tables share one sequence order and one
    transaction-consistent cut (transforms.cut)."""
    deletes: DeletesSpec = DeletesSpec()
    allowed_operations: list[Op] = Field(default_factory=lambda: list(Op))
    columns: dict[str, ColumnType] = Field(default_factory=dict)
    """Type hints (default string). Every shape the CDC tool writes for a type is converted on the way
    into bronze; a value its type cannot hold quarantines the record (transforms/decoders/column_types.py)."""
    checks: ChecksSpec = ChecksSpec()
    """Parameters of the table's default checks (expectations/defaults.py)."""
    outbox: OutboxSpec | None = None
    """Set: the table is a transactional outbox (OutboxSpec): its deletes and truncates are ignored."""
    timestamp_format: str | None = None
    """GoldenGate only: the site's `gg.format.timestamp` pattern (e.g. `yyyy-MM-dd HH:mm:ss.SSSSSS`).
    Set, it is the one shape date and timestamp columns accept; unset, GoldenGate's default shapes."""

    @field_validator("timestamp_format")
    @classmethod
    def _timestamp_format_compiles(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is not None:
            if info.data.get("format") != "goldengate_json":
                raise ValueError("is GoldenGate's gg.format.timestamp: only for format goldengate_json")
            site_pattern(pattern)
        return pattern

    @field_validator("keys")
    @classmethod
    def _keys_unique(cls, keys: list[str]) -> list[str]:
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys repeat a column: {keys}")
        return keys

    @field_validator("sequence_by")
    @classmethod
    def _sequence_fields_exist(cls, sequence_by: list[str] | None, info: ValidationInfo) -> list[str] | None:
        format_ = info.data.get("format")
        if sequence_by is not None and format_ in SEQUENCE_FIELDS:
            unknown = [f for f in sequence_by if f not in SEQUENCE_FIELDS[format_]]
            if unknown or not sequence_by:
                raise ValueError(f"{sequence_by} for {format_}: {SEQUENCE_FIELDS_HINT[format_]}")
        return sequence_by

    @model_validator(mode="after")
    def _outbox_keyed_by_event_id(self) -> TableSpec:
        if self.outbox is not None:
            if self.keys != [self.outbox.event_id]:
                raise ValueError(
                    f"an outbox table is keyed by its event id: keys {self.keys} must be [{self.outbox.event_id}]"
                )
            if self.history != "scd1":
                raise ValueError(
                    "an outbox table keeps each event once: history scd1 (its rows never change)"
                )
        return self

    @property
    def ignored_operations(self) -> list[Op]:
        """Operations silver does not apply: an outbox's deletes and truncates (OutboxSpec)."""
        return [Op.DELETE, Op.TRUNCATE] if self.outbox is not None else []

    @property
    def asset_name(self) -> str:
        """Short name used for the Delta folders and Dagster asset keys: `s_contact` for SIEBEL.S_CONTACT."""
        return self.name or re.sub(r"[^a-z0-9_]", "_", self.table.split(".")[-1].lower())


TABLE_NAME_PLACEHOLDER = "{table_name}"


class SourceDefaults(_Strict):
    """What every table of one source shares (a source file, `<specs>/sources/<source>.yaml`): a table
    spec with `source: <source>` takes each field it does not set from here. `columns` are merged (the
    table's win); `topic` is a pattern where `{table_name}` is the table's name without its schema."""

    format: Literal["goldengate_json", "debezium_json"] | None = None
    topic: str | None = None
    keys: list[str] | None = Field(default=None, min_length=1)
    sequence_by: list[str] | None = None
    history: Literal["scd1", "scd2"] | None = None
    deletes: DeletesSpec | None = None
    columns: dict[str, ColumnType] = Field(default_factory=dict)
    timestamp_format: str | None = None
    checks: ChecksSpec | None = None

    @field_validator("topic")
    @classmethod
    def _topic_pattern(cls, topic: str | None) -> str | None:
        if topic is not None:
            rest = topic.replace(TABLE_NAME_PLACEHOLDER, "")
            if TABLE_NAME_PLACEHOLDER not in topic or "{" in rest or "}" in rest:
                raise ValueError(
                    f"{topic!r}: a topic pattern holds {TABLE_NAME_PLACEHOLDER} once (e.g. crm.{{table_name}})"
                )
        return topic

    def under(self, table: dict) -> dict:
        """A table spec's fields (as read from its file) with this source's beneath them."""
        shared = self.model_dump(exclude_unset=True, exclude_none=True)
        merged = {**shared, **table}
        merged["columns"] = {**shared.get("columns", {}), **(table.get("columns") or {})}
        if "topic" not in table and self.topic is not None and isinstance(table.get("table"), str):
            merged["topic"] = self.topic.replace(TABLE_NAME_PLACEHOLDER, table["table"].split(".")[-1])
        return merged
