"""Hostile source column names (issue 18) and a GoldenGate story over them, for the merge tests and the
Kafka -> bronze -> silver test.

Every name below is a column of one GoldenGate table; the key column's name is hostile too. The batches
hold partial updates (each column last-writer-wins by source sequence, an absent column is untouched, a
JSON null is a value), a late older update and a column that appears only in a later batch. Silver names
every column as the source does, but with U+02CB for a backtick (transforms.merge.layout.silver_column).
"""

from __future__ import annotations

import json

from transforms.merge import read_live_rows
from transforms.merge.layout import silver_column
from transforms.specs.table import TableSpec

KEY = "ROW ID`s 'key'"
SPACE, QUOTE, BACKTICK, BACKSLASH, DOT = "FIRST NAME", "O'BRIEN", "A`B", "C\\D", "X.Y"
UNICODE, LONG = "NAMÉ_ÜNICODE", "L" + "o" * 198 + "G"
COMMA, PARENS, EQUALS = "a,b", "p(q)", "k=v"
LATE = "LATE `col`, (new)=é.x"  # appears in the third batch only: schema drift
TABLE = "SIEBEL.S_HOSTILE"
SPEC = TableSpec(
    table=TABLE, topic="crm.S_HOSTILE", format="goldengate_json", keys=[KEY], columns={DOT: "long"}
)
BEFORE_LATE = [SPACE, QUOTE, BACKTICK, BACKSLASH, DOT, UNICODE, LONG, COMMA, PARENS, EQUALS]


def gg(op: str, pos: int, after: dict) -> bytes:
    message = {
        "table": TABLE,
        "op_type": op,
        "op_ts": f"2024-01-01 10:00:{pos:02d}.000000",
        "pos": f"{pos:020d}",
        "after": after,
    }
    return json.dumps(message).encode()


def full_row(key: str, tag: str) -> dict:
    row = {KEY: key, **{c: f"{tag}:{c}" for c in BEFORE_LATE}}
    row[DOT] = str(len(tag))
    return row


# position -> message; the batches deliver them out of order
INSERT_1 = gg("I", 1, full_row("k'1`", "one"))
INSERT_2 = gg("I", 2, full_row("k\\2", "two"))
UPDATE_5 = gg("U", 5, {KEY: "k'1`", SPACE: "five", BACKTICK: None, DOT: "55"})
UPDATE_4 = gg("U", 4, {KEY: "k'1`", SPACE: "four", QUOTE: "four", LONG: "four"})  # SPACE loses to 5
UPDATE_6 = gg("U", 6, {KEY: "k\\2", BACKSLASH: "six", PARENS: None})
DRIFT_7 = gg("U", 7, {KEY: "k'1`", LATE: "seven", COMMA: "seven"})
DRIFT_3 = gg("U", 3, {KEY: "k\\2", LATE: "three", EQUALS: "three"})  # older than UPDATE_6, other columns
BATCHES = [[INSERT_1, INSERT_2], [UPDATE_5, UPDATE_6], [UPDATE_4], [DRIFT_7, DRIFT_3]]


def expected_rows() -> dict[str, dict]:
    one, two = full_row("k'1`", "one"), full_row("k\\2", "two")
    one.update(
        {SPACE: "five", BACKTICK: None, DOT: "55", QUOTE: "four", LONG: "four", LATE: "seven", COMMA: "seven"}
    )
    two.update({BACKSLASH: "six", PARENS: None, LATE: "three", EQUALS: "three"})
    return {
        row[KEY]: {silver_column(c): int(v) if c == DOT else v for c, v in row.items()} for row in (one, two)
    }


def live_rows(spark, path: str, key: str = silver_column(KEY)) -> dict[str, dict]:
    """Silver's live rows by key value: every user column by name."""
    frame = read_live_rows(spark, path)
    users = [c for c in frame.columns if not c.startswith("_")]
    return {r[key]: {c: r[c] for c in users} for r in frame.collect()}
