"""The change log beside silver (`<silver>/_changes`) is part of the table's state: PK moves and SCD2
replay it. Maintenance of silver must not remove it."""

from __future__ import annotations

import pytest

from tests.reference_model import IMAGE, UPDATE, Change, key_json, sequence_at, time_at
from transforms.merge.change_log import log_path, read_log

pytestmark = pytest.mark.integration


def test_vacuum_of_silver_keeps_the_change_log(spark, silver):
    silver.apply([Change(key_json({"ID": "1"}), sequence_at(1), IMAGE, {"A": "a"}, commit_ts=time_at(1))])
    silver.apply([Change(key_json({"ID": "1"}), sequence_at(2), UPDATE, {"A": "b"}, commit_ts=time_at(2))])

    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(check, "false")
    try:
        spark.sql(f"VACUUM delta.`{silver.path}` RETAIN 0 HOURS")
    finally:
        spark.conf.unset(check)

    assert sorted(r["_sequence"] for r in read_log(spark, silver.path).collect()) == [
        sequence_at(1),
        sequence_at(2),
    ]
    assert log_path(silver.path).startswith(silver.path)
