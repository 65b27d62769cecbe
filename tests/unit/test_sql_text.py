"""Names and values from the source as Spark SQL text (transforms.sql_text), and the silver rules for
names Delta handles specially (transforms.merge.layout)."""

from __future__ import annotations

import pytest

from transforms.merge.layout import needs_column_mapping, silver_column
from transforms.sql_text import quote_identifier, sql_string


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("ROW_ID", "`ROW_ID`"),
        ("A`B", "`A``B`"),
        ("``", "``````"),
        ("X.Y", "`X.Y`"),
        ("O'BRIEN", "`O'BRIEN`"),
        ("C\\D", "`C\\D`"),
    ],
)
def test_an_identifier_is_backticked_with_inner_backticks_doubled(name, quoted):
    assert quote_identifier(name) == quoted


def test_a_string_literal_escapes_backslashes_before_quotes():
    assert sql_string("O'BRIEN") == "'O\\'BRIEN'"
    assert sql_string("C\\D") == "'C\\\\D'"
    assert sql_string("C\\'") == "'C\\\\\\''"


@pytest.mark.parametrize(
    "name", ["FIRST NAME", "a,b", "p(q)", "k=v", "x;y", "{z}", "tab\there", "line\nbreak"]
)
def test_names_delta_refuses_without_column_mapping_need_it(name):
    assert needs_column_mapping([name])


@pytest.mark.parametrize("name", ["ROW_ID", "X.Y", "O'BRIEN", "C\\D", "A`B", "NAMÉ_ÜNICODE", "L" * 200])
def test_other_names_need_no_column_mapping(name):
    assert not needs_column_mapping([name])


def test_only_a_backtick_changes_in_the_silver_column_name():
    assert silver_column("A`B`") == "A\u02cbB\u02cb"
    assert silver_column("FIRST NAME.x'\\") == "FIRST NAME.x'\\"
