"""Gold: run an entity's cleanup SQL over the silver tables and store the result as a Delta table.

The SQL sees every silver table as a temporary view of its LIVE rows (tombstones excluded) with the
user columns plus `_commit_ts` and `_sequence`. Its result is MERGEd into gold by key, with a content
hash (`_row_hash`) so only rows whose content changed are rewritten. The silver Delta versions a gold
commit reflects, and a hash of the SQL text, are recorded in that commit; when neither has moved, the
run does nothing.

Incremental runs. An entity that declares `affected_keys` (assets/gold_spec.py) says, per silver table
it reads, which gold keys a changed row of that table affects: a query over the view `changed` (the
table's change data feed since the version the last gold commit recorded: each live row image, as
inserted, before and after an update, before a delete) and the silver views, or `all`. A run then
  1. reads each moved table's change data feed and maps it to gold keys (the affected keys),
  2. recomputes the entity SQL for those keys only: `restrict_to_keys` adds `<key expression> IN
     (<affected keys>)` to the query's WHERE, so Spark filters the driving table before the joins
     (a semi join on the finished result is not pushed below its computed columns: measured, it
     saves nothing); a query it cannot safely rewrite gets that semi join on its result instead, and
  3. MERGEs only them: a changed row is updated, a new one inserted, and an affected key the SQL no
     longer returns is deleted. Every other gold row is left as it is (the gold table keeps deletion
     vectors, so its files are not rewritten either). A MERGE of a few keys into a table without
     deletion vectors is written by delta-rs instead of Spark (transforms.gold.small_merge): the same
     clauses and commit, without Spark's fixed cost of seconds per MERGE.
A full recompute (the whole result merged, vanished keys deleted) happens instead on a first run, when
the SQL text changed, when the entity declares no `affected_keys`, when a moved table's mapping is
`all`, and when a change data feed range cannot be read (a vacuumed or missing range); the reason is
recorded with the commit. A SQL whose result columns differ from the gold table's rewrites the table.

A run that recomputes nothing still writes a (data-less) commit, so the versions it consumed are
recorded and the next run starts from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce

import sqlglot
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlglot import exp

from transforms import delta_rs
from transforms.deletion_vectors import DELETION_VECTORS, turn_on_deletion_vectors_when_big
from transforms.delta_commits import (
    current_version,
    last_commit_metrics,
    latest_progress,
    progress_metadata,
    table_exists,
)
from transforms.gold import small_merge
from transforms.lake_errors import writes_table
from transforms.merge.layout import DELETED, IS_CURRENT, KEY, METADATA_COLUMNS, TABLE_KEY
from transforms.specs import ALL, CHANGED_VIEW
from transforms.sql_text import MergeAssignments, quote_identifier

STAGE = "gold"
HASH_COLUMN = "_row_hash"
AFFECTED_VIEW = "_gold_affected_keys"  # the keys an incremental run recomputes, for restrict_to_keys
CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")
_PRESENT = "__present"  # marks, in an incremental merge's source, the keys the SQL still returns
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_SKIP_EMPTY_COMMITS = "spark.databricks.delta.skipRecordingEmptyCommits"
GOLD_TABLE_OPTIONS = {
    # deletion vectors come once the table is big (transforms.deletion_vectors)
    DELETION_VECTORS: "false",
    # Projections and checks read the rows gold changed from its change data feed.
    "delta.enableChangeDataFeed": "true",
}

FULL, INCREMENTAL, SKIPPED = "full", "incremental", "skipped"


class GoldError(RuntimeError):
    pass


@dataclass(frozen=True)
class GoldStats:
    mode: str  # SKIPPED (neither silver nor the SQL changed), INCREMENTAL or FULL
    reason: str | None = None  # why a run recomputed everything (FULL only)
    replaced: bool = False  # the table was written whole (first run, or the SQL's columns changed)
    keys_recomputed: int = 0  # keys whose rows the SQL recomputed (FULL: the rows it returned)
    rows: int = 0  # rows the SQL returned for them
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    silver_versions: dict[str, int | None] | None = field(default=None)

    @property
    def skipped(self) -> bool:
        return self.mode == SKIPPED


@dataclass(frozen=True)
class _Plan:
    full_reason: str | None = None  # set: recompute the whole entity, for this reason
    affected: DataFrame | None = None  # else the gold keys to recompute (persisted); None: no key
    count: int = 0


def register_silver_views(spark: SparkSession, live_rows: dict[str, DataFrame]) -> None:
    for name, frame in live_rows.items():
        frame.createOrReplaceTempView(name)


@writes_table(STAGE, "gold_path")
def refresh_entity(
    spark: SparkSession,
    *,
    name: str,
    keys: list[str],
    sql_text: str,
    gold_path: str,
    silver_versions: dict[str, int | None],
    silver_paths: Mapping[str, str] | None = None,
    affected_keys: Mapping[str, str] | None = None,
) -> GoldStats:
    """Bring gold/<name> up to date with silver (its views must be registered).

    silver_versions: the version of each silver table the views hold (at most what they hold: a table
    that moved since is read again next run). silver_paths and affected_keys (source -> query over
    `changed`, or ALL) allow incremental runs; without them every run recomputes the whole entity.
    """
    sql_sha256 = _sha256(sql_text)
    previous = latest_progress(spark, gold_path, STAGE)
    if _reflects(previous, silver_versions, sql_sha256):
        return GoldStats(SKIPPED, silver_versions=silver_versions)

    result = spark.sql(sql_text)
    missing = [k for k in keys if k not in result.columns]
    if missing:
        raise GoldError(f"gold entity {name}: its SQL does not produce key column(s) {missing}")

    def metadata(mode: str, reason: str | None = None, keys_recomputed: int | None = None) -> str:
        return progress_metadata(
            STAGE,
            entity=name,
            silver_versions=silver_versions,
            sql_sha256=sql_sha256,
            mode=mode,
            **({"reason": reason} if reason else {}),
            **({"keys_recomputed": keys_recomputed} if keys_recomputed is not None else {}),
        )

    def commit(mode: str, reason: str | None = None, keys_recomputed: int | None = None):
        return _gold_commit(spark, metadata(mode, reason, keys_recomputed))

    if not table_exists(spark, gold_path) or _columns_changed(spark, gold_path, _with_hash(result)):
        reason = "first run" if not table_exists(spark, gold_path) else "the SQL's result columns changed"
        return _replace(spark, name, keys, result, gold_path, commit(FULL, reason), reason, silver_versions)

    turn_on_deletion_vectors_when_big(spark, gold_path)
    plan = _plan(spark, previous, sql_sha256, keys, silver_versions, silver_paths, affected_keys)
    if plan.full_reason is not None:
        return _merge_full(
            spark,
            name,
            keys,
            result,
            gold_path,
            commit(FULL, plan.full_reason),
            plan.full_reason,
            silver_versions,
        )
    if plan.affected is None:
        with commit(INCREMENTAL, keys_recomputed=0):
            _record_progress_only(spark, gold_path)
        return GoldStats(INCREMENTAL, silver_versions=silver_versions)
    try:
        rows = _rows_of_keys(spark, sql_text, keys, result, plan.affected)
        return _merge_keys(
            spark,
            name,
            keys,
            rows,
            plan,
            gold_path,
            metadata(INCREMENTAL, keys_recomputed=plan.count),
            silver_versions,
        )
    finally:
        plan.affected.unpersist()


def up_to_date(
    spark: SparkSession, gold_path: str, sql_text: str, silver_versions: Mapping[str, int | None]
) -> bool:
    """Gold's last commit already reflects these silver versions with this SQL (then `refresh_entity`
    skips). Reads Delta commit files only: a caller can ask before it reads any silver table."""
    return _reflects(latest_progress(spark, gold_path, STAGE), silver_versions, _sha256(sql_text))


def _reflects(previous: dict | None, silver_versions: Mapping[str, int | None], sql_sha256: str) -> bool:
    return (
        previous is not None
        and previous.get("silver_versions") == silver_versions
        and previous.get("sql_sha256") == sql_sha256
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- which keys to recompute -------------------------------------------------------------------------


def _plan(
    spark: SparkSession,
    previous: dict | None,
    sql_sha256: str,
    keys: list[str],
    silver_versions: Mapping[str, int | None],
    silver_paths: Mapping[str, str] | None,
    affected_keys: Mapping[str, str] | None,
) -> _Plan:
    if not affected_keys or silver_paths is None:
        return _Plan("the entity declares no affected_keys")
    if previous is None:
        return _Plan("no earlier gold run recorded")
    if previous.get("sql_sha256") != sql_sha256:
        return _Plan("the SQL changed")
    recorded = previous.get("silver_versions") or {}
    found, feeds = [], []
    for source in sorted(affected_keys):
        before, now = recorded.get(source), silver_versions.get(source)
        if before == now:
            continue
        if before is None or now is None or before > now:
            return _Plan(f"{source}: no change data from version {before} to {now}")
        feed = f"{source}: change data feed of versions {before + 1}..{now}"
        try:  # a missing version range fails here, when the feed is resolved
            changed = changed_silver_rows(spark, silver_paths[source], before + 1, now)
            if affected_keys[source] == ALL and not changed.isEmpty():
                return _Plan(f"{source} changed and its affected_keys is `all`")
        except Exception as error:
            return _Plan(f"{feed} unreadable ({_first_line(error)})")
        if affected_keys[source] != ALL:
            found.append(_keys_of(spark, source, affected_keys[source], changed, keys))
            feeds.append(feed)
    if not found:
        return _Plan()
    affected = reduce(DataFrame.unionByName, found)
    affected = (
        affected.where(" AND ".join(f"{quote_identifier(k)} IS NOT NULL" for k in keys)).distinct().persist()
    )
    try:  # vacuumed change files fail here, when the feeds are read
        count = affected.count()
    except Exception as error:
        affected.unpersist()
        return _Plan(f"{' / '.join(feeds)}: unreadable ({_first_line(error)})")
    if count == 0:
        affected.unpersist()
        return _Plan()
    return _Plan(affected=affected, count=count)


def changed_silver_rows(spark: SparkSession, path: str, first_version: int, last_version: int) -> DataFrame:
    """The user columns (and `_change_type`) of the LIVE row images silver's change data feed holds for
    versions first..last: a row inserted, a row as it was before and after an update, a row as it was
    before its delete. Images of tombstones (SCD1) or closed versions (SCD2) are left out: a live row
    that became one is found by its image before, and a tombstone purged after its retention changes no
    live row. Nor is the table row."""
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", first_version)
        .option("endingVersion", last_version)
        .load(path)
    )
    live = ~F.col(DELETED) if DELETED in feed.columns else F.col(IS_CURRENT)
    users = [c for c in feed.columns if c not in METADATA_COLUMNS and c not in CDF_COLUMNS]
    return feed.where((F.col(KEY) != TABLE_KEY) & live).select(
        *[quote_identifier(c) for c in users], "_change_type"
    )


def _keys_of(
    spark: SparkSession, source: str, mapping_sql: str, changed: DataFrame, keys: list[str]
) -> DataFrame:
    # spark.sql analyses the query at once, so the view can go right after (the frame keeps its rows)
    changed.createOrReplaceTempView(CHANGED_VIEW)
    try:
        found = spark.sql(mapping_sql)
    finally:
        spark.catalog.dropTempView(CHANGED_VIEW)
    missing = [k for k in keys if k not in found.columns]
    if missing:
        raise GoldError(f"affected_keys.{source}: the query does not return key column(s) {missing}")
    return found.select(*[quote_identifier(k) for k in keys])


def _rows_of_keys(
    spark: SparkSession, sql_text: str, keys: list[str], result: DataFrame, affected: DataFrame
) -> DataFrame:
    """The SQL's rows for the affected keys, in the result's column order."""
    restricted_sql = restrict_to_keys(sql_text, keys, AFFECTED_VIEW)
    if restricted_sql is None:
        # the semi join keeps the result's columns, but a join on column names lists the keys first
        rows = result.join(affected, on=keys, how="left_semi")
    else:
        affected.createOrReplaceTempView(AFFECTED_VIEW)
        try:
            rows = spark.sql(restricted_sql)  # analysed now: the view can go
        finally:
            spark.catalog.dropTempView(AFFECTED_VIEW)
    return rows.select(*[quote_identifier(c) for c in result.columns])


def restrict_to_keys(sql_text: str, keys: list[str], keys_view: str) -> str | None:
    """The query with `(<key expressions>) IN (SELECT <keys> FROM keys_view)` added to its WHERE, or None
    when that would not return exactly the original rows of those keys.

    A plain SELECT (joins, WHERE, ORDER BY; CTEs of any kind) computes each output row from one joined
    row, so filtering joined rows on the expressions that make the key columns keeps exactly the output
    rows with those keys; Spark then pushes the filter down to the table the key comes from. Grouping,
    DISTINCT, windows, aggregates, LIMIT or a set operation at the top level make rows depend on other
    rows: None, and the caller filters the finished result instead.
    """
    try:
        query = sqlglot.parse_one(sql_text, read="spark")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(query, exp.Select):
        return None
    if any(query.args.get(part) for part in ("group", "having", "qualify", "distinct", "limit", "offset")):
        return None
    projections = {p.alias_or_name: p for p in query.expressions}
    if any(p.find(exp.AggFunc, exp.Window) for p in query.expressions) or any(
        k not in projections for k in keys
    ):
        return None
    expressions = [
        (projections[k].this if isinstance(projections[k], exp.Alias) else projections[k]).sql(
            dialect="spark"
        )
        for k in keys
    ]
    selected = ", ".join(quote_identifier(k) for k in keys)
    condition = f"({', '.join(expressions)}) IN (SELECT {selected} FROM {quote_identifier(keys_view)})"
    return query.where(sqlglot.condition(condition, dialect="spark"), dialect="spark").sql(dialect="spark")


# ---- writing gold --------------------------------------------------------------------------------------


@contextmanager
def _gold_commit(spark: SparkSession, metadata: str) -> Iterator[None]:
    """Every Delta commit made inside carries `metadata`, and a write that changes nothing still commits
    (so the versions it consumed are recorded)."""
    saved = {conf: spark.conf.get(conf, None) for conf in (_USER_METADATA, _SKIP_EMPTY_COMMITS)}
    spark.conf.set(_USER_METADATA, metadata)
    spark.conf.set(_SKIP_EMPTY_COMMITS, "false")
    try:
        yield
    finally:
        for conf, value in saved.items():
            if value is None:
                spark.conf.unset(conf)
            else:
                spark.conf.set(conf, value)


def _with_hash(frame: DataFrame) -> DataFrame:
    user_columns = [quote_identifier(c) for c in frame.columns if not c.startswith("_")]
    return frame.withColumn(HASH_COLUMN, F.sha2(F.to_json(F.struct(*user_columns)), 256))


def _replace(spark, name, keys, result, gold_path, commit, reason, silver_versions) -> GoldStats:
    rows = _with_hash(result).persist()
    try:
        count = _count_refusing_duplicate_keys(name, rows, keys)
        with commit:
            writer = rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            for option, value in GOLD_TABLE_OPTIONS.items():
                writer = writer.option(option, value)
            writer.save(gold_path)
        return GoldStats(
            FULL,
            reason=reason,
            replaced=True,
            keys_recomputed=count,
            rows=count,
            inserted=count,
            silver_versions=silver_versions,
        )
    finally:
        rows.unpersist()


def _merge_full(spark, name, keys, result, gold_path, commit, reason, silver_versions) -> GoldStats:
    rows = _with_hash(result).persist()
    try:
        count = _count_refusing_duplicate_keys(name, rows, keys)
        target = DeltaTable.forPath(spark, gold_path)
        with commit:
            (
                target.alias("t")
                .merge(rows.alias("s"), _key_condition(keys))
                .whenMatchedUpdateAll(condition=f"t.{HASH_COLUMN} <> s.{HASH_COLUMN}")
                .whenNotMatchedInsertAll()
                .whenNotMatchedBySourceDelete()
                .execute()
            )
        return _stats_from_merge(spark, gold_path, FULL, reason, count, count, silver_versions)
    finally:
        rows.unpersist()


def _merge_keys(
    spark, name, keys, rows_of_keys: DataFrame, plan: _Plan, gold_path, metadata: str, silver_versions
) -> GoldStats:
    """MERGE the recomputed rows of the plan's affected keys (one commit carrying `metadata`); an
    affected key without a row is deleted. A plan of at most SMALL_MERGE_CELLS values goes through
    delta-rs when it may write the table (transforms.gold.small_merge), a bigger one through Spark."""
    assert plan.affected is not None  # an incremental plan with keys
    recomputed = _with_hash(rows_of_keys)
    if plan.count * len(recomputed.columns) <= delta_rs.SMALL_MERGE_CELLS:
        table = delta_rs.open_writable(spark, gold_path)
        if table is not None:
            source = _merge_source(plan.affected, recomputed, keys).toArrow()
            duplicated = small_merge.duplicated_keys(source, keys, _PRESENT)
            if duplicated:
                raise _duplicate_keys_error(name, keys, duplicated)
            merged = small_merge.merge_keys(table, source, keys, _PRESENT, HASH_COLUMN, metadata)
            if merged is not None:  # None: delta-rs failed before its commit, Spark writes instead
                return GoldStats(
                    INCREMENTAL,
                    keys_recomputed=plan.count,
                    rows=merged.rows,
                    inserted=merged.inserted,
                    updated=merged.updated,
                    deleted=merged.deleted,
                    silver_versions=silver_versions,
                )
    recomputed = recomputed.persist()
    try:
        rows = _count_refusing_duplicate_keys(name, recomputed, keys)
        source = _merge_source(plan.affected, recomputed, keys)
        columns: MergeAssignments = {
            quote_identifier(c): f"s.{quote_identifier(c)}" for c in recomputed.columns
        }
        target = DeltaTable.forPath(spark, gold_path)
        with _gold_commit(spark, metadata):
            (
                target.alias("t")
                .merge(source.alias("s"), _key_condition(keys))
                .whenMatchedDelete(condition=f"s.{_PRESENT} IS NULL")
                .whenMatchedUpdate(condition=f"t.{HASH_COLUMN} <> s.{HASH_COLUMN}", set=columns)
                .whenNotMatchedInsert(condition=f"s.{_PRESENT}", values=columns)
                .execute()
            )
        return _stats_from_merge(spark, gold_path, INCREMENTAL, None, plan.count, rows, silver_versions)
    finally:
        recomputed.unpersist()


def _merge_source(affected: DataFrame, recomputed: DataFrame, keys: list[str]) -> DataFrame:
    """Every affected key with its recomputed row; `_PRESENT` is null where the SQL returns none."""
    return affected.join(recomputed.withColumn(_PRESENT, F.lit(True)), on=keys, how="left")


def _record_progress_only(spark: SparkSession, gold_path: str) -> None:
    schema = spark.read.format("delta").load(gold_path).schema
    spark.createDataFrame([], schema).write.format("delta").mode("append").save(gold_path)


def _stats_from_merge(spark, gold_path, mode, reason, keys_recomputed, rows, silver_versions) -> GoldStats:
    _, metrics = last_commit_metrics(spark, gold_path)
    return GoldStats(
        mode,
        reason=reason,
        keys_recomputed=keys_recomputed,
        rows=rows,
        inserted=int(metrics.get("numTargetRowsInserted", 0)),
        updated=int(metrics.get("numTargetRowsUpdated", 0)),
        deleted=int(metrics.get("numTargetRowsDeleted", 0)),
        silver_versions=silver_versions,
    )


def _key_condition(keys: list[str]) -> str:
    return " AND ".join(f"t.{quote_identifier(k)} <=> s.{quote_identifier(k)}" for k in keys)


def _columns_changed(spark: SparkSession, gold_path: str, result: DataFrame) -> bool:
    """True when the SQL now yields other columns (names or types) than the gold table holds."""
    stored = spark.read.format("delta").load(gold_path).schema
    return [(f.name, f.dataType) for f in stored] != [(f.name, f.dataType) for f in result.schema]


def _count_refusing_duplicate_keys(name: str, frame: DataFrame, keys: list[str]) -> int:
    """The frame's rows, counted in the query that looks for a key held by several rows; such a key is
    refused (GoldError naming a few), and only then does a second query collect them."""
    per_key = frame.groupBy(*keys).count()
    [totals] = per_key.agg(
        F.sum("count").alias("rows"), F.count_if(F.col("count") > 1).alias("duplicated")
    ).collect()
    if not totals["duplicated"]:
        return totals["rows"] or 0
    raise _duplicate_keys_error(name, keys, per_key.where("count > 1").limit(5).collect())


def _duplicate_keys_error(name: str, keys: list[str], sample) -> GoldError:
    """The error for an SQL that returns several rows for one key; `sample`: a few such keys (rows or
    dicts holding the key columns)."""
    shown = "; ".join(", ".join(f"{k}={row[k]!r}" for k in keys) for row in sample)
    return GoldError(
        f"gold entity {name}: its SQL returns several rows for one key ({shown}); "
        "fix the joins in the SQL so each key appears once"
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:300]


def silver_version_map(spark: SparkSession, paths: Mapping[str, str]) -> dict[str, int | None]:
    """Each silver table's current version (None: the table does not exist yet)."""
    return {name: current_version(spark, path) for name, path in paths.items()}
