"""Oracle GoldenGate for Big Data, Kafka handler, JSON formatter, operation-modeled, mode=op.

One message per row operation, shaped as in docs/cdc-formats.md §1.10:
`table, op_type, op_ts, current_ts, pos, primary_keys, [xid, csn, txind], before, after`.

Updates are compressed (Extract COMPRESSUPDATES): `after` holds the key and the columns the
statement set. `before` depends on supplemental logging (BEFORE_IMAGES):
  key          only the key (ADD TRANDATA, no LOGALLSUPCOLS)
  key+changed  the key and the old values of the set columns (LOGALLSUPCOLS, the usual 12c+ setup)
  all          the whole old row (ADD TRANDATA ... ALLCOLS)
Deletes carry the key in `before` (the whole row with `all`). Inserts carry the full row in
`after`. A truncate carries no image. A column set to NULL is present with JSON null.
"""

from __future__ import annotations

from devtools.workload.source_db import RowChange

BEFORE_IMAGES = ("key", "key+changed", "all")
TRAIL_FILE_HEADER = 1_450  # bytes before the first record of a trail file
RECORD_OVERHEAD = 61  # bytes a record header adds to its data
TRAIL_FILE_SIZE = 2_000_000  # small trail files, so a workload crosses file boundaries


class Trail:
    """Trail positions: `pos` is the 10-digit trail file sequence number then the 10-digit RBA (byte
    offset in the file), so it increases strictly over the whole trail, across file switches."""

    def __init__(self, seqno: int) -> None:
        self.seqno = seqno
        self.rba = TRAIL_FILE_HEADER

    def position(self) -> str:
        return f"{self.seqno:010d}{self.rba:010d}"

    def advance(self, record_bytes: int) -> None:
        self.rba += RECORD_OVERHEAD + record_bytes
        if self.rba >= TRAIL_FILE_SIZE:
            self.seqno += 1
            self.rba = TRAIL_FILE_HEADER


def goldengate_message(
    change: RowChange,
    *,
    source_table: str,
    key_column: str,
    before_image: str,
    op_ts: str,
    current_ts: str,
    pos: str,
    transaction: dict[str, str],
) -> dict:
    if before_image not in BEFORE_IMAGES:
        raise ValueError(f"before_image {before_image!r}: use one of {BEFORE_IMAGES}")
    message = {
        "table": source_table,
        "op_type": change.op,
        "op_ts": op_ts,
        "current_ts": current_ts,
        "pos": pos,
        "primary_keys": [key_column],
        **transaction,
    }
    if change.op == "I":
        message["after"] = dict(change.new_row)
    elif change.op == "U":
        old, new = change.old_row, change.new_row
        if before_image == "all":
            message["before"] = dict(old)
        else:
            logged = change.changed if before_image == "key+changed" else ()
            message["before"] = {key_column: old[key_column], **{c: old[c] for c in logged}}
        message["after"] = {key_column: new[key_column], **{c: new[c] for c in change.changed}}
    elif change.op == "D":
        old = change.old_row
        message["before"] = dict(old) if before_image == "all" else {key_column: old[key_column]}
    return message


def goldengate_key(change: RowChange, key_column: str) -> bytes | None:
    """keyMappingTemplate=${primaryKeys}: the key value after the change (before it, for a delete)."""
    row = change.new_row if change.new_row is not None else change.old_row
    return None if row is None else str(row[key_column]).encode("utf-8")


def transaction_indicator(index: int, count: int) -> str:
    """GoldenGate TXIND: 0 begin, 1 middle, 2 end, 3 whole transaction in one operation."""
    if count == 1:
        return "3"
    if index == 0:
        return "0"
    return "2" if index == count - 1 else "1"
