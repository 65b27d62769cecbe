"""Cassandra projections: query-shaped read models of gold that never regress, plus the offsets they reflect.

Public API:

- `project(spark, session, spec, gold_paths, *, as_of_us, kafka_offsets=..., ...) -> ProjectionStats`
  one batch: writes what changed in gold since the last committed batch (project.py).
- `already_projected(spark, session, spec, gold_paths, keyspace) -> ProjectionStats | None`: the
  committed batch as a replay when gold has not moved since, without a Spark job (project.py).
- `ensure_projection_table(session, spec, keyspace, replication)`: the DDL alone (ddl.py).
- `load_projection_with_offsets(session, spec, ...) -> ProjectionSnapshot` and
  `consumer_from_offsets(kafka_config, offsets) -> Consumer`: the seed recipe (seed.py).
- `read_state(session, keyspace, projection)`: what a projection reflects (offsets.py, which also
  documents the write-timestamp rule).

Specs: transforms.specs.projection (YAML files in assets/projections/, loaded by assets.projection_spec).
"""

from transforms.projections.ddl import DEFAULT_REPLICATION, ProjectionSchemaError, ensure_projection_table
from transforms.projections.offsets import (
    ConcurrentProjectionRunError,
    ProjectionState,
    SourcePosition,
    read_state,
)
from transforms.projections.project import DEFAULT_KEYSPACE, ProjectionStats, already_projected, project
from transforms.projections.rows import ProjectionDataError
from transforms.projections.seed import (
    ProjectionNotSettledError,
    ProjectionSnapshot,
    consumer_from_offsets,
    load_projection_with_offsets,
)
from transforms.projections.writer import ProjectionWriteError

__all__ = [
    "DEFAULT_KEYSPACE",
    "DEFAULT_REPLICATION",
    "ConcurrentProjectionRunError",
    "ProjectionDataError",
    "ProjectionNotSettledError",
    "ProjectionSchemaError",
    "ProjectionSnapshot",
    "ProjectionState",
    "ProjectionStats",
    "ProjectionWriteError",
    "SourcePosition",
    "already_projected",
    "consumer_from_offsets",
    "ensure_projection_table",
    "load_projection_with_offsets",
    "project",
    "read_state",
]
