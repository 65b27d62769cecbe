"""Loading table specs: one YAML file per source table (assets/specs/*.yaml), validated into
transforms.specs.table.TableSpec by the one loader (assets.yaml_loader). Unknown or misspelled fields,
wrong types and duplicates across files are errors that name the file, the line and the field.

What every table of a source shares is said once, in `sources/<source>.yaml` beside the specs
(transforms.specs.table.SourceDefaults: format, topic pattern, keys, sequence_by, common columns...);
a spec with `source: <source>` shows only what is particular to its table and may override the rest.
"""

from __future__ import annotations

from pathlib import Path

from assets.yaml_loader import SpecError, load_folder, read_mapping, refuse_duplicates, validate
from transforms.specs.table import SourceDefaults, TableSpec

SOURCES_FOLDER = "sources"


def load_table_spec(path: Path, sources: dict[Path, SourceDefaults] | None = None) -> TableSpec:
    """One spec file, over its source's defaults (`<its folder>/sources/<source>.yaml`) when it has one.
    `sources`: the source files already read (a folder's specs share them), filled as they are read."""
    data, root = read_mapping(path, "a table spec is a mapping of fields (table, topic, format, keys, ...)")
    source = data.get("source")
    source_path = path.parent / SOURCES_FOLDER / f"{source}.yaml"
    if isinstance(source, str) and source_path.is_file():
        read = {} if sources is None else sources
        if source_path not in read:
            read[source_path] = load_source_defaults(source_path)
        data = read[source_path].under(data)
    return validate(TableSpec, data, path, root, SpecError)


def load_source_defaults(path: Path) -> SourceDefaults:
    data, root = read_mapping(
        path, "a source file is a mapping of what its tables share (format, topic, keys, ...)"
    )
    return validate(SourceDefaults, data, path, root, SpecError)


def load_table_specs(folder: Path) -> list[TableSpec]:
    """Every `*.yaml` spec in a folder, sorted by table; a table or asset name used twice is an error
    naming both files and lines. (Two tables may share a topic.)"""
    sources: dict[Path, SourceDefaults] = {}
    specs = load_folder(folder, lambda path: load_table_spec(path, sources))
    refuse_duplicates(specs, "table", lambda spec: spec.table, lambda spec: "table")
    refuse_duplicates(
        specs, "asset_name", lambda spec: spec.asset_name, lambda spec: "name" if spec.name else "table"
    )
    return [spec for _, spec in sorted(specs, key=lambda item: item[1].table)]
