"""The generator's column catalogue: crm_schema.yaml loaded into typed, validated objects.

Everything the generator knows about tables (names, columns, relationships, the list of values, what
a business transaction does) comes from that file; see its header for the column kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CATALOGUE = Path(__file__).with_name("crm_schema.yaml")
# How a table's DATE values are written (its date_format): with a space, or in GoldenGate's default
# (trail) form with a colon between date and time, as its JSON formatter writes them when the site
# sets no gg.format.timestamp.
ORACLE_DATE = "%Y-%m-%d %H:%M:%S"
GOLDENGATE_DATE = "%Y-%m-%d:%H:%M:%S"

Kind = Literal[
    "row_id",
    "now",
    "user",
    "version",
    "constant",
    "choice",
    "flag",
    "text",
    "counter",
    "number",
    "decimal",
    "date",
    "lov",
    "lov_entry",
    "ref",
    "primary_ref",
    "parent",
    "same_as",
    "line_number",
]
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "text": ("vocabulary",),
    "lov": ("type",),
    "ref": ("table",),
    "primary_ref": ("table",),
    "parent": ("table",),
    "same_as": ("column",),
    "line_number": ("of",),
}
# Kinds an ordinary business update never sets (system-maintained or structural).
NEVER_UPDATED = {"row_id", "now", "user", "version", "parent", "same_as", "line_number", "lov_entry"}


class CatalogueError(ValueError):
    """crm_schema.yaml is wrong; the message names the table and column."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str = ""
    kind: Kind
    value: Any = None
    values: list[Any] | None = None
    yes_rate: float = Field(default=0.5, ge=0, le=1)
    vocabulary: str | None = None
    words: int = Field(default=1, ge=1)
    prefix: str = ""
    width: int = Field(default=6, ge=1)
    min: int = 0
    max: int = 100
    scale: int = Field(default=0, ge=0)
    years_back: int = Field(default=10, ge=1)
    type: str | None = None
    table: str | None = None
    on_delete: Literal["cascade", "set_null"] = "set_null"
    no_match_rate: float = Field(default=0.5, ge=0, le=1)
    column: str | None = None
    of: str | None = None
    null_rate: float = Field(default=0.0, ge=0, le=1)
    pad: int | None = Field(default=None, ge=1)
    fixed: bool = False
    touch: bool = False

    @model_validator(mode="after")
    def _required_options(self) -> Column:
        missing = [o for o in REQUIRED_OPTIONS.get(self.kind, ()) if getattr(self, o) is None]
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        return self

    @property
    def updatable(self) -> bool:
        return not (self.fixed or self.touch or self.kind in NEVER_UPDATED)

    @property
    def references(self) -> str | None:
        """The table whose ROW_ID this column holds, if any."""
        return self.table if self.kind in ("ref", "primary_ref", "parent") else None

    @property
    def cascades(self) -> bool:
        return self.kind == "parent" or (self.kind == "ref" and self.on_delete == "cascade")


class Table(_Strict):
    name: str = ""
    source: str
    description: str
    date_format: Literal["%Y-%m-%d %H:%M:%S", "%Y-%m-%d:%H:%M:%S"] = ORACLE_DATE  # DATE values (now, date)
    columns: tuple[Column, ...] = ()

    @property
    def key(self) -> str:
        return next(c.name for c in self.columns if c.kind == "row_id")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def parent(self) -> Column | None:
        return next((c for c in self.columns if c.kind == "parent"), None)

    @property
    def touch_columns(self) -> list[Column]:
        return [c for c in self.columns if c.touch]

    @property
    def updatable_columns(self) -> list[Column]:
        return [c for c in self.columns if c.updatable]


class ListOfValues(_Strict):
    table: str
    type_column: str
    code_column: str
    display_column: str
    language_column: str
    order_column: str
    language: str
    types: dict[str, dict[str, str]]
    translations: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)

    def entries(self) -> list[dict[str, Any]]:
        """One row's list-of-values columns per (language, type, code), base language first."""
        rows = []
        for language, types in [(self.language, self.types), *self.translations.items()]:
            for type_name, codes in types.items():
                for order, (code, display) in enumerate(codes.items(), start=1):
                    rows.append(
                        {
                            self.type_column: type_name,
                            self.code_column: code,
                            self.display_column: display,
                            self.language_column: language,
                            self.order_column: order,
                        }
                    )
        return rows

    def codes(self, type_name: str) -> list[str]:
        return list(self.types[type_name])


class InsertTemplate(_Strict):
    weight: float = Field(gt=0)
    insert: list[dict[str, int | tuple[int, int]]]

    def steps(self) -> list[tuple[str, int, int]]:
        """(table, min count, max count) in order."""
        steps = []
        for step in self.insert:
            if len(step) != 1:
                raise ValueError(f"an insert step names one table, got {step}")
            ((table, count),) = step.items()
            low, high = (count, count) if isinstance(count, int) else count
            steps.append((table, low, high))
        return steps


class WorkloadMix(_Strict):
    inserts: list[InsertTemplate]
    updates: dict[str, float]
    deletes: dict[str, float]
    key_changes: dict[str, float] = Field(default_factory=dict)
    truncate_reloads: dict[str, float] = Field(default_factory=dict)


class Catalogue(_Strict):
    no_match_sentinel: str
    users: list[str] = Field(min_length=1)
    system_columns: dict[str, Column]
    list_of_values: ListOfValues
    tables: dict[str, Table]
    workload: WorkloadMix

    def table(self, name: str) -> Table:
        return self.tables[name]

    def table_by_source(self, source: str) -> Table:
        return next(t for t in self.tables.values() if t.source == source)

    def referencing(self, target: str) -> list[tuple[Table, Column]]:
        """Every (table, column) that holds a ROW_ID of `target`."""
        return [(t, c) for t in self.tables.values() for c in t.columns if c.references == target]

    def extensions(self, base: str) -> list[Table]:
        return [t for t in self.tables.values() if t.parent is not None and t.parent.table == base]


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    raw = yaml.safe_load(path.read_text())
    try:
        raw["tables"] = {
            name: {
                **table,
                "name": name,
                "columns": _named_columns({**raw["system_columns"], **table["columns"]}),
            }
            for name, table in raw["tables"].items()
        }
        raw["system_columns"] = {name: {**spec, "name": name} for name, spec in raw["system_columns"].items()}
        catalogue = Catalogue.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    _check_references(path, catalogue)
    return catalogue


def _named_columns(columns: dict[str, dict]) -> list[dict]:
    return [{**spec, "name": name} for name, spec in columns.items()]


def _check_references(path: Path, catalogue: Catalogue) -> None:
    lov = catalogue.list_of_values
    problems = []
    if lov.table not in catalogue.tables:
        problems.append(f"list_of_values.table {lov.table} is not a table")
    else:
        lov_columns = set(catalogue.tables[lov.table].column_names)
        for role in ("type_column", "code_column", "display_column", "language_column", "order_column"):
            if getattr(lov, role) not in lov_columns:
                problems.append(f"list_of_values.{role} {getattr(lov, role)} is not a column of {lov.table}")
    for table in catalogue.tables.values():
        names = set(table.column_names)
        if [c.kind for c in table.columns].count("row_id") != 1:
            problems.append(f"{table.name}: needs exactly one row_id column")
        for column in table.columns:
            where = f"{table.name}.{column.name}"
            if column.references and column.references not in catalogue.tables:
                problems.append(f"{where}: unknown table {column.references}")
            if column.kind == "lov" and column.type not in lov.types:
                problems.append(f"{where}: unknown list-of-values type {column.type}")
            if column.kind in ("same_as", "line_number") and (column.column or column.of) not in names:
                problems.append(f"{where}: unknown column {column.column or column.of}")
            if column.kind == "lov_entry" and table.name != lov.table:
                problems.append(f"{where}: lov_entry belongs to the list-of-values table only")
    mix = catalogue.workload
    named = [t for template in mix.inserts for t, _, _ in template.steps()]
    for group in (mix.updates, mix.deletes, mix.key_changes, mix.truncate_reloads):
        named += list(group)
    problems += [f"workload: unknown table {t}" for t in named if t not in catalogue.tables]
    if problems:
        raise CatalogueError(f"{path}: " + "; ".join(problems))
