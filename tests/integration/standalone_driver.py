"""A Delta job whose driver connects to a Spark standalone master (run as its own process: a process
has one SparkContext, and the test process already has a local one).

    python -m tests.integration.standalone_driver <spark://master> <lake root> <app name>

Prints one JSON line with what it saw; the test asserts on it.
"""

from __future__ import annotations

import json
import sys

from resources.connections import LakeResource, SparkResource
from tests.integration.lake_scenarios import write_then_merge


def main(master: str, lake_root: str, app_name: str) -> None:
    lake = LakeResource(root=lake_root, hadoop_conf={"dfs.replication": "1"})
    spark = SparkResource(master=master, app_name=app_name, conf={"spark.driver.memory": "1g"}).session(lake)
    try:
        lake.check_reachable(spark)
        merged = write_then_merge(spark, lake.table_path("tables", "customer"))
        block_managers = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()  # the driver's too
        print(
            json.dumps(
                {
                    "master": spark.sparkContext.master,
                    "executors": block_managers - 1,
                    "merged": merged,
                }
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])
