"""Projection tables from their specs, applied idempotently.

- No keyspace: CREATE KEYSPACE with the given replication (default SimpleStrategy, factor 1: one
  local node). An existing keyspace keeps its replication.
- No table: CREATE TABLE from the spec.
- A spec column the table lacks: ALTER TABLE ... ADD (the next run fills it: a spec change rewrites
  every row, see transforms.projections.project).
- Anything else that differs (partition key, clustering columns or their order, a column's type, a
  table column the spec no longer lists): ProjectionSchemaError naming the projection, the table and
  every difference. Nothing is dropped or altered silently; migrating is a human decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cassandra.cluster import Session

from transforms.specs.projection import ProjectionSpec

DEFAULT_REPLICATION: Mapping[str, str | int] = {"class": "SimpleStrategy", "replication_factor": 1}


class ProjectionSchemaError(RuntimeError):
    """The live table cannot hold what the spec describes without losing or reinterpreting data."""


@dataclass(frozen=True)
class TableShape:
    partition_key: tuple[str, ...]
    clustering: tuple[tuple[str, str], ...]  # (column, asc|desc)
    columns: dict[str, str]  # column -> canonical CQL type


def spec_shape(spec: ProjectionSpec) -> TableShape:
    return TableShape(tuple(spec.partition_key), tuple(spec.clustering_columns), dict(spec.columns))


def keyspace_cql(keyspace: str, replication: Mapping[str, str | int] = DEFAULT_REPLICATION) -> str:
    options = ", ".join(f"'{key}': '{value}'" for key, value in replication.items())
    return f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{{options}}}"


def create_table_cql(spec: ProjectionSpec, keyspace: str) -> str:
    columns = ",\n".join(f"    {name} {cql_type}" for name, cql_type in spec.columns.items())
    partition = ", ".join(spec.partition_key)
    key = ", ".join([f"({partition})", *(name for name, _ in spec.clustering_columns)])
    options = []
    if spec.clustering_columns:
        order = ", ".join(f"{name} {direction.upper()}" for name, direction in spec.clustering_columns)
        options.append(f"CLUSTERING ORDER BY ({order})")
    comment = (spec.description or f"projection {spec.projection}").replace("'", "''")
    options.append(f"comment = '{comment}'")
    return (
        f"CREATE TABLE IF NOT EXISTS {keyspace}.{spec.table_name} (\n{columns},\n    PRIMARY KEY ({key})\n)"
        f" WITH {' AND '.join(options)}"
    )


def live_shape(session: Session, keyspace: str, table: str) -> TableShape | None:
    """The table's key and column types as Cassandra's schema tables hold them (None: no such table)."""
    rows = list(
        session.execute(
            "SELECT column_name, kind, position, clustering_order, type FROM system_schema.columns "
            "WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, table),
        )
    )
    if not rows:
        return None
    by_kind = lambda kind: sorted((r for r in rows if r.kind == kind), key=lambda r: r.position)  # noqa: E731
    return TableShape(
        partition_key=tuple(r.column_name for r in by_kind("partition_key")),
        clustering=tuple((r.column_name, r.clustering_order) for r in by_kind("clustering")),
        columns={r.column_name: r.type for r in rows},
    )


def differences(live: TableShape, wanted: TableShape) -> tuple[list[str], list[str]]:
    """(incompatible differences, regular columns to add)."""
    problems = []
    if live.partition_key != wanted.partition_key:
        problems.append(
            f"partition key is ({', '.join(live.partition_key)}) in the table, "
            f"({', '.join(wanted.partition_key)}) in the spec"
        )
    if live.clustering != wanted.clustering:
        show = lambda pairs: ", ".join(f"{n} {o.upper()}" for n, o in pairs) or "none"  # noqa: E731
        problems.append(
            f"clustering is ({show(live.clustering)}) in the table, ({show(wanted.clustering)}) in the spec"
        )
    for name, cql_type in wanted.columns.items():
        if name in live.columns and live.columns[name] != cql_type:
            problems.append(f"column {name} is {live.columns[name]} in the table, {cql_type} in the spec")
    for name in live.columns:
        if name not in wanted.columns:
            problems.append(f"column {name} ({live.columns[name]}) is in the table but not in the spec")
    keys = set(wanted.partition_key) | {name for name, _ in wanted.clustering}
    to_add = [name for name in wanted.columns if name not in live.columns and name not in keys]
    return problems, to_add


def ensure_projection_table(
    session: Session,
    spec: ProjectionSpec,
    keyspace: str,
    replication: Mapping[str, str | int] = DEFAULT_REPLICATION,
) -> list[str]:
    """Create or extend the projection's keyspace and table; the statements it ran (none: up to date)."""
    applied = []
    if (
        session.execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
        ).one()
        is None
    ):
        applied.append(keyspace_cql(keyspace, replication))
        session.execute(applied[-1])
    live = live_shape(session, keyspace, spec.table_name)
    if live is None:
        applied.append(create_table_cql(spec, keyspace))
        session.execute(applied[-1])
        return applied
    problems, to_add = differences(live, spec_shape(spec))
    if problems:
        raise ProjectionSchemaError(
            f"projection {spec.projection}: table {keyspace}.{spec.table_name} does not match the spec:\n  - "
            + "\n  - ".join(problems)
            + "\nNothing was changed. Migrate by hand: give the projection a new `table`, or drop the table "
            f"and its row in {keyspace}.projection_offsets so the next run rebuilds it."
        )
    for name in to_add:
        applied.append(f"ALTER TABLE {keyspace}.{spec.table_name} ADD {name} {spec.columns[name]}")
        session.execute(applied[-1])
    return applied
