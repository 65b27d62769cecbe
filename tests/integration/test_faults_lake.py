"""Fault matrix, the lake rows: an HDFS DataNode that stops during a silver write, a full disk and a
folder the process may not write fail the run with a message naming the table and the cause, leave every
table at its last committed version, and the next run, once the fault is gone, completes the batch once.

Real servers only: Kafka of the session's stack, Spark + Delta in this process, the local HDFS (a
MiniDFSCluster whose DataNode is stopped and restarted alone: HdfsServer.stop_datanode), a tmpfs this
test mounts (a disk of 64 MiB, filled to the last byte), `chattr +i` on a table's `_delta_log` (root; a
non-root run uses `chmod a-w`). Each test runs the real assets (assets.factory: bronze, cut, silver)
with Dagster on one CRM table, S_ORG_EXT, of ONE small workload (the whole-flow tests' shape),
generated once per module and produced per test to its own topics in two halves: the first half is
committed by a clean run, the second meets the fault. (Gold, which writes through the same error
translation, is left out to keep each test within its time budget: its step costs as much as the rest.)

Each test then checks what a user would: the step's failure names the table's path and the cause (the
message transforms.lake_errors makes from Spark's stack trace); every table reads at its last committed
version with exactly the rows it had (nothing half-written is visible); after the fault is removed the
next run succeeds, bronze holds each Kafka record once and silver equals the source's final state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets.factory import build_assets
from assets.names import bronze_key, cut_key, silver_key
from devtools.workload import Workload
from devtools.workload.capture import WorkloadMessage
from devtools.workload.producer import produce_messages
from resources.connections import KafkaResource, LakeResource, SparkResource
from tests.lake_truth import silver_problems
from tests.pipeline import error_text, small_crm_workload, specs_on_topics, unique_prefix
from transforms.delta_commits import current_version
from transforms.lake_errors import DISK_FULL, NO_DATANODE, PERMISSION_DENIED

pytestmark = pytest.mark.integration

VICTIM = "s_org_ext"  # the one table, whose silver write meets the HDFS and permission faults
WORKLOAD_TOPICS = "W"


@pytest.fixture(scope="module")
def workload() -> Workload:
    """tests.pipeline.small_crm_workload, not produced (each test produces it to topics of its own)."""
    return small_crm_workload(WORKLOAD_TOPICS)


class Feed:
    """The workload's messages of VICTIM's table on this test's own topic `<prefix>.<TABLE>`, in two
    halves split at a transaction end."""

    def __init__(self, workload: Workload, kafka_bootstrap: str):
        self.workload, self.kafka_bootstrap = workload, kafka_bootstrap
        prefix = unique_prefix()
        self.specs = [spec for spec in specs_on_topics(prefix) if spec.asset_name == VICTIM]
        topics = {spec.topic.split(".", 1)[1] for spec in self.specs}
        self.messages = [
            (index, WorkloadMessage(f"{prefix}.{table}", m.key, m.value))
            for index, m in enumerate(workload.messages)
            for table in [m.topic.split(".", 1)[1]]
            if table in topics
        ]
        self.split = min(end for end in workload.transaction_ends if end >= len(workload.messages) // 2)
        self.produced: Counter[str] = Counter()

    def produce(self, half: int) -> None:
        part = [m for i, m in self.messages if (i < self.split) == (half == 1)]
        assert part, f"half {half} holds no message of {VICTIM}"
        self.produced.update(produce_messages(self.kafka_bootstrap, part, partitions=3))


def _run(feed: Feed, lake: LakeResource, instance, selection=None) -> dg.ExecuteInProcessResult:
    """One run of the feed's assets (bronze, cut, silver), or of `selection`."""
    started = time.monotonic()
    result = dg.materialize(
        build_assets(feed.specs, []),  # no gold entity reads this table alone
        resources={
            "kafka": KafkaResource(bootstrap_servers=feed.kafka_bootstrap),
            "spark": SparkResource(),
            "lake": lake,
        },
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )
    print(f"run ({'all' if selection is None else 'selection'}): {time.monotonic() - started:.1f}s")
    return result


def _failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {e.step_key: error_text(e.step_failure_data.error) for e in result.get_step_failure_events()}


def _table_paths(lake: LakeResource, feed: Feed) -> list[str]:
    return [lake.table_path(layer, spec.asset_name) for layer in ("bronze", "silver") for spec in feed.specs]


def _snapshot(spark, paths: list[str]) -> dict[str, tuple[int | None, list[str]]]:
    """Each table's current version and every row it reads (as text, sorted)."""
    return {
        path: (
            current_version(spark, path),
            sorted(str(row) for row in spark.read.format("delta").load(path).collect()),
        )
        for path in paths
    }


def _assert_complete(spark, lake: LakeResource, feed: Feed) -> None:
    """Bronze holds each Kafka record once, silver equals the source's final state."""
    for spec in feed.specs:
        bronze = spark.read.format("delta").load(lake.table_path("bronze", spec.asset_name))
        assert bronze.count() == feed.produced[spec.topic], spec.asset_name
        assert bronze.select("partition", "offset").distinct().count() == feed.produced[spec.topic]
    problems = silver_problems(spark, lake.root, feed.specs, feed.workload)
    assert not problems, "\n".join(problems)


def _committed_first_half(spark, workload, stack, lake: LakeResource, instance) -> tuple[Feed, dict]:
    feed = Feed(workload, stack.kafka_bootstrap)
    feed.produce(1)
    first = _run(feed, lake, instance)
    assert first.success, _failures(first)
    before = _snapshot(spark, _table_paths(lake, feed))
    assert all(version is not None and rows for version, rows in before.values()), before.keys()
    feed.produce(2)
    return feed, before


# -- 1. HDFS DataNode down during a silver write ---------------------------------------------------------


@pytest.fixture
def hdfs_fault_lake(hdfs_stack, spark) -> Iterator[LakeResource]:
    """A lake on the session's local HDFS whose client gives up on a missing DataNode in seconds: by
    default a read of a block no live DataNode holds is retried 3 times with waits of up to 3, 6 and 9 s
    (dfs.client.retry.window.base 3000 ms), per file. A write without a DataNode fails at once anyway
    (the NameNode places no block). Hadoop caches one client per NameNode, built with the settings of its
    first use, so the cached one is closed before and after (the next use builds one with the settings
    then in force)."""
    quick = {
        "dfs.replication": "1",
        "dfs.client.retry.window.base": "10",
        "dfs.client.max.block.acquire.failures": "1",
    }
    lake = LakeResource(root=f"{hdfs_stack.hdfs_uri}/faults-{uuid.uuid4().hex[:8]}", hadoop_conf=quick)
    lake.configure(spark)
    _close_cached_client(spark, hdfs_stack.hdfs_uri)
    try:
        yield lake
    finally:
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        for key in quick:
            if key != "dfs.replication":
                hadoop.unset(key)
        _close_cached_client(spark, hdfs_stack.hdfs_uri)


def _close_cached_client(spark, uri: str) -> None:
    jvm = spark.sparkContext._jvm
    configuration = spark.sparkContext._jsc.hadoopConfiguration()
    jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI(uri), configuration).close()


def test_hdfs_datanode_down_during_a_silver_write_fails_clearly_and_the_next_run_completes_it(
    spark, stack, hdfs_stack, hdfs_fault_lake, workload, monkeypatch
):
    from transforms.merge import engine

    lake, hdfs = hdfs_fault_lake, hdfs_stack.server("hdfs")
    instance = dg.DagsterInstance.ephemeral()
    feed, before = _committed_first_half(spark, workload, stack, lake, instance)
    victim = lake.table_path("silver", VICTIM)
    upstream = [bronze_key(spec) for spec in feed.specs] + [cut_key("crm")]
    assert _run(feed, lake, instance, selection=upstream).success  # the second half is in bronze, cut

    # The DataNode stops in the middle of the victim's silver write: after the batch's change-log append
    # (a Delta commit of its own), before the MERGE that makes the silver commit. Only this test's
    # process is patched, at that point; the production code runs unchanged.
    appended = []
    original_append = engine.change_log.append

    def append_then_stop_the_datanode(changes, table_path, count):
        original_append(changes, table_path, count)
        if table_path == victim:
            appended.append(current_version(spark, f"{victim}/_changes"))
            hdfs.stop_datanode()

    monkeypatch.setattr(engine.change_log, "append", append_then_stop_the_datanode)
    try:
        started = time.monotonic()
        failed = _run(
            feed, lake, instance, selection=[silver_key(s) for s in feed.specs if s.asset_name == VICTIM]
        )
        seconds = time.monotonic() - started
        # the version is in the NameNode's listing: readable without a DataNode
        version_while_down = current_version(spark, victim)
    finally:
        hdfs.start_datanode()
    monkeypatch.undo()

    assert appended == [1], "the DataNode was not stopped during the victim's silver write"
    assert not failed.success
    (message,) = _failures(failed).values()
    print(f"the user sees ({seconds:.1f}s):\n{message}")
    assert f"writing silver table at {victim} failed: {NO_DATANODE}" in message
    assert seconds < 60, "the HDFS client retried for a long time before it gave up"
    assert version_while_down == before[victim][0]
    after = _snapshot(spark, _table_paths(lake, feed))  # the DataNode is back: the rows are readable
    for path in after:
        if "/silver/" in path:  # bronze holds the second half (the run before)
            assert after[path] == before[path], f"{path} changed although the run failed"

    recovered = _run(feed, lake, instance)
    assert recovered.success, _failures(recovered)
    assert current_version(spark, victim) == before[victim][0] + 1  # the batch in ONE commit
    _assert_complete(spark, lake, feed)


# -- 2. disk full ------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted on a fresh folder, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the lake needs root (this process is not root)")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {folder}: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(disk: Path) -> Path:
    """A file that takes every free byte of the disk."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == 28, error  # ENOSPC
    assert shutil.disk_usage(disk).free == 0
    return filler


def test_disk_full_during_a_micro_batch_fails_clearly_and_nothing_half_written_is_visible(
    spark, stack, small_disk, workload
):
    lake = LakeResource(root=str(small_disk / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    feed, before = _committed_first_half(spark, workload, stack, lake, instance)

    filler = _fill(small_disk)
    failed = _run(feed, lake, instance)

    assert not failed.success
    failures = _failures(failed)
    print("the user sees:\n" + "\n---\n".join(failures.values()))
    bronze = {lake.table_path("bronze", spec.asset_name) for spec in feed.specs}
    assert failures, "no step failed"
    for step, message in failures.items():
        named = [path for path in bronze if f"writing bronze table at {path} failed: {DISK_FULL}" in message]
        assert named, f"{step}: {message}"
    assert _snapshot(spark, _table_paths(lake, feed)) == before

    filler.unlink()
    recovered = _run(feed, lake, instance)
    assert recovered.success, _failures(recovered)
    after = _snapshot(spark, _table_paths(lake, feed))
    assert all(after[path][0] == before[path][0] + 1 for path in bronze)  # the batch in ONE commit
    _assert_complete(spark, lake, feed)


# -- 3. permission denied --------------------------------------------------------------------------------


def _deny_writes(folder: Path) -> list[str]:
    """The command that undoes it: root is denied by the immutable attribute only, others by the mode."""
    if os.geteuid() == 0:
        denied = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if denied.returncode != 0:
            pytest.skip(
                f"`chattr +i {folder}` failed (no immutable attribute here?): {denied.stderr.strip()}"
            )
        return ["chattr", "-i", str(folder)]
    folder.chmod(0o555)
    return ["chmod", "u+w", str(folder)]


def test_permission_denied_on_a_silver_commit_fails_clearly_and_the_next_run_completes_it(
    spark, stack, tmp_path, workload
):
    lake = LakeResource(root=str(tmp_path / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    feed, before = _committed_first_half(spark, workload, stack, lake, instance)
    victim = lake.table_path("silver", VICTIM)

    restore = _deny_writes(Path(victim) / "_delta_log")
    try:
        failed = _run(feed, lake, instance)
    finally:
        subprocess.run(restore, check=True)

    assert not failed.success
    failures = _failures(failed)
    print("the user sees:\n" + "\n---\n".join(failures.values()))
    assert list(failures) == [f"silver__{VICTIM}"], failures  # bronze committed the second half
    assert f"writing silver table at {victim} failed: {PERMISSION_DENIED}" in failures[f"silver__{VICTIM}"]
    after = _snapshot(spark, _table_paths(lake, feed))
    assert after[victim] == before[victim]
    bronze = lake.table_path("bronze", VICTIM)
    assert after[bronze][0] == before[bronze][0] + 1

    recovered = _run(feed, lake, instance)
    assert recovered.success, _failures(recovered)
    assert current_version(spark, victim) == before[victim][0] + 1  # the batch in ONE commit
    _assert_complete(spark, lake, feed)
