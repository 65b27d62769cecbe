"""Spark beyond one JVM: a standalone master and worker; the driver ships the Delta jars to the executors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from devtools.stack.jars import PROJECT_ROOT
from tests.integration.lake_scenarios import MERGED

pytestmark = pytest.mark.integration


def test_delta_job_on_a_standalone_cluster_runs_on_worker_executors_with_the_delta_jars(
    standalone_spark, hdfs_stack
):
    master = standalone_spark.spark_master_url
    app_name = f"cdc-standalone-{uuid.uuid4().hex[:8]}"
    lake_root = f"{hdfs_stack.hdfs_uri}/standalone-{uuid.uuid4().hex[:8]}"

    driver = subprocess.run(
        [sys.executable, "-m", "tests.integration.standalone_driver", master, lake_root, app_name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert driver.returncode == 0, driver.stderr[-3000:]
    seen = json.loads(driver.stdout.strip().splitlines()[-1])
    assert seen["master"] == master
    assert seen["executors"] >= 1
    assert [tuple(row) for row in seen["merged"]["current"]] == MERGED
    assert [tuple(op) for op in seen["merged"]["operations"]] == [(0, "WRITE"), (1, "MERGE")]
    server = standalone_spark.server("spark")
    state = server.master_state()
    applications = {app["name"]: app for app in state["activeapps"] + state["completedapps"]}
    assert app_name in applications
    # the worker fetched the driver's Delta jars into the executor's folder
    executor_files = {
        path.name for path in (server.home / "work" / applications[app_name]["id"]).rglob("*.jar")
    }
    assert any(name.startswith("delta-spark_2.13-") for name in executor_files)
