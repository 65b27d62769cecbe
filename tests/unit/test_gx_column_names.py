"""Column names given to Great Expectations: a dotted name is backquoted where GX's Spark table metrics
(`table.columns`, `table.column_types`) look it up, and left as it is elsewhere. The Kafka hostile-names
test runs such expectations on Spark; this names each argument. No servers."""

from __future__ import annotations

import pytest

from expectations.suite import ExpectationSpec
from expectations.validate import _table_metric_names


def spec(type_: str, kwargs: dict) -> ExpectationSpec:
    return ExpectationSpec(name="x", type=type_, kwargs=kwargs)


@pytest.mark.parametrize(
    ("type_", "kwargs", "expected"),
    [
        ("expect_column_to_exist", {"column": "X.Y"}, {"column": "`X.Y`"}),
        ("expect_column_to_exist", {"column": "`X.Y`"}, {"column": "`X.Y`"}),
        ("expect_column_to_exist", {"column": "PLAIN"}, {"column": "PLAIN"}),
        ("expect_column_values_to_be_of_type", {"column": "a.b", "type_": "StringType"}, {"column": "`a.b`"}),
        ("expect_table_columns_to_match_set", {"column_set": ["A", "B.C"]}, {"column_set": ["A", "`B.C`"]}),
        ("expect_table_columns_to_match_ordered_list", {"column_list": ["B.C"]}, {"column_list": ["`B.C`"]}),
        ("expect_column_values_to_not_be_null", {"column": "X.Y"}, {}),
    ],
)
def test_dotted_names_are_backquoted_only_for_the_table_metrics(type_, kwargs, expected):
    assert _table_metric_names(spec(type_, kwargs)) == expected
