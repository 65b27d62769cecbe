"""A generated workload: the Kafka messages in source order and the TRUE source state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from devtools.workload import json_text
from devtools.workload.capture import Capture, WorkloadMessage
from devtools.workload.catalogue import Catalogue
from devtools.workload.source_db import Row, RowChange, apply_change

State = dict[str, dict[str, Row]]  # source table (SIEBEL.S_CONTACT) -> ROW_ID -> full row


def as_text(value: Any) -> str | None:
    """A source value as the normalized text a decoder gives it (numbers as written, None as None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    raise TypeError(f"unexpected value {value!r}")


@dataclass(frozen=True)
class Workload:
    """messages: (topic, key bytes, value bytes) in source order (commit order; with an initial load,
    the load first). transaction_ends: message counts at which a transaction (or the whole initial
    load) is complete, i.e. the consistent cut points of the stream. ended_at: the commit time of the
    last transaction."""

    messages: list[WorkloadMessage]
    transaction_ends: list[int]
    key_columns: dict[str, str]  # source table -> key column
    final_state: State
    effects: list[RowChange | None]
    source_names: dict[str, str]  # table (S_CONTACT) -> source table (SIEBEL.S_CONTACT)
    ended_at: datetime

    @classmethod
    def from_capture(
        cls, catalogue: Catalogue, capture: Capture, state: dict[str, dict[str, Row]], ended_at: datetime
    ) -> Workload:
        load = len(capture.load_messages)
        ends = ([load] if load else []) + [load + end for end in capture.transaction_ends]
        names = {name: table.source for name, table in catalogue.tables.items()}
        return cls(
            messages=capture.load_messages + capture.messages,
            transaction_ends=ends,
            key_columns={table.source: table.key for table in catalogue.tables.values()},
            final_state={names[name]: rows for name, rows in state.items()},
            effects=capture.load_effects + capture.effects,
            source_names=names,
            ended_at=ended_at,
        )

    def state(self, as_text_values: bool = False) -> State:
        """The source tables now: {source table: {ROW_ID: full row}} (every table, empty ones too)."""
        return self._copy(self.final_state, as_text_values)

    def state_after(self, count: int, as_text_values: bool = False) -> State:
        """The rows after applying the first `count` messages' row changes in order. At a transaction
        end (see transaction_ends) outside an initial-load overlap, this is the source as of that
        commit. Inside the overlap it is what a full-row replay shows."""
        state: State = {source: {} for source in self.final_state}
        keys = {name: self.key_columns[source] for name, source in self.source_names.items()}
        short: dict[str, dict[str, Row]] = {name: state[source] for name, source in self.source_names.items()}
        for effect in self.effects[:count]:
            if effect is not None:
                apply_change(short, effect, keys)
        return self._copy(state, as_text_values)

    def topics(self) -> list[str]:
        return sorted({m.topic for m in self.messages})

    def state_json(self) -> str:
        return json_text.dumps(self.final_state)

    def messages_jsonl(self) -> str:
        """One line per message: topic, key and value as UTF-8 text (null for none)."""
        lines = []
        for topic, key, value in self.messages:
            record = {
                "topic": topic,
                "key": None if key is None else key.decode("utf-8"),
                "value": None if value is None else value.decode("utf-8"),
            }
            lines.append(json.dumps(record, ensure_ascii=False))
        return "\n".join(lines) + "\n"

    @staticmethod
    def _copy(state: State, as_text_values: bool) -> State:
        convert = as_text if as_text_values else (lambda v: v)
        return {
            t: {k: {c: convert(v) for c, v in row.items()} for k, row in rows.items()}
            for t, rows in state.items()
        }
