"""A column's declared type changed in its spec: widen the stored silver column in place, or refuse.

Bronze decodes each value with the spec's type, so once the spec says `long` for a column silver
stored as `int`, a value beyond int's range reaches the MERGE: cast to the stored type it would become
NULL. Instead, before such a batch, silver's column takes the declared type with Delta's type widening
(table feature `typeWidening`, `ALTER TABLE ... ALTER COLUMN ... TYPE`: a metadata commit, no data file
rewritten; readers of older files widen their values). The widenings Delta supports among spec types:

    int -> long, int -> double
    int -> decimal(p,s) with p - s >= 10, long -> decimal(p,s) with p - s >= 20
    decimal(p,s) -> decimal(p',s') with s' >= s and p' - s' >= p - s (no digit lost on either side)

Any other change of a declared type (a narrowing, a text column given a type, date <-> timestamp) is
refused with an error naming the table, the column and both types: silver is rebuilt from bronze for it
(README, "Backfills and rebuilds"). A column whose type hint is removed from the spec keeps its type.
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from transforms.merge.layout import MergeError
from transforms.sql_text import quote_identifier

TYPE_WIDENING = "delta.enableTypeWidening"
DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
INTEGER_DIGITS = {"int": 10, "bigint": 20}  # the integer digits (p - s) a decimal needs to hold the type


def stored_type(spec_type: str) -> str:
    """The Spark type name (DataType.simpleString) a spec type is stored as."""
    name = spec_type.replace(" ", "")
    return "bigint" if name == "long" else name


def is_widening(old: str, new: str) -> bool:
    """`old` -> `new` (stored type names) is a widening Delta applies in place."""
    if (old, new) in (("int", "bigint"), ("int", "double")):
        return True
    new_decimal = DECIMAL.match(new)
    if new_decimal is None:
        return False
    precision, scale = int(new_decimal.group(1)), int(new_decimal.group(2))
    if old in INTEGER_DIGITS:
        return precision - scale >= INTEGER_DIGITS[old]
    old_decimal = DECIMAL.match(old)
    if old_decimal is None:
        return False
    old_precision, old_scale = int(old_decimal.group(1)), int(old_decimal.group(2))
    return scale >= old_scale and precision - scale >= old_precision - old_scale


def type_changes(path: str, stored: dict[str, str], declared: dict[str, str]) -> dict[str, str]:
    """{column: new stored type} for the declared columns whose type is wider than the stored one;
    MergeError for a declared type silver cannot take in place."""
    changes = {}
    for column, spec_type in declared.items():
        old, new = stored.get(column), stored_type(spec_type)
        if old is None or old == new:
            continue
        if not is_widening(old, new):
            raise MergeError(
                f"silver table {path}: column {column!r} is stored as {old}, and the spec now declares "
                f"{spec_type}. Only a widening is applied in place (int -> long or double, a decimal with "
                "as many integer and fraction digits or more, an integer to a decimal that holds it); "
                "for any other change, rebuild the table from bronze."
            )
        changes[column] = new
    return changes


def widen_columns(spark: SparkSession, path: str, changes: dict[str, str]) -> None:
    """Give each column its new type (type_changes), one metadata commit per column."""
    if not changes:
        return
    table = f"delta.{quote_identifier(path)}"
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('{TYPE_WIDENING}' = 'true')")
    for column, new_type in changes.items():
        spark.sql(f"ALTER TABLE {table} ALTER COLUMN {quote_identifier(column)} TYPE {new_type}")
