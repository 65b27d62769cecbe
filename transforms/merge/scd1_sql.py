"""The SQL expressions of the SCD1 MERGE: the cell rule, column by column.

Target `t` is the stored row; source `s` is the batch's NET change of a key:
    s._s_image_seq / s._s_image_op  the newest full image or delete in the batch (or the new truncate)
    s._s_image_values               that image's columns (present columns only; the rest are null)
    s._s_cols                       column -> (value, seq) of its newest setter, only setters newer
                                    than s._s_image_seq
    s._s_sequence / s._s_commit_ts  the newest change of the key in the batch
    s._s_replace                    the row was rebuilt from the change log: take it as it is
The stored sequence of a column is `t._col_seq[c]`, else `t._image_seq` (the image set it, the delete
erased it), else unknown. A column takes the source's value only where the source's sequence for it is
strictly newer: this one rule gives late changes, duplicates, replays, deletes and partial updates.
"""

from __future__ import annotations

from transforms.merge.layout import TABLE_KEY, key_values_sql
from transforms.sql_text import MergeAssignments, quote_identifier, sql_string

EMPTY_ARRAY = "cast(array() as array<string>)"
S_COL_SEQS = "transform_values(s._s_cols, (__k, __v) -> __v.seq)"

NEW_IMAGE_SEQ = "(CASE WHEN s._s_replace THEN s._s_image_seq ELSE greatest(t._image_seq, s._s_image_seq) END)"
NEW_IMAGE_OP = (
    "(CASE WHEN s._s_replace THEN s._s_image_op"
    " WHEN s._s_image_seq IS NOT NULL AND (t._image_seq IS NULL OR s._s_image_seq > t._image_seq)"
    " THEN s._s_image_op ELSE t._image_op END)"
)
NEW_SEQUENCE = "(CASE WHEN s._s_replace THEN s._s_sequence ELSE greatest(t._sequence, s._s_sequence) END)"
NEW_COL_SEQ = (
    f"(CASE WHEN s._s_replace THEN {S_COL_SEQS} ELSE map_filter("
    f"map_zip_with(t._col_seq, {S_COL_SEQS}, (__k, __a, __b) -> greatest(coalesce(__a, t._image_seq), __b, s._s_image_seq)),"
    f" (__k, __v) -> {NEW_IMAGE_SEQ} IS NULL OR __v > {NEW_IMAGE_SEQ}) END)"
)
NEW_DELETED = (
    f"(t._key = '{TABLE_KEY}' OR ({NEW_IMAGE_OP} <=> 'delete' AND {NEW_SEQUENCE} = {NEW_IMAGE_SEQ}))"
)
INSERT_DELETED = (
    f"(s._key = '{TABLE_KEY}' OR (s._s_image_op <=> 'delete' AND s._s_sequence = s._s_image_seq))"
)


def _column_names(columns: list[str]) -> str:
    return f"array({', '.join(sql_string(c) for c in columns)})" if columns else EMPTY_ARRAY


def _unknown(columns: list[str], col_seq: str) -> str:
    return f"array_sort(filter({_column_names(columns)}, __c -> NOT map_contains_key({col_seq}, __c)))"


def _source_cell(column: str) -> str:
    return f"try_element_at(s._s_cols, {sql_string(column)})"


def _source_seq(column: str) -> str:
    return f"coalesce({_source_cell(column)}.seq, s._s_image_seq)"


def _source_value(column: str) -> str:
    cell = _source_cell(column)
    return (
        f"(CASE WHEN {cell} IS NOT NULL THEN {cell}.value"
        f" WHEN s._s_image_op = 'image' THEN try_element_at(s._s_image_values, {sql_string(column)}) END)"
    )


def _target_seq(column: str, is_new: bool) -> str:
    if is_new:
        return "t._image_seq"
    return f"coalesce(try_element_at(t._col_seq, {sql_string(column)}), t._image_seq)"


def key_value(column: str, type_name: str) -> str:
    return f"try_cast(try_element_at({key_values_sql('s._key')}, {sql_string(column)}) AS {type_name})"


def update_set(columns: dict[str, str], new_columns: set[str]) -> MergeAssignments:
    """SET of WHEN MATCHED: `columns` are the non-key user columns -> Spark type."""
    assignments: MergeAssignments = {}
    for column, type_name in columns.items():
        source_seq, target_seq = _source_seq(column), _target_seq(column, column in new_columns)
        wins = f"s._s_replace OR ({source_seq} IS NOT NULL AND ({target_seq} IS NULL OR {source_seq} > {target_seq}))"
        keep = "NULL" if column in new_columns else f"t.{quote_identifier(column)}"
        assignments[quote_identifier(column)] = (
            f"CASE WHEN {wins} THEN try_cast({_source_value(column)} AS {type_name}) ELSE {keep} END"
        )
    names = list(columns)
    assignments.update(
        {
            "_col_seq": NEW_COL_SEQ,
            "_image_seq": NEW_IMAGE_SEQ,
            "_image_op": NEW_IMAGE_OP,
            "_sequence": NEW_SEQUENCE,
            "_commit_ts": (
                f"CASE WHEN t._key = '{TABLE_KEY}' THEN greatest(t._commit_ts, s._s_commit_ts)"
                " WHEN s._s_replace OR s._s_sequence > t._sequence THEN s._s_commit_ts ELSE t._commit_ts END"
            ),
            "_deleted": NEW_DELETED,
            "_incomplete": (
                f"CASE WHEN {NEW_DELETED} OR {NEW_IMAGE_OP} <=> 'image' THEN {EMPTY_ARRAY}"
                f" ELSE {_unknown(names, NEW_COL_SEQ)} END"
            ),
            "_pk_changed": "CASE WHEN s._s_replace THEN true ELSE t._pk_changed END",
        }
    )
    return assignments


def update_condition(widen_incomplete: bool) -> str:
    """Only rows the source changes are rewritten, and always the table row: every batch is a commit."""
    target_seq = "coalesce(try_element_at(t._col_seq, __c), t._image_seq)"
    conditions = [
        f"t._key = '{TABLE_KEY}'",
        "s._s_replace",
        "s._s_sequence > t._sequence",
        "(s._s_image_seq IS NOT NULL AND (t._image_seq IS NULL OR s._s_image_seq > t._image_seq))",
        f"exists(map_keys(s._s_cols), __c -> {target_seq} IS NULL OR try_element_at(s._s_cols, __c).seq > {target_seq})",
    ]
    if widen_incomplete:
        conditions.append("(NOT t._deleted AND NOT (t._image_op <=> 'image'))")
    return " OR ".join(conditions)


def insert_values(keys: dict[str, str], columns: dict[str, str]) -> MergeAssignments:
    values: MergeAssignments = {"_key": "s._key"}
    values.update({quote_identifier(k): key_value(k, t) for k, t in keys.items()})
    values.update({quote_identifier(c): f"try_cast({_source_value(c)} AS {t})" for c, t in columns.items()})
    values.update(
        {
            "_col_seq": S_COL_SEQS,
            "_image_seq": "s._s_image_seq",
            "_image_op": "s._s_image_op",
            "_sequence": "s._s_sequence",
            "_commit_ts": "s._s_commit_ts",
            "_deleted": INSERT_DELETED,
            "_incomplete": (
                f"CASE WHEN {INSERT_DELETED} OR s._s_image_op <=> 'image' THEN {EMPTY_ARRAY}"
                f" ELSE {_unknown(list(columns), 's._s_cols')} END"
            ),
            "_pk_changed": "CASE WHEN s._s_replace THEN true END",
        }
    )
    return values


def truncate_delete_condition(barrier: str) -> str:
    """Rows whose every change is older than the truncate: gone (the table row remembers the barrier)."""
    return f"t._key <> '{TABLE_KEY}' AND t._sequence < {sql_string(barrier)}"


def truncate_update_condition(barrier: str) -> str:
    return f"t._key <> '{TABLE_KEY}' AND (t._image_seq IS NULL OR t._image_seq < {sql_string(barrier)})"


def truncate_set(existing_columns: list[str], all_columns: list[str], barrier: str) -> MergeAssignments:
    """A row with changes newer than the truncate keeps only the columns those changes set."""
    literal = sql_string(barrier)
    kept = f"map_filter(t._col_seq, (__k, __v) -> __v > {literal})"
    assignments: MergeAssignments = {
        quote_identifier(c): f"CASE WHEN {_target_seq(c, False)} > {literal} THEN t.{quote_identifier(c)} END"
        for c in existing_columns
    }
    assignments.update(
        {
            "_col_seq": kept,
            "_image_seq": literal,
            "_image_op": "'delete'",
            "_deleted": f"t._sequence <= {literal}",
            "_incomplete": _unknown(all_columns, kept),
        }
    )
    return assignments


def purge_condition(cutoff_sql: str) -> str:
    return f"t._deleted AND t._key <> '{TABLE_KEY}' AND t._commit_ts < {cutoff_sql}"


WIDEN_CONDITION = "NOT t._deleted AND NOT (t._image_op <=> 'image')"


def widen_set(new_columns: list[str]) -> MergeAssignments:
    """Live rows never fully imaged do not know a column that just appeared."""
    return {"_incomplete": f"array_sort(array_distinct(concat(t._incomplete, {_column_names(new_columns)})))"}
