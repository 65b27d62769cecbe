"""Gold entities: cleanup SQL files declared in `assets/gold/entities.yaml`.

Each entry names an entity, its key columns and the SQL file (Spark SQL) that builds it from silver
tables, which the SQL references by their spec names (`s_contact`, `s_lst_of_val`, ...)::

    customer:                 # the entity (lower snake_case): gold/customer
      keys: [customer_id]     # output column(s) identifying a row; each key appears once
      sql_file: customer.sql  # in the same folder as entities.yaml
      description: one line for the asset
      affected_keys:          # optional: makes runs incremental (transforms/gold/engine.py)
        s_contact: SELECT TRIM(ROW_ID) AS customer_id FROM changed
        s_addr_per: |
          SELECT TRIM(c.ROW_ID) AS customer_id
          FROM s_contact AS c JOIN changed AS a ON a.ROW_ID = c.PR_PER_ADDR_ID
        s_lst_of_val: all

`affected_keys` says, for each silver table the SQL reads, which gold keys a changed row of that
table affects: a Spark SQL query returning the key columns, over the view `changed` (the table's
changed live rows, with the silver table's columns: as inserted, before and after each update, as
they were before a delete)
and the silver tables the entity's SQL reads (their live rows now), or `all` (any change to the
table recomputes the whole entity). The rule: every table the SQL reads has a mapping, no other
table does. A missing mapping is an error, not a silent `all`, so adding a join to the SQL makes the
author say what it means for incremental runs. Without `affected_keys` the entity is recomputed
whole on every run that finds silver moved.

SQL that several entities share is a view: `shared/<view>.sql` beside entities.yaml holds one query over
silver tables. An entity SQL that reads `<view>` (and does not define a CTE of that name) gets the
view's query as its first CTE: the entity's `sql_text` is then the composed query, so the engine runs
it as it is and its hash (which makes a run recompute the entity) changes when the view changes. The
tables the view reads count as the entity's sources.

The SQL is parsed when the definitions load, so a mistake fails at once with the file and line: a
syntax error, more than one statement, a statement that is not a query, a key the query does not
select, and (given `known_tables`) a table no spec defines. The silver tables an entity reads are
found in the SQL itself. The `affected_keys` queries are checked the same way (their lines are
entities.yaml lines): syntax, one query, the keys selected, `changed` read, and no table beyond
`changed` and the entity's own.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from assets.yaml_loader import SpecError, describe, line_of, node_at, read_mapping
from transforms.specs import ALL, CHANGED_VIEW

GOLD_DIR = Path(__file__).resolve().parent / "gold"
ENTITY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SHARED_VIEWS = "shared"  # folder of SQL that entities share: shared/<view>.sql is the view <view>


class GoldEntityEntry(BaseModel):
    """What entities.yaml says about one entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[str] = Field(min_length=1)
    sql_file: str = Field(min_length=1)
    description: str | None = None
    affected_keys: dict[str, str] | None = None


class GoldEntity(BaseModel):
    """A loaded entity: its entry, the SQL text and the silver tables the SQL reads."""

    model_config = ConfigDict(frozen=True)

    name: str
    keys: list[str]
    sql_file: str
    description: str | None = None
    affected_keys: dict[str, str] | None = None  # silver table -> query over `changed`, or ALL
    sources: tuple[str, ...] = ()
    sql_text: str = ""


def load_gold_entities(folder: Path = GOLD_DIR, known_tables: set[str] | None = None) -> list[GoldEntity]:
    """Every entity of `folder/entities.yaml`, in file order. `known_tables`: the silver table names
    (spec asset names) the SQL may read; None skips that check."""
    views = load_shared_views(folder, known_tables)
    index = folder / "entities.yaml"
    raw, root = read_mapping(index, "entities.yaml maps each entity name to {keys, sql_file, description}")
    _refuse_duplicate_names(index, root)
    entities = []
    for name, body in raw.items():
        line = line_of(root, (name,))
        if not isinstance(name, str) or not ENTITY_NAME.match(name):
            raise SpecError(f"{index}:{line}: entity name {name!r}: use lower snake_case (gold/<name>)")
        if not isinstance(body, dict):
            raise SpecError(f"{index}:{line}: entity {name!r}: give it keys and sql_file (a mapping)")
        try:
            entry = GoldEntityEntry.model_validate(body)
        except ValidationError as exc:
            raise SpecError(describe(exc, GoldEntityEntry, index, root, prefix=(name,))) from None
        sql_path = folder / entry.sql_file
        if not sql_path.is_file():
            raise SpecError(
                f"{index}:{line_of(root, (name, 'sql_file'))}: entity {name!r}: SQL file {sql_path} does not exist"
            )
        sql_text = sql_path.read_text()
        query = _parse_query(sql_path, sql_text)
        _check_keys_selected(sql_path, query, entry.keys)
        _tables_read_by(sql_path, query, None if known_tables is None else known_tables | set(views))
        composed = with_shared_views(query, views)
        if composed is not query:
            sql_text = composed.sql(dialect="spark", pretty=True)
        sources = tuple(sorted(_table_names(composed)))
        if entry.affected_keys is not None:
            _check_affected_keys(index, root, name, entry, sources)
        entities.append(GoldEntity(name=name, **entry.model_dump(), sources=sources, sql_text=sql_text))
    return entities


def load_shared_views(folder: Path = GOLD_DIR, known_tables: set[str] | None = None) -> dict[str, exp.Query]:
    """The queries of `folder/shared/<view>.sql`, by view name: SQL that several entities share (the
    list-of-values lookup). A shared view reads silver tables only."""
    views = {}
    for path in sorted((folder / SHARED_VIEWS).glob("*.sql")):
        if not ENTITY_NAME.match(path.stem):
            raise SpecError(f"{path}: shared view name {path.stem!r}: use lower snake_case")
        query = _parse_query(path, path.read_text())
        _tables_read_by(path, query, known_tables)
        views[path.stem] = query
    return views


def with_shared_views(query: exp.Query, views: dict[str, exp.Query]) -> exp.Query:
    """`query` with each shared view it reads (and does not define itself) as a leading CTE, so the
    entity's SQL text is complete: Spark runs it as it is, and its hash changes when a view does."""
    own = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    read = {table.name.lower() for table in query.find_all(exp.Table)}
    used = [name for name in views if name in read and name not in own]
    if not used:
        return query
    composed = query.copy()
    shared = [
        exp.CTE(this=views[name].copy(), alias=exp.TableAlias(this=exp.to_identifier(name))) for name in used
    ]
    existing = composed.args.get("with_")
    if existing is None:
        composed.set("with_", exp.With(expressions=shared))
    else:
        existing.set("expressions", shared + list(existing.expressions))
    return composed


def _refuse_duplicate_names(index: Path, root: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in root.value:
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise SpecError(
                f"{index}:{line}: entity {key_node.value!r} is already defined on line {seen[key_node.value]}"
            )
        seen[key_node.value] = line


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
        raise SpecError(
            f"{path}: a gold SQL file holds exactly one query, found {len(statements)} statements"
        )
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
        raise SpecError(
            f"{path}: the query does not select the key column(s) {missing} (it selects {selected})"
        )


def _check_affected_keys(
    index: Path, root: yaml.Node, name: str, entry: GoldEntityEntry, sources: tuple[str, ...]
) -> None:
    mappings = entry.affected_keys or {}
    missing = [s for s in sources if s not in mappings]
    if missing:
        raise SpecError(
            f"{index}:{line_of(root, (name, 'affected_keys'))}: {name}.affected_keys: no mapping for "
            f"{', '.join(missing)}, which {entry.sql_file} reads; give each a query over `changed` returning "
            f"{', '.join(entry.keys)}, or `all` (a change to it recomputes every row)"
        )
    for source, mapping in mappings.items():
        line = line_of(root, (name, "affected_keys", source))
        where = f"{index}:{line}: {name}.affected_keys.{source}"
        if source not in sources:
            raise SpecError(
                f"{where}: {entry.sql_file} does not read {source} (it reads {', '.join(sources)})"
            )
        if mapping.strip() == ALL:
            continue
        query = _parse_mapping(index, root, (name, "affected_keys", source), where, mapping)
        selected = query.named_selects
        absent = [k for k in entry.keys if k not in selected]
        if absent:
            raise SpecError(
                f"{where}: the query does not select the key column(s) {absent} (it selects {selected})"
            )
        read = _table_names(query)
        if CHANGED_VIEW not in read:
            raise SpecError(
                f"{where}: the query does not read `{CHANGED_VIEW}` (the changed rows of {source})"
            )
        others = sorted(read - {CHANGED_VIEW} - set(sources))
        if others:
            raise SpecError(
                f"{where}: the query reads {', '.join(others)}; it may read `{CHANGED_VIEW}` and the tables "
                f"{entry.sql_file} reads ({', '.join(sources)})"
            )


def _parse_mapping(index: Path, root: yaml.Node, loc: tuple, where: str, sql_text: str) -> exp.Query:
    """One query; a syntax error names the entities.yaml line it is on."""
    try:
        statements = [s for s in sqlglot.parse(sql_text, read="spark") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        node = node_at(root, loc)
        line = "?"
        if node is not None and isinstance(first.get("line"), int):
            first_line = node.start_mark.line + (2 if getattr(node, "style", None) in ("|", ">") else 1)
            line = first_line + first["line"] - 1
        raise SpecError(
            f"{index}:{line}: {'.'.join(loc)}: SQL syntax error: "
            f"{first.get('description', exc)} near {first.get('highlight', '')!r}"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SpecError(f"{where}: give one query (SELECT ...) or `{ALL}`")
    return statements[0]


def _table_names(query: exp.Query) -> set[str]:
    cte_names = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    return {t.name.lower() for t in query.find_all(exp.Table)} - cte_names


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
