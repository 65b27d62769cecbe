"""The silver merge engine: bronze change rows -> silver Delta tables (see transforms.merge.engine).

    from transforms.merge import apply_changes, read_live_rows, read_history, read_as_of, read_table, MergeStats

The names are loaded on first use, so Spark's Python workers can import transforms.merge.fold (the
replay they run) without Delta's Python package.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "apply_changes": "transforms.merge.engine",
    "MergeError": "transforms.merge.layout",
    "read_as_of": "transforms.merge.layout",
    "read_history": "transforms.merge.layout",
    "read_live_rows": "transforms.merge.layout",
    "read_table": "transforms.merge.layout",
    "MergeStats": "transforms.merge.stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'transforms.merge' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
