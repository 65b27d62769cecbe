"""Declarative Cassandra projections: one per query-shaped read model (YAML files that
assets.projection_spec loads); the engine's input for the projection writer.

A projection is a Cassandra table filled from gold entities. The simplest spec projects one entity's
columns under the same names::

    projection: customer_by_id
    entity: customer                  # the gold entity; a changed row affects its own partition
    partition_key: [customer_id]
    columns:                          # column -> CQL type, in table order
      customer_id: text
      last_name: text

A spec that joins, renames or aggregates gives Spark SQL over the gold entities (each is a view named
after the entity; quote reserved words: `order`) and says, for each entity the SQL reads, which
partitions a changed row of that entity affects::

    projection: orders_by_customer
    sql: |
      SELECT contact_id AS customer_id, ordered_at AS order_date, order_id, status FROM `order`
    affected_partitions:
      order: [contact_id]             # the partition key's values, read from the changed row
    partition_key: [customer_id]
    clustering:                       # in order; asc is the default
      - order_date: desc
      - order_id
    columns: {customer_id: text, order_date: timestamp, order_id: text, status: text}
    latest_n: 30                      # keep only the first 30 rows of each partition (clustering order)

`affected_partitions` values are either the changed row's columns that hold the partition key (in
partition-key order), or a Spark SQL query returning the partition key, over the view `changed` (the
entity's changed rows, before and after each change) and the gold entity views.

Optional: `keyspace` (default: the caller's), `table` (default: the projection name), `description`,
`ttl_seconds` (each write expires after that long). Unknown or misspelled fields, wrong types, SQL
syntax errors and duplicates across files are errors naming the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

import sqlglot
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from sqlglot import exp

IDENTIFIER = r"^[a-z][a-z0-9_]{0,47}$"  # unquoted CQL identifiers, at most 48 characters
MAX_TTL_SECONDS = 630_720_000  # Cassandra's limit: 20 years

# Native types the projections write (Cassandra aliases varchar to text). Left out on purpose:
# counter (not an upsert), duration/time (no Spark type to carry them), vector (no use here).
NATIVE_TYPES = {
    "ascii",
    "bigint",
    "blob",
    "boolean",
    "date",
    "decimal",
    "double",
    "float",
    "inet",
    "int",
    "smallint",
    "text",
    "timestamp",
    "timeuuid",
    "tinyint",
    "uuid",
    "varint",
}
ALIASES = {"varchar": "text"}
COLLECTIONS = {"list": 1, "set": 1, "map": 2, "frozen": 1}
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(<)|(>)|(,))")


# -- CQL types: parsed, checked and spelled the way system_schema.columns.type spells them --------


class CqlTypeError(ValueError):
    pass


def canonical_cql_type(text: str) -> str:
    """The canonical spelling of a CQL type, or CqlTypeError saying what is wrong."""
    if "(" in text:
        raise CqlTypeError(f"type {text!r}: CQL types take no (precision, scale); write e.g. decimal")
    tokens = _tokens(text)
    parsed, rest = _parse(tokens, text)
    if rest:
        raise CqlTypeError(f"type {text!r}: unexpected {rest[0]!r} after {parsed!r}")
    return parsed


def is_collection(canonical: str) -> bool:
    """True for a non-frozen collection (which cannot be part of a primary key)."""
    return canonical.split("<", 1)[0] in ("list", "set", "map")


def base_type(canonical: str) -> str:
    """`decimal` for `decimal`, `list` for `list<text>`, `frozen` for `frozen<map<text, int>>`."""
    return canonical.split("<", 1)[0]


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise CqlTypeError(f"type {text!r}: cannot read {text[position:].strip()!r}")
        assert match.lastindex is not None  # every alternative of _TOKEN is a group, so a match sets one
        tokens.append(match.group(match.lastindex))
        position = match.end()
    if not tokens:
        raise CqlTypeError("type is empty")
    return tokens


def _parse(tokens: list[str], text: str) -> tuple[str, list[str]]:
    name, rest = tokens[0].lower(), tokens[1:]
    name = ALIASES.get(name, name)
    if name in NATIVE_TYPES:
        return name, rest
    if name not in COLLECTIONS:
        known = ", ".join(sorted(NATIVE_TYPES | {"list<T>", "set<T>", "map<K, V>", "frozen<T>"}))
        raise CqlTypeError(f"type {text!r}: {tokens[0]!r} is not a CQL type the projections write ({known})")
    if not rest or rest[0] != "<":
        raise CqlTypeError(f"type {text!r}: {name} needs its element types in <...>")
    arguments, rest = [], rest[1:]
    while True:
        argument, rest = _parse(rest, text) if rest else ("", [])
        if not argument:
            raise CqlTypeError(f"type {text!r}: {name}<...> is not closed")
        arguments.append(argument)
        if rest and rest[0] == ",":
            rest = rest[1:]
            continue
        if rest and rest[0] == ">":
            rest = rest[1:]
            break
        raise CqlTypeError(f"type {text!r}: {name}<...> is not closed")
    expected = COLLECTIONS[name]
    if len(arguments) != expected:
        raise CqlTypeError(f"type {text!r}: {name} takes {expected} type(s), got {len(arguments)}")
    if name != "frozen":
        for argument in arguments:
            if is_collection(argument):
                raise CqlTypeError(
                    f"type {text!r}: a collection inside {name} must be frozen, e.g. frozen<{argument}>"
                )
    if name == "frozen" and not is_collection(arguments[0]):
        raise CqlTypeError(f"type {text!r}: frozen<...> applies to a collection, not {arguments[0]}")
    return f"{name}<{', '.join(arguments)}>", rest


class SqlTextError(ValueError):
    """A syntax error in one of the spec's SQL texts, at `line` of that text (1-based)."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _cql_type(text: str) -> str:
    try:
        return canonical_cql_type(text)
    except CqlTypeError as error:
        raise ValueError(str(error)) from None


CqlType = Annotated[str, AfterValidator(_cql_type)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]


def _clustering_entry(entry: object) -> dict[str, str]:
    """`order_id` or `order_date: desc` -> {column: "asc"|"desc"}."""
    if isinstance(entry, str):
        entry = {entry: "asc"}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError(f"{entry!r}: a clustering entry is a column name, or `column: asc` / `column: desc`")
    ((name, order),) = entry.items()
    if not isinstance(name, str) or not re.match(IDENTIFIER, name):
        raise ValueError(f"{name!r} is not a column name (lower case letters, digits, _)")
    if order not in ("asc", "desc"):
        raise ValueError(f"clustering order of {name} is {order!r}: use asc or desc")
    return {name: order}


ClusteringItem = Annotated[dict[str, str], BeforeValidator(_clustering_entry)]


class ProjectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    projection: Identifier
    description: str | None = None
    keyspace: Identifier | None = None
    table: Identifier | None = None
    entity: Identifier | None = None
    sql: str | None = Field(default=None, min_length=1)
    affected_partitions: dict[Identifier, list[Identifier] | str] | None = None
    partition_key: list[Identifier] = Field(min_length=1)
    clustering: list[ClusteringItem] = Field(default_factory=list)
    columns: dict[Identifier, CqlType] = Field(min_length=1)
    latest_n: int | None = Field(default=None, ge=1)
    ttl_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL_SECONDS)

    @model_validator(mode="after")
    def _source_is_an_entity_or_sql(self) -> ProjectionSpec:
        if (self.entity is None) == (self.sql is None):
            raise ValueError("give either `entity` (one gold entity) or `sql` (Spark SQL over gold entities)")
        if self.entity is not None and self.affected_partitions is not None:
            raise ValueError(
                "`affected_partitions` goes with `sql`; with `entity` a changed row affects its own key"
            )
        if self.sql is not None and not self.affected_partitions:
            raise ValueError(
                "`sql` needs `affected_partitions`: for each entity the SQL reads, the columns of a changed "
                "row that hold the partition key (or a query over the view `changed`)"
            )
        return self

    @model_validator(mode="after")
    def _keys_are_columns(self) -> ProjectionSpec:
        clustering = [name for name, _ in self.clustering_columns]
        for role, names in (("partition_key", self.partition_key), ("clustering", clustering)):
            missing = [name for name in names if name not in self.columns]
            if missing:
                raise ValueError(
                    f"{role} column(s) {missing} are not in `columns` ({', '.join(self.columns)})"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"{role} repeats a column: {names}")
        both = sorted(set(self.partition_key) & set(clustering))
        if both:
            raise ValueError(f"column(s) {both} are in both partition_key and clustering")
        for name in self.primary_key:
            if is_collection(self.columns[name]):
                raise ValueError(
                    f"key column {name} has type {self.columns[name]}: a key cannot be a non-frozen collection"
                )
        if self.latest_n is not None and not clustering:
            raise ValueError("latest_n needs clustering columns: they define which rows are the latest")
        return self

    @model_validator(mode="after")
    def _sql_reads_the_declared_entities(self) -> ProjectionSpec:
        if self.sql is None:
            return self
        read = set(tables_read_by(self.sql))
        declared = set(self.affected_partitions or {})
        if read - declared:
            raise ValueError(
                f"sql reads {', '.join(sorted(read - declared))}, which `affected_partitions` does not list "
                f"(it lists {', '.join(sorted(declared))})"
            )
        if declared - read:
            raise ValueError(
                f"affected_partitions lists {', '.join(sorted(declared - read))}, which the sql does not read"
            )
        for entity, mapping in (self.affected_partitions or {}).items():
            if isinstance(mapping, list) and len(mapping) != len(self.partition_key):
                raise ValueError(
                    f"affected_partitions.{entity} names {len(mapping)} column(s) {mapping}; the partition key "
                    f"has {len(self.partition_key)} {self.partition_key}"
                )
            if isinstance(mapping, str):
                tables_read_by(mapping)
        return self

    # -- derived -------------------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        return self.table or self.projection

    @property
    def clustering_columns(self) -> list[tuple[str, str]]:
        """[(column, "asc"|"desc"), ...] in clustering order."""
        pairs: list[tuple[str, str]] = []
        for item in self.clustering:
            pairs.extend(item.items())
        return pairs

    @property
    def primary_key(self) -> list[str]:
        return [*self.partition_key, *(name for name, _ in self.clustering_columns)]

    @property
    def query(self) -> str:
        """The Spark SQL that computes every row of the projection from the gold entity views."""
        if self.sql is not None:
            return self.sql
        return f"SELECT {', '.join(f'`{c}`' for c in self.columns)} FROM `{self.entity}`"

    @property
    def partition_mappings(self) -> dict[str, list[str] | str]:
        """entity -> how a changed row of it names the partitions it affects (columns, or SQL over `changed`)."""
        if self.entity is not None:
            return {self.entity: list(self.partition_key)}
        return dict(self.affected_partitions or {})

    @property
    def entities(self) -> list[str]:
        return sorted(self.partition_mappings)

    def fingerprint(self) -> str:
        """Changes whenever what the projection writes changes (not for description-only edits)."""
        content = self.model_dump_json(exclude={"description"})
        return hashlib.sha256(content.encode()).hexdigest()[:16]


def tables_read_by(sql_text: str) -> list[str]:
    """The tables/views a Spark SQL query reads (CTE names excluded); SqlTextError on a syntax error."""
    try:
        tree = sqlglot.parse_one(sql_text, read="spark")
    except sqlglot.errors.ParseError as error:
        first = error.errors[0] if error.errors else {}
        raise SqlTextError(
            f"SQL syntax error at line {first.get('line', '?')}, column {first.get('col', '?')}: "
            f"{first.get('description', error)} near {first.get('highlight', '')!r}",
            line=int(first.get("line") or 1),
        ) from None
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return sorted({table.name for table in tree.find_all(exp.Table)} - cte_names)
