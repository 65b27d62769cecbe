"""project(): bring one Cassandra projection up to given gold versions, writing only what changed.

One call is one batch:

1. DDL: keyspace, projection table and offsets table are created or extended (transforms.projections.ddl).
2. The batch's source position (as_of_us, gold versions, Kafka offsets) is checked against the offsets
   table: older -> refused, identical -> replay, newer -> written at timestamp T
   (the rule and its consequences: transforms.projections.offsets).
3. The batch is noted as begun (so a failed batch's partial writes are known to the next run).
4. Which partitions can differ: from the gold tables' change data feed since the committed versions,
   mapped to partition keys by the spec's `affected_partitions`. First run, or a changed spec: all.
5. The new rows of those partitions are compared with the rows of every state that may be in the
   table (the committed one and any begun since): a row identical in all of them is skipped, any
   other is upserted; a key present in one of them and not in the new rows is deleted. The latest-N
   cut is applied in Spark, so a row that falls out of the first N is deleted and one that moves up
   into it is written. Moves are deletes of the old key plus upserts of the new one. All of this is
   one Spark plan (transforms.projections.rows.change_plan), streamed to the driver once.
6. Writes: prepared statements, `USING TIMESTAMP T`, bounded concurrency; afterwards every touched
   partition of a `latest_n` projection is read and trimmed to N rows (a guard against rows written
   by anything else).
7. Commit: the position, T and the spec are recorded in the offsets table; the begun batch is forgotten.

`full_refresh=True` (the `rebuild_projections` job) rewrites the projection from gold alone, whatever
Cassandra holds and whatever gold history is left: every row is upserted at
T = max(as_of_us, highest T recorded + 1), even at the committed position (no replay), and then every
partition in the table gets a partition tombstone at T - 1, which removes each row this batch did not
write and leaves the rows it wrote (at T) alone. Readers never see a partition emptied: the new rows
are written first. It repairs a projection table that lost writes, or that someone else wrote to.

A failure anywhere before 7 leaves the offsets table at the previous state and raises; the next run
redoes the work (the writes are idempotent). Nothing is read from the projection table to decide what
to write, except for the latest-N trim and a full refresh's list of partitions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TypedDict

from cassandra.cluster import Session
from pyspark.sql import DataFrame, SparkSession

from transforms.delta_commits import current_version
from transforms.projections.ddl import DEFAULT_REPLICATION, ensure_projection_table
from transforms.projections.offsets import (
    OFFSETS_TABLE,
    Decision,
    SourcePosition,
    WrittenState,
    commit,
    decide,
    offsets_table_cql,
    read_state,
    record_attempt,
)
from transforms.projections.rows import ProjectionDataError, affected_partitions, change_plan
from transforms.projections.writer import Progress, ProjectionWriter
from transforms.specs.projection import ProjectionSpec

DEFAULT_KEYSPACE = "cdc"
EARLIEST_AS_OF_US = 10**15  # 2001-09-09: anything smaller is not microseconds since the epoch
MAX_FUTURE_US = 24 * 3600 * 10**6


@dataclass(frozen=True)
class ProjectionStats:
    """What one batch did; `metadata()` is for the Dagster materialization."""

    projection: str
    keyspace: str
    status: str  # written | replay | refused
    reason: str
    write_timestamp: int | None
    as_of_us: int
    gold_versions: dict[str, int]
    full_refresh: bool = False
    partitions_affected: int | None = None  # None: every partition (first run or changed spec)
    partitions_cleared: int | None = None  # full refresh: partitions given a tombstone at T - 1
    rows_written: int = 0
    rows_deleted: int = 0
    rows_unchanged: int = 0  # new rows identical to what the table holds: not rewritten
    rows_trimmed: int = 0  # beyond latest_n, found in Cassandra after writing
    rows_rejected_null_key: int = 0  # a key column is null: Cassandra cannot store the row
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    seconds: float = 0.0
    schema_changes: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


class _Summary(TypedDict):
    """The ProjectionStats fields every outcome of `project` shares."""

    projection: str
    keyspace: str
    as_of_us: int
    gold_versions: dict[str, int]
    schema_changes: list[str]


class _Counts(TypedDict, total=False):
    """The ProjectionStats counts a written batch gathers, each as it becomes known."""

    partitions_affected: int
    partitions_cleared: int
    rows_written: int
    rows_deleted: int
    rows_unchanged: int
    rows_trimmed: int
    rows_rejected_null_key: int


def project(
    spark: SparkSession,
    session: Session,
    spec: ProjectionSpec,
    gold_paths: Mapping[str, str],
    *,
    as_of_us: int,
    kafka_offsets: Mapping[str, Mapping[int, int]] | None = None,
    gold_versions: Mapping[str, int] | None = None,
    keyspace: str | None = None,
    replication: Mapping[str, str | int] = DEFAULT_REPLICATION,
    concurrency: int = 32,
    chunk_rows: int = 5000,
    progress: Progress | None = None,
    full_refresh: bool = False,
) -> ProjectionStats:
    """Project gold into Cassandra as of one source position.

    gold_paths:    gold entity -> Delta table path (at least the entities the spec reads).
    as_of_us:      the newest source commit time, in microseconds since the epoch, that the gold
                   versions reflect; the write timestamps derive from it (see offsets.py).
    kafka_offsets: topic -> partition -> next offset, the source offsets those gold versions reflect;
                   recorded for consumers (see seed.py).
    gold_versions: entity -> Delta version to project (default: each table's current version).
    keyspace:      default: the spec's `keyspace`, else "cdc". replication applies when the keyspace
                   is created, never to an existing one.
    concurrency:   requests in flight; chunk_rows: statements per execute_concurrent call (memory
                   bound and `progress(what, done)` granularity).
    full_refresh:  rewrite every row and remove every other row (module docstring); a batch older
                   than the committed position is still refused.
    """
    started = time.perf_counter()
    _check_as_of(as_of_us)
    keyspace = keyspace or spec.keyspace or DEFAULT_KEYSPACE
    schema_changes = ensure_projection_table(session, spec, keyspace, replication)
    session.execute(offsets_table_cql(keyspace))
    versions = _versions(spark, spec, gold_paths, gold_versions)
    position = SourcePosition(
        as_of_us,
        versions,
        {t: {int(p): int(o) for p, o in ps.items()} for t, ps in (kafka_offsets or {}).items()},
    )
    state = read_state(session, keyspace, spec.projection)
    decision = decide(state, position, spec.fingerprint(), _fingerprint_of)
    if full_refresh and decision.action == "replay":
        highest = state.highest_write_timestamp
        assert highest is not None  # a replay means a committed state, which has a write timestamp
        decision = Decision(
            "write",
            max(as_of_us, highest + 1),
            "full refresh at the committed position",
        )
    summary = _Summary(
        projection=spec.projection,
        keyspace=keyspace,
        as_of_us=as_of_us,
        gold_versions=versions,
        schema_changes=schema_changes,
    )
    if decision.action != "write":
        status = "refused" if decision.action == "refuse" else "replay"
        return ProjectionStats(
            status=status,
            reason=decision.reason,
            write_timestamp=decision.write_timestamp,
            seconds=_since(started),
            **summary,
        )

    stamp = decision.write_timestamp
    assert stamp is not None  # decide() gives every "write" decision its timestamp
    attempt = WrittenState(position, stamp, spec.model_dump_json())
    attempts_text = record_attempt(session, keyspace, spec.projection, state, attempt)
    old_states = [s for s in (state.committed, *state.attempts) if s is not None]
    full = (
        full_refresh
        or state.committed is None
        or any(_fingerprint_of(s.spec_json) != spec.fingerprint() for s in old_states)
    )
    if full_refresh:
        old_states = []  # every row is rewritten and the rest is removed by partition: no old state needed

    partitions: DataFrame | None = None
    counts: _Counts = {}
    if not full:
        assert state.committed is not None  # not full: there is a committed state (see `full`)
        before = state.committed.position.gold_versions
        join_states = [versions, before, *(s.position.gold_versions for s in state.attempts)]
        affected = affected_partitions(spark, spec, gold_paths, before, versions, join_states)
        partitions, counts["partitions_affected"] = _collected(spark, affected)
    writer = ProjectionWriter(
        session, spec, keyspace, concurrency=concurrency, chunk_rows=chunk_rows, progress=progress
    )
    if full or partitions is not None:
        counts.update(
            _write_changes(spark, spec, gold_paths, versions, partitions, old_states, full, writer, stamp)
        )
    if full_refresh:
        counts["partitions_cleared"] = writer.clear_partitions_before(stamp)
    commit(session, keyspace, spec.projection, attempt, attempts_text)
    return ProjectionStats(
        status="written",
        reason=decision.reason,
        write_timestamp=stamp,
        full_refresh=full,
        latency_p50_ms=writer.latency.percentile_ms(0.50),
        latency_p95_ms=writer.latency.percentile_ms(0.95),
        latency_p99_ms=writer.latency.percentile_ms(0.99),
        seconds=_since(started),
        **counts,
        **summary,
    )


def already_projected(
    spark: SparkSession,
    session: Session,
    spec: ProjectionSpec,
    gold_paths: Mapping[str, str],
    keyspace: str | None = None,
) -> ProjectionStats | None:
    """The committed batch, as a replay, when it holds the gold tables' current versions with this
    spec and no batch was begun since; else None (then `project` must run). Reads Delta commit files
    and the offsets table only: no Spark job, so a projection whose gold did not change costs nothing.
    Gold commits a version whenever a silver table it reads moves, so the same gold versions mean the
    same source position."""
    keyspace = keyspace or spec.keyspace or DEFAULT_KEYSPACE
    tables = session.cluster.metadata.keyspaces.get(keyspace)
    if tables is None or OFFSETS_TABLE not in tables.tables or spec.table_name not in tables.tables:
        return None
    state = read_state(session, keyspace, spec.projection)
    committed = state.committed
    if committed is None or state.attempts or _fingerprint_of(committed.spec_json) != spec.fingerprint():
        return None
    versions = _versions(spark, spec, gold_paths, None)
    if committed.position.gold_versions != versions:
        return None
    return ProjectionStats(
        projection=spec.projection,
        keyspace=keyspace,
        status="replay",
        reason="the committed state already holds the gold tables' current versions",
        write_timestamp=committed.write_timestamp,
        as_of_us=committed.position.as_of_us,
        gold_versions=versions,
    )


def _write_changes(spark, spec, gold_paths, versions, partitions, old_states, full, writer, stamp) -> _Counts:
    """Stream the change plan into Cassandra; the counts for ProjectionStats."""
    old = [(ProjectionSpec.model_validate_json(s.spec_json), s.position.gold_versions) for s in old_states]
    plan = change_plan(spark, spec, gold_paths, versions, partitions, old, comparable=not full)
    counts = {"upsert": 0, "delete": 0, "unchanged": 0, "rejected": 0}
    touched: set[tuple] = set()
    partition_positions = [list(spec.columns).index(name) for name in spec.partition_key]
    key_positions = [list(spec.columns).index(name) for name in spec.primary_key]
    for row in plan.toLocalIterator(prefetchPartitions=True):
        action, values = row[-1], tuple(row[:-1])
        if action == "duplicate":
            shown = ", ".join(f"{spec.primary_key[i]}={values[p]!r}" for i, p in enumerate(key_positions))
            raise ProjectionDataError(
                f"projection {spec.projection}: its SQL returns several rows for one primary key ({shown}); "
                "Cassandra would keep one of them at random: fix the SQL or the key. Nothing was committed."
            )
        counts[action] += 1
        if action == "upsert":
            values = writer.upsert_values(values)
            writer.upsert(values, stamp)
            if spec.latest_n is not None:
                touched.add(tuple(values[p] for p in partition_positions))
        elif action == "delete":
            writer.delete(writer.key_values([values[p] for p in key_positions]), stamp)
    writer.flush()
    trimmed = writer.trim(sorted(touched, key=repr), spec.latest_n, stamp) if touched else 0
    return _Counts(
        rows_written=counts["upsert"],
        rows_deleted=counts["delete"],
        rows_unchanged=counts["unchanged"],
        rows_rejected_null_key=counts["rejected"],
        rows_trimmed=trimmed,
    )


def _collected(spark: SparkSession, partitions: DataFrame | None) -> tuple[DataFrame | None, int]:
    """The affected partition keys, computed once (one Spark job) and handed back as a small local
    frame with their number; None when there are none (then there is nothing to write)."""
    if partitions is None:
        return None, 0
    keys = partitions.collect()
    return (spark.createDataFrame(keys, partitions.schema) if keys else None), len(keys)


def _versions(
    spark, spec: ProjectionSpec, gold_paths: Mapping[str, str], gold_versions: Mapping[str, int] | None
) -> dict[str, int]:
    versions = {}
    for entity in spec.entities:
        if gold_versions is not None and entity in gold_versions:
            versions[entity] = int(gold_versions[entity])
            continue
        if entity not in gold_paths:
            raise ProjectionDataError(f"projection {spec.projection}: no gold path given for entity {entity}")
        version = current_version(spark, gold_paths[entity])
        if version is None:
            raise ProjectionDataError(
                f"projection {spec.projection}: gold entity {entity} has no Delta table at {gold_paths[entity]}"
            )
        versions[entity] = version
    return versions


def _check_as_of(as_of_us: int) -> None:
    now_us = time.time_ns() // 1000
    if not EARLIEST_AS_OF_US <= as_of_us <= now_us + MAX_FUTURE_US:
        raise ValueError(
            f"as_of_us {as_of_us} is not a source commit time in microseconds since the epoch (expected "
            f"between {EARLIEST_AS_OF_US} and now + 1 day = {now_us + MAX_FUTURE_US}); a wrong unit here "
            "would set every write timestamp of the projection on the wrong scale"
        )


def _fingerprint_of(spec_json: str) -> str:
    return ProjectionSpec.model_validate_json(spec_json).fingerprint()


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
