"""Gold entities: cleanup SQL files declared in `transforms/gold/entities.yaml`.

Each entry names an entity, its key columns and the SQL file (Spark SQL) that builds it from silver
tables, which the SQL references by their spec names (`s_contact`, `s_lst_of_val`, ...). The SQL is
parsed when the definitions load, so a syntax error fails at once with the file and line; the silver
tables it reads are found in the SQL itself.
"""

from __future__ import annotations

from pathlib import Path

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from assets.table_spec import SpecError, _describe

GOLD_DIR = Path(__file__).resolve().parents[1] / "transforms" / "gold"


class GoldEntity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    keys: list[str] = Field(min_length=1)
    sql: str
    description: str | None = None
    sources: tuple[str, ...] = ()  # filled from the SQL
    sql_text: str = ""  # filled from the file


def load_gold_entities(folder: Path = GOLD_DIR, known_tables: set[str] | None = None) -> list[GoldEntity]:
    index = folder / "entities.yaml"
    text = index.read_text()
    raw = yaml.safe_load(text) or {}
    root = yaml.compose(text)
    entities = []
    for name, body in raw.items():
        try:
            entity = GoldEntity.model_validate({"name": name, **(body or {})})
        except ValidationError as exc:
            entity_node = next((v for k, v in root.value if k.value == name), root)
            raise SpecError(f"entity {name!r}: " + _describe(index, entity_node, exc)) from None
        sql_path = folder / entity.sql
        if not sql_path.exists():
            raise SpecError(f"{index}: entity {name!r}: SQL file {sql_path} does not exist")
        sql_text = sql_path.read_text()
        sources = _tables_read_by(sql_path, sql_text)
        unknown = sorted(set(sources) - known_tables) if known_tables is not None else []
        if unknown:
            raise SpecError(
                f"{sql_path}: reads {', '.join(unknown)}, which no table spec defines "
                f"(known: {', '.join(sorted(known_tables))})"
            )
        entities.append(entity.model_copy(update={"sources": tuple(sources), "sql_text": sql_text}))
    return entities


def _tables_read_by(path: Path, sql_text: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(sql_text, read="spark")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SpecError(
            f"{path}:{first.get('line', '?')}:{first.get('col', '?')}: SQL syntax error: "
            f"{first.get('description', exc)} near {first.get('highlight', '')!r}"
        ) from None
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return sorted({t.name for t in tree.find_all(exp.Table)} - cte_names)
