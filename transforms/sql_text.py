"""The two ways a name or a value from the source reaches Spark SQL text or a Spark column reference.

Column names come from the source database and may hold any character (spaces, quotes, backticks,
backslashes, dots, unicode): every name put into SQL text, a `F.col`/`select` reference or a MERGE
assignment goes through `quote_identifier`, every text value through `sql_string`. A bare name would
read `X.Y` as the field `Y` of a struct `X`, and an unescaped backtick or quote would end the name early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

# The SET or VALUES of a Delta MERGE clause: target column (quoted) -> SQL expression text. Typed as
# DeltaMergeBuilder's stubs take it: a dict of str or Column (a dict's value type is invariant, so a
# dict[str, str] would not do).
MergeAssignments = dict[str, "str | Column"]


def quote_identifier(name: str) -> str:
    """A Spark SQL identifier that means exactly `name`: in backticks, inner backticks doubled."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    """A Spark SQL string literal of `text` (Spark reads backslash escapes in literals by default)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
