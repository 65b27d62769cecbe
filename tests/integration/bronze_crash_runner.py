"""Runs one bronze batch in a separate process and SIGKILLs itself at a chosen point.

Usage: python bronze_crash_runner.py SPEC_JSON BOOTSTRAP BRONZE_PATH QUARANTINE_PATH POINT
POINT is `before_bronze_commit` (after the quarantine commit, before bronze is written) or
`after_bronze_commit` (right after bronze's commit, before anything else). Used by
test_bronze_exactly_once.py; it patches only this process's Spark writer.
"""

import os
import signal
import sys

from pyspark.sql.readwriter import DataFrameWriter

from resources.spark_session import build_spark_session
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import make_consumer
from transforms.specs.table import TableSpec


def main() -> None:
    spec_json, bootstrap, bronze_path, quarantine_path, point = sys.argv[1:6]
    original_save = DataFrameWriter.save

    def save(self, path=None, *args, **kwargs):
        if path == bronze_path and point == "before_bronze_commit":
            os.kill(os.getpid(), signal.SIGKILL)
        original_save(self, path, *args, **kwargs)
        if path == bronze_path and point == "after_bronze_commit":
            os.kill(os.getpid(), signal.SIGKILL)

    DataFrameWriter.save = save
    spark = build_spark_session()
    spec = TableSpec.model_validate_json(spec_json)
    consumer = make_consumer({"bootstrap.servers": bootstrap}, group_id="crash-runner")
    ingest_batch(spark, spec, consumer, bronze_path, quarantine_path)
    sys.exit(3)  # reaching here means the kill point was never hit


if __name__ == "__main__":
    main()
