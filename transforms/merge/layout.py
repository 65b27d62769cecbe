"""The silver table layout: column names, table properties, creation and the readers.

SCD1 silver (`history: scd1`), one row per key ever seen (tombstones included):

    _key         canonical JSON of the key columns (the MERGE join column)
    _deleted     tombstone: the key's newest change is a delete (or a truncate removed it)
    _incomplete  sorted columns still unknown (the row was created by a partial update), [] otherwise
    _sequence    newest source sequence applied to the key;  _commit_ts: that change's commit time
    _image_seq   sequence of the last full image or delete;  _image_op: 'image' | 'delete'
    _col_seq     column -> sequence of its last setter, only for columns set AFTER _image_seq (the
                 other columns were set by that image or erased by that delete)
    _pk_changed  true for keys linked by a primary-key change (rebuilt from the change log)
    <key columns> <other columns>   the source's names (a backtick becomes U+02CB: silver_column), typed
                                    by the spec (default string)

One extra row, `_key = '{}'` (the key of a truncate), is the table row: its `_image_seq` is the
truncate barrier, its `_sequence`/`_commit_ts` the newest change applied to the table. It is marked
`_deleted`, so every reader that skips tombstones skips it too.

SCD2 silver (`history: scd2`), one row per version of a key:

    _key, _valid_from_seq, _valid_to_seq (null: current), _valid_from_ts, _valid_to_ts, _is_current,
    _incomplete, <key columns> <other columns>

and a table row (`_key` '{}', never current) whose `_valid_to_seq`/`_valid_to_ts` are the newest
change applied. In both kinds every batch updates the table row, so every batch is one commit (Delta
writes no commit for a MERGE that changes nothing) and carries the caller's metadata.

Beside either one, in the table's folder, `_changes/` is the change log (transforms.merge.change_log).
Readers of silver: `read_live_rows` (what gold sees), `read_history` (SCD2 versions), `read_table`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from transforms.deletion_vectors import DELETION_VECTORS
from transforms.sql_text import quote_identifier, sql_string

TABLE_KEY = "{}"  # the key of a truncate, and of the table row in SCD1 silver

KEY = "_key"
DELETED = "_deleted"
INCOMPLETE = "_incomplete"
SEQUENCE = "_sequence"
COMMIT_TS = "_commit_ts"
IMAGE_SEQ = "_image_seq"
IMAGE_OP = "_image_op"
COL_SEQ = "_col_seq"
PK_CHANGED = "_pk_changed"

VALID_FROM_SEQ = "_valid_from_seq"
VALID_TO_SEQ = "_valid_to_seq"
VALID_FROM_TS = "_valid_from_ts"
VALID_TO_TS = "_valid_to_ts"
IS_CURRENT = "_is_current"

SCD1_METADATA = StructType(
    [
        StructField(KEY, StringType(), False),
        StructField(DELETED, BooleanType(), False),
        StructField(INCOMPLETE, ArrayType(StringType(), True), False),
        StructField(SEQUENCE, StringType(), False),
        StructField(COMMIT_TS, TimestampType(), True),
        StructField(IMAGE_SEQ, StringType(), True),
        StructField(IMAGE_OP, StringType(), True),
        StructField(COL_SEQ, MapType(StringType(), StringType(), True), False),
        StructField(PK_CHANGED, BooleanType(), True),
    ]
)
SCD2_METADATA = StructType(
    [
        StructField(KEY, StringType(), False),
        StructField(VALID_FROM_SEQ, StringType(), False),
        StructField(VALID_TO_SEQ, StringType(), True),
        StructField(VALID_FROM_TS, TimestampType(), True),
        StructField(VALID_TO_TS, TimestampType(), True),
        StructField(IS_CURRENT, BooleanType(), False),
        StructField(INCOMPLETE, ArrayType(StringType(), True), False),
    ]
)
METADATA_COLUMNS = frozenset(SCD1_METADATA.fieldNames()) | frozenset(SCD2_METADATA.fieldNames())

HISTORY_PROPERTY = "cdc.history"
KEYS_PROPERTY = "cdc.keys"
TABLE_PROPERTIES = {
    # deletion vectors come once the table is big (transforms.deletion_vectors)
    DELETION_VECTORS: "false",
    # Gold reads the keys silver changed, and the merge its own outcome, from the change data feed.
    "delta.enableChangeDataFeed": "true",
}
# Column mapping: Delta refuses a column name holding one of ` ,;{}()\n\t=` (a space, a comma, ...)
# unless the table maps names to physical column names (`delta.columnMapping.mode = name`: protocol
# reader 2 / writer 5, here the `columnMapping` table feature beside deletion vectors). A table gets it
# when the first such name arrives: at creation (a key or declared column) or by ALTER TABLE before the
# MERGE that adds the column (allow_column_names). Only then, not for every new table: one rule covers
# new tables and tables made by an earlier version alike, and tables with ordinary names (every CRM
# table) keep the protocol, the Parquet column names and the readers they had. A mapped table keeps all
# silver needs: the change data feed (gold, the merge's outcome, also across the upgrade) and adding
# columns (schema drift).
NEEDS_COLUMN_MAPPING = re.compile(r"[ ,;{}()\n\t=]")
COLUMN_MAPPING_MODE = "delta.columnMapping.mode"
# Delta 4.4's MERGE into a table with the change data feed refers to each column as
# packedCdc.`<name>` without doubling a backtick inside <name>, so no MERGE can write a column whose
# name holds one. Silver names such a source column with U+02CB (modifier letter grave accent) in place
# of each backtick; every other name is the source's name unchanged.
BACKTICK_STAND_IN = "\u02cb"


class MergeError(ValueError):
    """The batch or its parameters cannot be applied to this table (the message says why)."""


def silver_column(source_column: str) -> str:
    """The silver column that holds a source column (see BACKTICK_STAND_IN)."""
    return source_column.replace("`", BACKTICK_STAND_IN)


def by_silver_column_sql(map_sql: str) -> str:
    """A map keyed by source column names (SQL text), keyed by silver column names instead."""
    stand_in = sql_string(BACKTICK_STAND_IN)
    return f"transform_keys({map_sql}, (__name, __value) -> replace(__name, '`', {stand_in}))"


def key_values_sql(key_json_sql: str) -> str:
    """The key columns' values by silver column name, from a canonical key JSON (SQL text)."""
    return by_silver_column_sql(f"from_json({key_json_sql}, 'map<string,string>')")


def spark_type(type_name: str) -> str:
    return type_name.replace(" ", "")


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def create_table(
    spark: SparkSession, path: str, *, history: str, keys: list[str], columns: dict[str, str]
) -> None:
    """An empty silver table: metadata columns, then the key columns and the declared columns."""
    metadata = SCD1_METADATA if history == "scd1" else SCD2_METADATA
    builder = DeltaTable.createIfNotExists(spark).location(path)
    builder = builder.addColumns(metadata)
    for column, type_name in columns.items():
        builder = builder.addColumn(column, spark_type(type_name), nullable=True)
    properties = {**TABLE_PROPERTIES, HISTORY_PROPERTY: history, KEYS_PROPERTY: json.dumps(keys)}
    if needs_column_mapping(columns):
        properties[COLUMN_MAPPING_MODE] = "name"
    for name, value in properties.items():
        builder = builder.property(name, value)
    builder.execute()


def needs_column_mapping(columns: Iterable[str]) -> bool:
    return any(NEEDS_COLUMN_MAPPING.search(c) for c in columns)


def allow_column_names(spark: SparkSession, path: str, new_columns: Iterable[str]) -> None:
    """Turn column mapping on before columns that need it are added to an existing table (see
    NEEDS_COLUMN_MAPPING): one commit without data, once per table."""
    if not needs_column_mapping(new_columns):
        return
    properties = DeltaTable.forPath(spark, path).detail().collect()[0]["properties"] or {}
    if properties.get(COLUMN_MAPPING_MODE, "none") == "none":
        spark.sql(
            f"ALTER TABLE delta.{quote_identifier(path)}"
            f" SET TBLPROPERTIES ({sql_string(COLUMN_MAPPING_MODE)} = 'name')"
        )


def check_table_matches(spark: SparkSession, path: str, *, history: str, keys: list[str]) -> None:
    """The stored table must have the history kind and the key columns the spec asks for."""
    stored = read_table(spark, path).columns
    stored_history = history_of_columns(stored)
    missing = [k for k in keys if k not in stored]
    if stored_history != history or missing:
        raise MergeError(
            f"silver table {path} is {stored_history} (columns {stored}); the spec asks for {history} "
            f"keyed by {keys}. Rebuild the table from bronze to change that."
        )


def history_of_columns(columns: list[str]) -> str:
    return "scd2" if VALID_FROM_SEQ in columns else "scd1"


def user_columns(frame: DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in METADATA_COLUMNS]


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """Every stored row and column (tombstones, the table row, all metadata)."""
    return spark.read.format("delta").load(path)


def history_of(spark: SparkSession, path: str) -> str:
    return history_of_columns(read_table(spark, path).columns)


def read_live_rows(spark: SparkSession, path: str) -> DataFrame:
    """The current rows: user columns, then `_incomplete`, `_sequence` and `_commit_ts`.

    SCD1: rows that are not tombstones. SCD2: the current versions (`_sequence`/`_commit_ts` are the
    version's start). Tombstones, the table row and closed versions are left out.
    """
    table = read_table(spark, path)
    users = [quote_identifier(c) for c in user_columns(table)]
    if history_of(spark, path) == "scd2":
        return table.where(F.col(IS_CURRENT)).select(
            *users, INCOMPLETE, F.col(VALID_FROM_SEQ).alias(SEQUENCE), F.col(VALID_FROM_TS).alias(COMMIT_TS)
        )
    return table.where(~F.col(DELETED)).select(*users, INCOMPLETE, SEQUENCE, COMMIT_TS)


def read_history(spark: SparkSession, path: str, all_columns: bool = False) -> DataFrame:
    """SCD2 versions: user columns then the validity columns (`all_columns`: the stored row as is)."""
    if history_of(spark, path) != "scd2":
        raise MergeError(f"{path} is an SCD1 table: it keeps no versions (set `history: scd2` in the spec)")
    table = read_table(spark, path).where(F.col(KEY) != TABLE_KEY)
    if all_columns:
        return table
    validity = [VALID_FROM_SEQ, VALID_TO_SEQ, VALID_FROM_TS, VALID_TO_TS, IS_CURRENT, INCOMPLETE]
    return table.select(*[quote_identifier(c) for c in user_columns(table)], *validity)


def read_as_of(spark: SparkSession, path: str, moment: datetime) -> DataFrame:
    """An SCD2 table's rows as the source held them at `moment` (a source commit time; naive is UTC): the
    versions valid then, `_valid_from_ts <= moment < _valid_to_ts` (an open version has no end). A key
    deleted before `moment` and not re-inserted has no row; so has a key inserted after it."""
    versions = read_history(spark, path)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    at = F.lit(moment.isoformat(sep=" ")).cast("timestamp")  # read in the session's time zone, UTC
    valid = (F.col(VALID_FROM_TS) <= at) & (F.col(VALID_TO_TS).isNull() | (F.col(VALID_TO_TS) > at))
    return versions.where(valid).select(*[quote_identifier(c) for c in user_columns(versions)])
