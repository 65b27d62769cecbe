"""Storage failures of a lake write are named plainly (transforms.lake_errors), others pass unchanged."""

from __future__ import annotations

import errno

import pytest

from transforms.lake_errors import (
    DISK_FULL,
    NO_DATANODE,
    PERMISSION_DENIED,
    LakeWriteError,
    classify,
    describe,
    lake_write,
    writes_table,
)

# the (class, message) chains Spark and Hadoop give, shortened
SPARK_TASK_DISK_FULL = [
    (
        "org.apache.spark.SparkException",
        "Job aborted due to stage failure: Task 0 in stage 3.0 failed 1 times, most recent failure: "
        "Lost task 0.0: org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device\n"
        "\tat org.apache.hadoop.fs.RawLocalFileSystem$LocalFSFileOutputStream.write(...)",
    ),
    ("org.apache.hadoop.fs.FSError", "java.io.IOException: No space left on device"),
    ("java.io.IOException", "No space left on device"),
]
HDFS_NO_DATANODE_WRITE = [
    (
        "org.apache.hadoop.ipc.RemoteException",
        "File /lake/silver/t/_delta_log/.00000000000000000002.json.tmp could only be written to 0 of the "
        "1 minReplication nodes. There are 0 datanode(s) running and 0 node(s) are excluded in this "
        "operation.\n\tat org.apache.hadoop.hdfs.server.blockmanagement.BlockManager.chooseTarget4NewBlock",
    )
]
HDFS_NO_DATANODE_READ = [
    (
        "org.apache.hadoop.hdfs.BlockMissingException",
        "Could not obtain block: BP-1:blk_1073741830_1006 file=/lake/silver/t/_delta_log/"
        "00000000000000000001.json No live nodes contain current block",
    )
]
IMMUTABLE_LOG = [
    (
        "java.io.FileNotFoundException",
        "/lake/silver/t/_delta_log/.00000000000000000002.json.crc (Operation not permitted)",
    )
]


@pytest.mark.parametrize(
    ("causes", "reason"),
    [
        (SPARK_TASK_DISK_FULL, DISK_FULL),
        ([("OSError", "[Errno 28] No space left on device: '/lake/x'")], DISK_FULL),
        (HDFS_NO_DATANODE_WRITE, NO_DATANODE),
        (HDFS_NO_DATANODE_READ, NO_DATANODE),
        (IMMUTABLE_LOG, PERMISSION_DENIED),
        ([("java.nio.file.AccessDeniedException", "/lake/silver/t/_delta_log")], PERMISSION_DENIED),
        (
            [("org.apache.hadoop.security.AccessControlException", "Permission denied: user=etl")],
            PERMISSION_DENIED,
        ),
    ],
)
def test_storage_failures_are_classified(causes, reason):
    assert classify(causes) == reason


@pytest.mark.parametrize(
    "causes",
    [
        [("org.apache.spark.sql.delta.ConcurrentAppendException", "Files were added to the table")],
        [("java.net.ConnectException", "Connection refused")],
        [("ValueError", "bad column")],
    ],
)
def test_other_failures_are_not(causes):
    assert classify(causes) is None


def test_the_message_names_the_table_the_reason_and_the_cause_line_that_says_it():
    message = describe("silver", "/lake/silver/t", DISK_FULL, SPARK_TASK_DISK_FULL)

    assert message == (
        "writing silver table at /lake/silver/t failed: the disk is full (No space left on device)\n"
        "  cause: java.io.IOException: No space left on device"
    )
    hdfs = describe("silver", "hdfs://nn:8020/lake/silver/t", NO_DATANODE, HDFS_NO_DATANODE_WRITE)
    assert hdfs.startswith(f"writing silver table at hdfs://nn:8020/lake/silver/t failed: {NO_DATANODE}\n")
    assert "could only be written to 0 of the 1 minReplication nodes" in hdfs
    assert "\tat " not in hdfs  # no stack trace line


def test_lake_write_chains_the_original_and_passes_other_errors_unchanged():
    original = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(LakeWriteError) as raised, lake_write("bronze", "/lake/bronze/t"):
        raise original
    assert str(raised.value).startswith(f"writing bronze table at /lake/bronze/t failed: {DISK_FULL}")
    assert raised.value.__cause__ is original

    with pytest.raises(KeyError), lake_write("bronze", "/lake/bronze/t"):
        raise KeyError("not a storage failure")


def test_writes_table_names_the_path_argument_however_it_is_passed():
    @writes_table("gold", "gold_path")
    def refresh(spark, *, name, gold_path):
        raise PermissionError(errno.EPERM, "Operation not permitted", f"{gold_path}/_delta_log")

    with pytest.raises(LakeWriteError, match="^writing gold table at /lake/gold/order failed: this process"):
        refresh(None, name="order", gold_path="/lake/gold/order")
    assert refresh.__name__ == "refresh"


def test_an_inner_lake_write_error_is_kept():
    @writes_table("bronze", "path")
    def append(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(LakeWriteError, match="at /lake/quarantine/t failed"), lake_write("bronze", "/x"):
        append("/lake/quarantine/t")
