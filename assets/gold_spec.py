"""Gold entities: cleanup SQL files declared in `transforms/gold/entities.yaml`.

Each entry names an entity, its key columns and the SQL file (Spark SQL) that builds it from silver
tables, which the SQL references by their spec names (`s_contact`, `s_lst_of_val`, ...)::

    customer:                 # the entity (lower snake_case): gold/customer
      keys: [customer_id]     # output column(s) identifying a row; each key appears once
      sql: customer.sql       # in the same folder as entities.yaml
      description: one line for the asset

The SQL is parsed when the definitions load, so a mistake fails at once with the file and line: a
syntax error, more than one statement, a statement that is not a query, a key the query does not
select, and (given `known_tables`) a table no spec defines. The silver tables an entity reads are
found in the SQL itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from assets.table_spec import SpecError, _line_of

GOLD_DIR = Path(__file__).resolve().parents[1] / "transforms" / "gold"
ENTITY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class GoldEntityEntry(BaseModel):
    """What entities.yaml says about one entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[str] = Field(min_length=1)
    sql: str = Field(min_length=1)
    description: str | None = None


class GoldEntity(BaseModel):
    """A loaded entity: its entry, the SQL text and the silver tables the SQL reads."""

    model_config = ConfigDict(frozen=True)

    name: str
    keys: list[str]
    sql: str
    description: str | None = None
    sources: tuple[str, ...] = ()
    sql_text: str = ""


def load_gold_entities(folder: Path = GOLD_DIR, known_tables: set[str] | None = None) -> list[GoldEntity]:
    """Every entity of `folder/entities.yaml`, in file order. `known_tables`: the silver table names
    (spec asset names) the SQL may read; None skips that check."""
    index = folder / "entities.yaml"
    text = index.read_text()
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{index}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(root, yaml.MappingNode):
        raise SpecError(f"{index}:1: entities.yaml maps each entity name to {{keys, sql, description}}")
    _refuse_duplicate_names(index, root)
    entities = []
    for name, body in raw.items():
        line = _line_of(root, (name,))
        if not isinstance(name, str) or not ENTITY_NAME.match(name):
            raise SpecError(f"{index}:{line}: entity name {name!r}: use lower snake_case (gold/<name>)")
        if not isinstance(body, dict):
            raise SpecError(f"{index}:{line}: entity {name!r}: give it keys and sql (a mapping)")
        try:
            entry = GoldEntityEntry.model_validate(body)
        except ValidationError as exc:
            raise SpecError(_describe(index, root, name, exc)) from None
        sql_path = folder / entry.sql
        if not sql_path.is_file():
            raise SpecError(
                f"{index}:{_line_of(root, (name, 'sql'))}: entity {name!r}: SQL file {sql_path} does not exist"
            )
        sql_text = sql_path.read_text()
        query = _parse_query(sql_path, sql_text)
        _check_keys_selected(sql_path, query, entry.keys)
        sources = _tables_read_by(sql_path, query, known_tables)
        entities.append(GoldEntity(name=name, **entry.model_dump(), sources=sources, sql_text=sql_text))
    return entities


def _refuse_duplicate_names(index: Path, root: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in root.value:
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise SpecError(f"{index}:{line}: entity {key_node.value!r} is already defined on line {seen[key_node.value]}")
        seen[key_node.value] = line


def _describe(index: Path, root: yaml.Node, name: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = (name, *error["loc"])
        field_name = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field (allowed: {', '.join(GoldEntityEntry.model_fields)})"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{index}:{_line_of(root, loc)}: {field_name}: {message}")
    return "\n".join(lines)


def _parse_query(path: Path, sql_text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(sql_text, read="spark") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SpecError(
            f"{path}:{first.get('line', '?')}:{first.get('col', '?')}: SQL syntax error: "
            f"{first.get('description', exc)} near {first.get('highlight', '')!r}"
        ) from None
    if len(statements) != 1:
        raise SpecError(f"{path}: a gold SQL file holds exactly one query, found {len(statements)} statements")
    (query,) = statements
    if not isinstance(query, exp.Query):
        raise SpecError(f"{path}: a gold SQL file holds a query (SELECT ...), not {query.key.upper()}")
    return query


def _check_keys_selected(path: Path, query: exp.Query, keys: list[str]) -> None:
    selected = query.named_selects
    if "*" in selected:
        return  # the columns are known only when the query runs (the engine checks then)
    missing = [k for k in keys if k not in selected]
    if missing:
        raise SpecError(f"{path}: the query does not select the key column(s) {missing} (it selects {selected})")


def _tables_read_by(path: Path, query: exp.Query, known_tables: set[str] | None) -> tuple[str, ...]:
    cte_names = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    tables = [t for t in query.find_all(exp.Table) if t.name.lower() not in cte_names]
    if known_tables is not None:
        unknown = sorted((t for t in tables if t.name.lower() not in known_tables), key=_line_of_table)
        if unknown:
            first = unknown[0]
            names = ", ".join(sorted({t.name for t in unknown}))
            raise SpecError(
                f"{path}:{_line_of_table(first)}: reads {names}, which no table spec defines "
                f"(known: {', '.join(sorted(known_tables))})"
            )
    return tuple(sorted({t.name.lower() for t in tables}))


def _line_of_table(table: exp.Table) -> int:
    return table.this.meta.get("line", 0) if isinstance(table.this, exp.Expression) else 0
