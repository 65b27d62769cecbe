"""One source's shipped table specs in a folder of their own, for $CDC_SPECS_DIR: the tests and
benchmarks that feed only the CRM's workload run the project's Definitions on the CRM's tables (the
gold entities and projections of the other sources are then left out: assets.factory.load_entities)."""

from __future__ import annotations

import shutil
from pathlib import Path


def write_source_specs(folder: Path, source: str) -> list[Path]:
    """Copies `source`'s spec files and its source file (`sources/<source>.yaml`) into `folder`;
    returns the copied spec files, sorted."""
    from assets.factory import SPECS_DIR
    from assets.table_spec import SOURCES_FOLDER, load_table_spec

    (folder / SOURCES_FOLDER).mkdir(parents=True, exist_ok=True)
    shutil.copy(SPECS_DIR / SOURCES_FOLDER / f"{source}.yaml", folder / SOURCES_FOLDER / f"{source}.yaml")
    copied = []
    for path in sorted(SPECS_DIR.glob("*.yaml")):
        if load_table_spec(path).source == source:
            copied.append(Path(shutil.copy(path, folder / path.name)))
    return copied
