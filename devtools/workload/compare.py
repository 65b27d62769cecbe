"""Compare a silver table with the workload's true source table (the end-to-end oracle)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from transforms.specs.table import TableSpec


def typed(value: str | None, type_name: str):
    """A source value (text, as the decoders produce it) as the Python value of a silver column."""
    if value is None:
        return None
    if type_name.startswith("decimal"):
        return Decimal(value).normalize()
    if type_name in ("long", "int"):
        return int(Decimal(value))
    if type_name == "timestamp":
        return datetime.fromisoformat(value.replace(":", " ", 1) if value[10:11] == ":" else value)
    if type_name == "date":
        return date.fromisoformat(value[:10])
    if type_name == "double":
        return float(value)
    return value


def silver_rows(spark, path: str, spec: TableSpec) -> dict[str, dict]:
    """key -> row of the silver table's live rows, user columns only."""
    from transforms.merge import read_live_rows

    frame = read_live_rows(spark, path)
    users = [c for c in frame.columns if not c.startswith("_")]
    rows = {}
    for row in frame.select(*users).collect():
        values = {k: (v.normalize() if isinstance(v, Decimal) else v) for k, v in row.asDict().items()}
        rows[values[spec.keys[0]]] = values
    return rows


def truth_rows(truth: dict[str, dict], spec: TableSpec) -> dict[str, dict]:
    """The same shape from the workload's state (`Workload.state(as_text_values=True)[spec.table]`):
    keyed by the key as silver types it (a `long` key is an int)."""
    key_type = spec.columns.get(spec.keys[0], "string")
    return {
        typed(key, key_type): {
            column: typed(value, spec.columns.get(column, "string")) for column, value in row.items()
        }
        for key, row in truth.items()
    }


def differences(silver: dict[str, dict], truth: dict[str, dict]) -> list[str]:
    """Human-readable differences (empty when the tables are equal)."""
    problems = [f"missing key {k}" for k in sorted(truth.keys() - silver.keys())]
    problems += [f"unexpected key {k}" for k in sorted(silver.keys() - truth.keys())]
    for key in sorted(truth.keys() & silver.keys()):
        if silver[key] != truth[key]:
            columns = sorted(c for c in truth[key] if silver[key].get(c) != truth[key][c])
            problems.append(
                f"key {key}: "
                + ", ".join(f"{c}={silver[key].get(c)!r} (source {truth[key][c]!r})" for c in columns)
            )
    return problems
