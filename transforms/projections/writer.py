"""Cassandra writes of a projection batch: prepared upserts and deletes at one write timestamp, queued
and sent in chunks with `execute_concurrent_with_args` (bounded concurrency), with per-request latency.
Upserts and deletes of one batch never touch the same primary key, so their order does not matter.

Upserts are INSERTs of every column, nulls included: a null must clear an older value, so it is
written (a tombstone cell), never left unset.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import PreparedStatement, SimpleStatement

from transforms.specs.projection import ProjectionSpec, base_type

Progress = Callable[
    [str, int], None
]  # (what: "upserts"|"deletes"|"trims"|"partitions cleared", how many are done)


class ProjectionWriteError(RuntimeError):
    """Cassandra refused or did not answer a write; the batch is not committed and can be rerun."""


class LatencyRecorder:
    """Times every request made with the given prepared statements, from send to answer (seconds)."""

    def __init__(self, session: Session):
        self.session = session
        self.samples: list[float] = []
        self._statement_ids: set[bytes] = set()
        self._lock = threading.Lock()

    def watch(self, *statements: PreparedStatement) -> None:
        self._statement_ids.update(s.query_id for s in statements)

    def __enter__(self) -> LatencyRecorder:
        self.session.add_request_init_listener(self._on_request)
        return self

    def __exit__(self, *exc_info) -> None:
        self.session.remove_request_init_listener(self._on_request)

    def _on_request(self, future) -> None:
        prepared = getattr(future.query, "prepared_statement", None)
        if prepared is None or prepared.query_id not in self._statement_ids:
            return
        started = time.perf_counter()

        def done(_result=None):
            with self._lock:
                self.samples.append(time.perf_counter() - started)

        future.add_callbacks(done, done)

    def percentile_ms(self, fraction: float) -> float | None:
        """Nearest-rank percentile in milliseconds (None without samples)."""
        with self._lock:
            ordered = sorted(self.samples)
        if not ordered:
            return None
        rank = max(1, round(fraction * len(ordered)))
        return round(ordered[rank - 1] * 1000, 3)


class ProjectionWriter:
    """Prepared statements for one projection table in one keyspace."""

    def __init__(
        self,
        session: Session,
        spec: ProjectionSpec,
        keyspace: str,
        *,
        concurrency: int = 32,
        chunk_rows: int = 5000,
        progress: Progress | None = None,
    ):
        if concurrency < 1 or chunk_rows < 1:
            raise ValueError("concurrency and chunk_rows must be at least 1")
        self.session, self.spec, self.concurrency, self.chunk_rows = session, spec, concurrency, chunk_rows
        self.progress = progress
        table = f"{keyspace}.{spec.table_name}"
        columns = list(spec.columns)
        ttl = f" AND TTL {spec.ttl_seconds}" if spec.ttl_seconds else ""
        key_match = " AND ".join(f"{name} = ?" for name in spec.primary_key)
        self.insert = session.prepare(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"USING TIMESTAMP ?{ttl}"
        )
        self.delete_statement = session.prepare(f"DELETE FROM {table} USING TIMESTAMP ? WHERE {key_match}")
        partition_columns = ", ".join(spec.partition_key)
        self.list_partitions = SimpleStatement(
            f"SELECT DISTINCT {partition_columns} FROM {table}", fetch_size=chunk_rows
        )
        clustering = [name for name, _ in spec.clustering_columns]
        partition_match = " AND ".join(f"{name} = ?" for name in spec.partition_key)
        self.read_clustering = session.prepare(
            f"SELECT {', '.join(clustering or spec.partition_key)} FROM {table} WHERE {partition_match}"
        )
        self.delete_partition = session.prepare(
            f"DELETE FROM {table} USING TIMESTAMP ? WHERE {partition_match}"
        )
        self.latency = LatencyRecorder(session)
        self.latency.watch(self.insert, self.delete_statement)
        self.upserted = self.deleted = self.trimmed = 0
        self._queued_upserts: list[tuple] = []
        self._queued_deletes: list[tuple] = []
        self._converters = [_converter(spec.columns[name]) for name in columns]
        self._key_converters = [_converter(spec.columns[name]) for name in spec.primary_key]

    def upsert_values(self, row: Sequence) -> tuple:
        """Driver values of one row (spec column order) from Spark's."""
        return tuple(convert(value) for convert, value in zip(self._converters, row, strict=True))

    def key_values(self, key: Sequence) -> tuple:
        return tuple(convert(value) for convert, value in zip(self._key_converters, key, strict=True))

    def upsert(self, values: tuple, write_timestamp: int) -> None:
        """Queue one upsert (sent when chunk_rows are queued, or at flush())."""
        self._queued_upserts.append((*values, write_timestamp))
        if len(self._queued_upserts) >= self.chunk_rows:
            self._send_upserts()

    def delete(self, key: tuple, write_timestamp: int) -> None:
        """Queue one delete of a primary key."""
        self._queued_deletes.append((write_timestamp, *key))
        if len(self._queued_deletes) >= self.chunk_rows:
            self._send_deletes()

    def flush(self) -> None:
        self._send_deletes()
        self._send_upserts()

    def trim(self, partitions: Iterable[tuple], keep: int, write_timestamp: int) -> int:
        """Delete the rows of each partition beyond the first `keep` in clustering order."""
        beyond: list[tuple] = []
        for chunk in _chunks(iter(partitions), self.chunk_rows):
            results = self._execute(self.read_clustering, chunk, "reading partitions to trim")
            for partition, (_ok, result) in zip(chunk, results, strict=True):
                beyond.extend((*partition, *row) for row in islice(result, keep, None))
        for chunk in _chunks(iter(beyond), self.chunk_rows):
            self._execute(self.delete_statement, [(write_timestamp, *key) for key in chunk], "trimming")
            self.trimmed += len(chunk)
            self._report("trims", self.trimmed)
        return self.trimmed

    def clear_partitions_before(self, write_timestamp: int) -> int:
        """A partition tombstone at `write_timestamp - 1` for every partition in the table (read page by
        page): every row written before `write_timestamp` goes, every row written at it stays. Returns
        how many partitions were given one."""
        cleared = 0
        partitions = self.session.execute(self.list_partitions)  # pages are fetched as the loop goes
        for chunk in _chunks(iter(partitions), self.chunk_rows):
            self._execute(
                self.delete_partition,
                [(write_timestamp - 1, *partition) for partition in chunk],
                "clearing partitions",
            )
            cleared += len(chunk)
            self._report("partitions cleared", cleared)
        return cleared

    def _send_upserts(self) -> None:
        if self._queued_upserts:
            self._execute(self.insert, self._queued_upserts, "upserts")
            self.upserted += len(self._queued_upserts)
            self._queued_upserts = []
            self._report("upserts", self.upserted)

    def _send_deletes(self) -> None:
        if self._queued_deletes:
            self._execute(self.delete_statement, self._queued_deletes, "deletes")
            self.deleted += len(self._queued_deletes)
            self._queued_deletes = []
            self._report("deletes", self.deleted)

    def _report(self, what: str, done: int) -> None:
        if self.progress is not None:
            self.progress(what, done)

    def _execute(self, statement: PreparedStatement, parameters: list[tuple], what: str) -> list:
        try:
            with self.latency:
                return execute_concurrent_with_args(
                    self.session,
                    statement,
                    parameters,
                    concurrency=self.concurrency,
                    raise_on_first_error=True,
                )
        except Exception as error:  # noqa: BLE001 - reported with context; the batch stays uncommitted
            raise ProjectionWriteError(
                f"projection {self.spec.projection}: Cassandra failed during {what}, after {self.upserted} "
                f"upsert(s), {self.deleted} delete(s) and {self.trimmed} trim(s) had succeeded: "
                f"{type(error).__name__}: {error}. Nothing was committed to the offsets table; rerun the "
                "projection to complete the batch (its writes are idempotent)."
            ) from error


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


def _converter(cql_type: str) -> Callable:
    """Spark value -> driver value. Timestamps arrive as epoch milliseconds (see project.write_frame),
    which the driver writes as they are: no time-zone conversion anywhere."""
    base = base_type(cql_type)
    if base in ("uuid", "timeuuid"):
        return lambda value: None if value is None else uuid.UUID(value)
    return lambda value: value
