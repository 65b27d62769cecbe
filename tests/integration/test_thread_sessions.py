"""Steps running at once in threads (orchestration.threaded_executor) each take a Spark session of their
thread's own (resources.spark_session.session_for_this_thread): Delta's commit metadata and temporary
views set by one step never reach another step's commits or queries, while the SparkContext, its jars
and settings are shared."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest
from delta.tables import DeltaTable

from orchestration.threaded_executor import execute_in_this_process, threaded_executor
from resources.connections import SparkResource
from resources.spark_session import session_for_this_thread
from transforms.delta_commits import commit_info
from transforms.merge.scd1 import execute_with_metadata

pytestmark = pytest.mark.integration

MERGES_PER_THREAD = 4


def test_the_main_thread_keeps_the_session_and_each_other_thread_gets_its_own(spark):
    both_asked = threading.Barrier(2, timeout=60)

    def in_a_thread():
        first = session_for_this_thread(spark)
        both_asked.wait()  # two threads at once, so the pool cannot hand both calls to one thread
        return first, session_for_this_thread(spark)

    with ThreadPoolExecutor(max_workers=2) as pool:
        (first, again), (other, _) = [future.result() for future in [pool.submit(in_a_thread) for _ in "ab"]]

    assert session_for_this_thread(spark) is spark
    assert first is again  # once per thread
    assert len({id(first), id(other), id(spark)}) == 3
    assert first.sparkContext is spark.sparkContext
    assert first.conf.get("spark.sql.shuffle.partitions") == spark.conf.get("spark.sql.shuffle.partitions")


def test_merges_running_at_once_in_two_threads_each_commit_their_own_metadata(spark, tmp_lake):
    names = ["left", "right"]
    paths = {name: str(tmp_lake / name) for name in names}
    for path in paths.values():
        spark.createDataFrame([(i, 0) for i in range(50)], "id INT, n INT").write.format("delta").save(path)
    both_ready = threading.Barrier(2, timeout=60)

    def merge_repeatedly(name):
        session = session_for_this_thread(spark)
        both_ready.wait()
        for round_number in range(1, MERGES_PER_THREAD + 1):
            changes = session.createDataFrame([(i, round_number) for i in range(50)], "id INT, n INT")
            merge = (
                DeltaTable.forPath(session, paths[name])
                .alias("t")
                .merge(changes.alias("c"), "t.id = c.id")
                .whenMatchedUpdate(set={"n": "c.n"})
            )
            execute_with_metadata(session, paths[name], merge, f"{name}-{round_number}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(merge_repeatedly, name) for name in names]:
            future.result()

    for name in names:
        recorded = [
            commit_info(spark, paths[name], version).get("userMetadata")
            for version in range(1, MERGES_PER_THREAD + 1)
        ]
        assert recorded == [f"{name}-{n}" for n in range(1, MERGES_PER_THREAD + 1)]
    # the main thread's session never saw the threads' settings
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None


def test_a_temporary_view_of_one_thread_is_invisible_to_another(spark):
    both_created = threading.Barrier(2, timeout=60)

    def view_of(value):
        session = session_for_this_thread(spark)
        session.createDataFrame([(value,)], "v STRING").createOrReplaceTempView("changed_rows")
        both_created.wait()
        seen = [row.v for row in session.sql("SELECT v FROM changed_rows").collect()]
        both_created.wait()
        session.catalog.dropTempView("changed_rows")
        return seen

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(view_of, value) for value in ("a", "b")]
        seen = [future.result() for future in futures]

    assert seen == [["a"], ["b"]]
    assert not spark.catalog.tableExists("changed_rows")


def test_each_step_labels_its_spark_jobs_with_the_run_and_the_step(spark):
    """A step's Spark jobs carry the run as job group and the step in their description, so the Spark UI
    and its event log tell which asset ran which job; two steps in threads of one run each carry theirs."""

    def counting_asset(name: str, rows: int) -> dg.AssetsDefinition:
        @dg.asset(name=name)
        def count_rows(spark: SparkResource) -> int:
            return spark.session().range(rows).count()

        return count_rows

    definitions = dg.Definitions(
        assets=[counting_asset("left", 3), counting_asset("right", 5)],
        jobs=[dg.define_asset_job("labelled", executor_def=threaded_executor)],
        resources={"spark": SparkResource(master=spark.sparkContext.master)},
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_in_this_process(definitions.resolve_job_def("labelled"), instance, {}, {})
    assert result.success

    def labels() -> list[tuple[str, str]]:
        jobs = spark.sparkContext._jsc.sc().statusStore().jobsList(None)
        found = [jobs.apply(i) for i in range(jobs.size())]
        return [
            (job.description().get(), job.jobGroup().get())
            for job in found
            if job.jobGroup().isDefined() and job.jobGroup().get() == result.run_id
        ]

    deadline = time.monotonic() + 30  # the status store hears of jobs from Spark's listener bus
    while len({description for description, _ in labels()}) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {description for description, _ in labels()} == {
        f"left (run {result.run_id[:8]})",
        f"right (run {result.run_id[:8]})",
    }

    # outside a step, the session comes without a label, and one left on the thread is removed
    spark.sparkContext.setJobGroup(result.run_id, "left over")
    SparkResource(master=spark.sparkContext.master).session()
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None
    assert spark.sparkContext.getLocalProperty("spark.job.description") is None
