"""Loading projection specs: one YAML file per Cassandra read model (assets/projections/*.yaml),
validated into transforms.specs.projection.ProjectionSpec (its docstring shows the format) by the one
loader (assets.yaml_loader). Unknown or misspelled fields, wrong types, SQL syntax errors and
duplicates across files are errors naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from assets.yaml_loader import (
    SpecError,
    line_of,
    load_folder,
    node_at,
    read_mapping,
    refuse_duplicates,
    validate,
)
from transforms.specs.projection import ProjectionSpec, SqlTextError, tables_read_by

PROJECTIONS_DIR = Path(__file__).resolve().parent / "projections"


def load_projection_spec(path: Path, known_entities: set[str] | None = None) -> ProjectionSpec:
    """Load and validate one spec file. `known_entities`, if given, are the gold entities that exist."""
    data, root = read_mapping(
        path, "a projection spec is a mapping of fields (projection, entity or sql, ...)"
    )
    spec = validate(ProjectionSpec, data, path, root, SpecError, relocate=_sql_error_line)
    if known_entities is not None:
        unknown = [entity for entity in spec.entities if entity not in known_entities]
        if unknown:
            field_name = "entity" if spec.entity else "affected_partitions"
            raise SpecError(
                f"{path}:{line_of(root, (field_name,))}: {field_name}: {', '.join(unknown)} is not a gold entity "
                f"(known: {', '.join(sorted(known_entities))})"
            )
    return spec


def load_projection_specs(
    folder: Path = PROJECTIONS_DIR, known_entities: set[str] | None = None
) -> list[ProjectionSpec]:
    """Every `*.yaml` spec of a folder, sorted by projection name. A projection name, or a
    (keyspace, table) pair, used twice is an error naming both files."""
    loaded = load_folder(folder, lambda path: load_projection_spec(path, known_entities))
    refuse_duplicates(loaded, "projection", lambda spec: spec.projection, lambda spec: "projection")
    refuse_duplicates(
        loaded,
        "table",
        lambda spec: f"{spec.keyspace or '<keyspace>'}.{spec.table_name}",
        lambda spec: "table" if spec.table else "projection",
    )
    return sorted((spec for _, spec in loaded), key=lambda spec: spec.projection)


def _sql_error_line(item: dict, root: yaml.Node, field_name: str, line: int) -> tuple[str, int]:
    """A SQL syntax error's file line: in `sql`, else in the affected_partitions query holding it."""
    cause = (item.get("ctx") or {}).get("error")
    if not isinstance(cause, SqlTextError):
        return field_name, line
    candidates = [(("sql",), "sql")]
    mappings = node_at(root, ("affected_partitions",))
    if isinstance(mappings, yaml.MappingNode):
        candidates += [
            (("affected_partitions", k.value), f"affected_partitions.{k.value}")
            for k, v in mappings.value
            if isinstance(v, yaml.ScalarNode)
        ]
    for loc, name in candidates:
        node = node_at(root, loc)
        if isinstance(node, yaml.ScalarNode):
            try:
                tables_read_by(node.value)
            except SqlTextError:
                first_line = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
                return name, first_line + cause.line - 1
    return "sql", line
