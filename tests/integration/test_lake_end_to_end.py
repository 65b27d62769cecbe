"""The whole flow on a cluster: workload -> Kafka -> bronze -> silver -> gold -> checks -> Cassandra,
with the lake on hdfs:// (local HDFS) and Spark on a local standalone cluster (a master and a worker:
the driver ships the Delta jars to the worker's executors, which run the jobs), in its own process
configured only from the environment, as a deployment is; silver must equal the workload's true final
state. The run then rebuilds every Cassandra projection with the `rebuild_projections` job.

The same flow with the lake on s3a:// (local S3 server, Spark in local mode) runs with every credential
set in tests/integration/test_secrets.py; on a local lake, in tests/integration/test_make_run.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from devtools.stack.jars import PROJECT_ROOT
from tests.lake_truth import silver_problems
from tests.pipeline import produce_small_crm_workload, specs_on_topics, unique_prefix

pytestmark = pytest.mark.integration

BLOCKING = "ERROR"


def run_pipeline(prefix: str, environment: dict[str, str], *options: str) -> dict:
    driver = subprocess.run(
        [sys.executable, "-m", "tests.integration.full_pipeline_driver", prefix, *options],
        cwd=PROJECT_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert driver.returncode == 0, driver.stderr[-4000:]
    return json.loads(driver.stdout.strip().splitlines()[-1])


def check_everything(
    spark, stack, cassandra_session, lake_root: str, environment: dict[str, str], *options: str
) -> dict:
    prefix = unique_prefix()
    keyspace = f"e2e_{uuid.uuid4().hex[:8]}"
    workload = produce_small_crm_workload(stack.kafka_bootstrap, prefix)
    environment = {
        **stack.connection_settings(),
        "CDC_LAKE_ROOT": lake_root,
        "CDC_CASSANDRA_KEYSPACE": keyspace,
        **environment,
    }

    run = run_pipeline(prefix, environment, *options)

    assert run["success"], "\n".join(run["failures"])
    blocking_failures = [c["check"] for c in run["checks"] if c["severity"] == BLOCKING and not c["passed"]]
    assert run["checks"] and not blocking_failures
    assert {"cassandra/orders_by_customer", "cassandra/customer_by_id", "cassandra/order_by_id"} <= set(
        run["materialized"]
    )
    problems = silver_problems(spark, lake_root, specs_on_topics(prefix), workload)
    assert not problems, "\n".join(problems)
    live_orders = len(workload.state()["SIEBEL.S_ORDER"])
    projected = cassandra_session.execute(f"SELECT count(*) FROM {keyspace}.order_by_id").one()[0]
    assert projected == live_orders
    return run | {"keyspace": keyspace, "live_orders": live_orders}


def test_the_whole_flow_on_hdfs_with_spark_on_a_standalone_cluster_then_a_rebuild_of_every_projection(
    spark, stack, cassandra_session, hdfs_stack, hdfs_lake, standalone_spark
):
    root = f"{hdfs_lake.root}/e2e-{uuid.uuid4().hex[:8]}"
    environment = {
        "CDC_LAKE_HADOOP_CONF": '{"dfs.replication": "1"}',
        **standalone_spark.connection_settings(),
    }
    run = check_everything(spark, stack, cassandra_session, root, environment, "--rebuild-projections")
    # the run ran on the worker's executors, which fetched the driver's Delta jars
    assert run["spark_master"] == standalone_spark.spark_master_url and run["executors"] >= 1
    server = standalone_spark.server("spark")
    state = server.master_state()
    assert run["spark_application"] in {app["id"] for app in state["activeapps"] + state["completedapps"]}
    executor_jars = {path.name for path in (server.home / "work" / run["spark_application"]).rglob("*.jar")}
    assert any(name.startswith("delta-spark_2.13-") for name in executor_jars), sorted(executor_jars)

    rebuild = run["rebuild_projections"]
    assert rebuild["success"]
    assert set(rebuild["rebuilt"]) == {
        "cassandra/orders_by_customer",
        "cassandra/customer_by_id",
        "cassandra/order_by_id",
    }
    for projection, stats in rebuild["rebuilt"].items():
        assert (stats["status"], stats["full_refresh"]) == ("written", True), projection
        assert stats["rows_written"] > 0 and stats["partitions_cleared"] > 0, projection
    assert rebuild["rebuilt"]["cassandra/order_by_id"]["rows_written"] == run["live_orders"]
    assert rebuild["rebuilt"]["cassandra/order_by_id"]["partitions_cleared"] == run["live_orders"]
    projected = cassandra_session.execute(f"SELECT count(*) FROM {run['keyspace']}.order_by_id").one()[0]
    assert projected == run["live_orders"]
