"""Preflight checks a run makes before it writes anything: can it reach the lake and the Spark master?

`check_lake_reachable(spark, root)` writes a small probe object `<root>/_cdc_probe-<random>`, reads it
back and deletes it (no folder of probes: checks running at once, in threads or processes, share
nothing one of them could delete under another), through a fresh Hadoop client whose retries and
timeouts are cut short, so a wrong endpoint, wrong credentials, a missing bucket or a NameNode that
is down fail within seconds (instead of minutes of retries, or in the middle of a commit) with a
message naming the URI and what to check. `explain_lake_error` turns any lake failure (also one in the
middle of a write) into such a message.

`check_spark_master(master)` connects to a `spark://` master's port before a session is built: an
unreachable master otherwise makes Spark retry for about a minute and fail with "All masters are
unresponsive".
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

PROBE_PREFIX = "_cdc_probe-"


class LakeUnreachableError(RuntimeError):
    """The lake root cannot be written, read or deleted; the message says what to check."""


class SparkMasterUnreachableError(RuntimeError):
    """No master of a spark:// URL accepts connections."""


def _scheme(root: str) -> str:
    return root.split("://", 1)[0] if "://" in root else "file"


def _fail_fast_settings(scheme: str, timeout_seconds: float) -> dict[str, str]:
    millis = str(int(timeout_seconds * 1000))
    if scheme == "s3a":
        return {
            "fs.s3a.attempts.maximum": "1",  # AWS SDK retries
            "fs.s3a.retry.limit": "1",  # s3a's own retries
            "fs.s3a.retry.throttle.limit": "1",
            "fs.s3a.connection.establish.timeout": millis,
            "fs.s3a.connection.timeout": millis,
            "fs.s3a.connection.request.timeout": millis,
            "fs.s3a.bucket.probe": "2",  # a missing bucket fails at once, by name
        }
    if scheme == "hdfs":
        return {
            "ipc.client.connect.max.retries": "1",
            "ipc.client.connect.max.retries.on.timeouts": "1",
            "ipc.client.connect.timeout": millis,
            "ipc.client.rpc-timeout.ms": millis,
            "dfs.client.retry.max.attempts": "1",
        }
    return {}


def check_lake_reachable(
    spark: SparkSession,
    root: str,
    hadoop_settings: Mapping[str, str] | None = None,
    timeout_seconds: float = 15.0,
) -> None:
    """Write, read back and delete `<root>/_cdc_probe-<random>`; raise LakeUnreachableError if any fails.

    The Hadoop settings are the session's, then `hadoop_settings` (the lake's), then short retries and
    timeouts. The client is a new instance (not Hadoop's cached one) and is closed afterwards.
    """
    jvm = spark.sparkContext._jvm
    configuration = jvm.org.apache.hadoop.conf.Configuration(spark.sparkContext._jsc.hadoopConfiguration())
    for key, value in {
        **(hadoop_settings or {}),
        **_fail_fast_settings(_scheme(root), timeout_seconds),
    }.items():
        configuration.set(key, value)
    probe = jvm.org.apache.hadoop.fs.Path(f"{root.rstrip('/')}/{PROBE_PREFIX}{uuid.uuid4().hex}")
    content = f"cdc-lakehouse probe {time.time()}".encode()
    filesystem = None
    try:
        filesystem = jvm.org.apache.hadoop.fs.FileSystem.newInstance(probe.toUri(), configuration)
        stream = filesystem.create(probe, True)
        stream.write(bytearray(content))
        stream.close()
        with_content = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(filesystem.open(probe)))
        if with_content != content:
            raise LakeUnreachableError(
                f"lake root {root}: the probe object read back differs from what was written"
            )
        filesystem.delete(probe, False)
    except Py4JJavaError as error:
        raise LakeUnreachableError(explain_lake_error(root, error, configuration)) from None
    finally:
        if filesystem is not None:
            try:
                filesystem.close()
            except Py4JJavaError:
                pass


def explain_lake_error(root: str, error: BaseException, configuration=None) -> str:
    """A message naming the lake URI, what went wrong and what to check, from a (Java) failure.

    `configuration` (the lake's Hadoop settings as a dict, or a Hadoop Configuration) names the S3
    endpoint in the message.
    """
    chain = _java_causes(error)
    text = " | ".join(f"{name}: {message}" for name, message in chain)
    scheme = _scheme(root)
    if "ClassNotFoundException" in text and "S3AFileSystem" in text:
        hint = (
            "the s3a connector is not on the session's classpath: build the session with the lake "
            "(SparkResource.session(lake) or build_spark_session(lake_root=...))"
        )
    elif scheme == "s3a":
        hint = _s3a_hint(root, text, configuration)
    elif scheme == "hdfs":
        hint = _hdfs_hint(root, text)
    elif any(
        word in text
        for word in ("AccessDeniedException", "Permission denied", "ReadOnlyFileSystem", "Mkdirs failed")
    ):
        hint = (
            "this process cannot create or write the folder: check that its parent exists and its permissions"
        )
    else:
        hint = "could not write, read back and delete a probe object there"
    name, message = chain[-1]  # the root cause says most (e.g. ConnectException: Connection refused)
    return f"lake root {root} is not usable: {hint}.\n  cause: {name}: {_first_line(message)}"


# HTTP status 403 as S3 clients print it ("Status Code: 403", "403 Forbidden"), never the digits of a
# port such as 127.0.0.1:25403 or :403.
_HTTP_FORBIDDEN = re.compile(r"(?<![\w.:])403(?!\d)")


def _s3a_hint(root: str, text: str, configuration) -> str:
    bucket = root.split("://", 1)[1].split("/", 1)[0]
    endpoint = _s3a_endpoint(bucket, configuration)
    if any(word in text for word in ("UnknownStoreException", "NoSuchBucket", "does not exist")):
        return (
            f"bucket {bucket!r} does not exist at {endpoint}: create it, or fix the bucket in the lake root "
            "(CDC_LAKE_ROOT)"
        )
    if _HTTP_FORBIDDEN.search(text) or any(
        word in text
        for word in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "NoAuthWithAWSException",
            "No AWS Credentials",
        )
    ):
        return (
            f"the S3 endpoint {endpoint} rejected the credentials: check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (LakeResource s3_access_key / s3_secret_key)"
        )
    if any(
        word in text
        for word in (
            "ConnectException",
            "Connection refused",
            "UnknownHostException",
            "ConnectTimeout",
            "Unable to execute HTTP request",
            "SdkClientException",
            "NoRouteToHost",
            "timed out",
        )
    ):
        return (
            f"cannot connect to the S3 endpoint {endpoint}: check CDC_S3_ENDPOINT (LakeResource s3_endpoint, "
            "fs.s3a.endpoint) and that the server runs and is reachable"
        )
    return f"S3 at {endpoint} refused a probe object in bucket {bucket!r}"


def _s3a_endpoint(bucket: str, configuration) -> str:
    if configuration is not None:
        for key in (f"fs.s3a.bucket.{bucket}.endpoint", "fs.s3a.endpoint"):
            value = configuration.get(key)  # a dict and a Hadoop Configuration both have get(key)
            if value:
                return value
    return "the default AWS endpoint"


def _hdfs_hint(root: str, text: str) -> str:
    parts = urlsplit(root)
    namenode = parts.netloc or "(no NameNode in the URI)"
    if any(
        word in text
        for word in (
            "ConnectException",
            "Connection refused",
            "UnknownHostException",
            "NoRouteToHost",
            "SocketTimeout",
            "ConnectTimeout",
            "timed out",
        )
    ):
        return (
            f"cannot connect to the NameNode {namenode}: check the host and port in the lake root "
            "(CDC_LAKE_ROOT) and that HDFS runs"
        )
    if "SafeModeException" in text:
        return f"the NameNode {namenode} is in safe mode (starting, or short of DataNodes): wait, or check its DataNodes"
    if "AccessControlException" in text or "Permission denied" in text:
        return (
            f"HDFS at {namenode} denies this user write access to {parts.path or '/'}: check its permissions"
        )
    if "could only be written to 0" in text or "replicated to 0 nodes" in text:
        return f"the NameNode {namenode} has no DataNode to store blocks: check that the DataNodes run"
    return f"HDFS at {namenode} refused a probe object"


def _java_causes(error: BaseException) -> list[tuple[str, str]]:
    """(class name, message) of a Java exception and each of its causes; the Python error otherwise.

    py4j raises Py4JJavaError; pyspark turns some of those into its own exceptions, keeping the Java
    one as `_origin`.
    """
    throwable = error.java_exception if isinstance(error, Py4JJavaError) else getattr(error, "_origin", None)
    if throwable is None:
        return [(type(error).__name__, str(error))]
    causes, seen = [], 0
    while throwable is not None and seen < 12:
        causes.append((throwable.getClass().getName(), str(throwable.getMessage() or "")))
        throwable, seen = throwable.getCause(), seen + 1
    return causes


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line[:500]


def check_spark_master(master: str, timeout_seconds: float = 5.0) -> None:
    """For a `spark://host:port[,host:port]` master, require one that accepts connections; others pass.

    A TCP connection proves the address is right and something listens; the session that follows
    finds out if it is not a Spark master.
    """
    if not master.startswith("spark://"):
        return
    addresses = master.removeprefix("spark://").split(",")
    failures = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SparkMasterUnreachableError(f"Spark master {master}: {address!r} is not host:port")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_seconds):
                return
        except OSError as error:
            failures.append(f"{address}: {error.strerror or error}")
    raise SparkMasterUnreachableError(
        f"Spark master {master} is not reachable ({'; '.join(failures)}): check CDC_SPARK_MASTER "
        "(SparkResource.master) and that the master runs (its web UI shows it ALIVE)"
    )
