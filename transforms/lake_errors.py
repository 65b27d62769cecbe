"""A write to a lake table that fails for a reason outside the data says so in one line.

Spark and Delta report a full disk, a folder the process may not write, or an HDFS without a live
DataNode as a long Java stack trace (a task failure wrapping a Hadoop IOException) that names neither
the table nor the cause plainly. `writes_table(layer, path_parameter)` wraps each layer's write
(bronze ingest, silver apply, gold refresh): such a failure becomes a `LakeWriteError` naming the
table's path and the cause, e.g.

    writing silver table at /lake/silver/s_contact failed: the disk is full (No space left on device)
      cause: java.io.IOException: No space left on device

chained to the original error. Any other failure passes unchanged. `classify` is the pure part.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

DISK_FULL = "the disk is full (No space left on device)"
PERMISSION_DENIED = "this process may not write there (permission denied: check the folder's permissions)"
NO_DATANODE = "HDFS has no live DataNode to write or read the table's blocks (check that the DataNodes run)"

# (reason, words any of which in the failure's text means it), first match wins
_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (DISK_FULL, ("No space left on device", "DSQuotaExceededException", "Disk quota exceeded")),
    (
        NO_DATANODE,
        (
            "could only be written to 0 of the",
            "There are 0 datanode(s) running",
            "replicated to 0 nodes",
            "BlockMissingException",
            "Could not obtain block",
            "All datanodes",  # "All datanodes [...] are bad. Aborting..."
        ),
    ),
    (
        PERMISSION_DENIED,
        (
            "Operation not permitted",
            "Permission denied",
            "AccessDeniedException",
            "AccessControlException",
            "Read-only file system",
        ),
    ),
)


class LakeWriteError(RuntimeError):
    """A lake table could not be written for a reason outside the data; the message names the table's
    path and the cause (the original error is its __cause__)."""


def classify(causes: Sequence[tuple[str, str]]) -> str | None:
    """The plain reason of a failure given as (class name, message) of the error and each of its causes,
    or None when it is none of the known storage failures."""
    text = "\n".join(f"{name}: {message}" for name, message in causes)
    for reason, words in _REASONS:
        if any(word in text for word in words):
            return reason
    return None


def describe(layer: str, path: str, reason: str, causes: Sequence[tuple[str, str]]) -> str:
    """`writing <layer> table at <path> failed: <reason>`, then the line of the cause that says it."""
    words = next(words for known, words in _REASONS if known == reason)
    lines = [
        f"{name}: {line.strip()}"
        for name, message in causes
        for line in (message or "").splitlines()
        if any(word in line for word in words)
    ]
    shown = lines[-1] if lines else f"{causes[-1][0]}: {_first_line(causes[-1][1])}"
    return f"writing {layer} table at {path} failed: {reason}\n  cause: {shown[:500]}"


def java_causes(error: BaseException) -> list[tuple[str, str]]:
    """(class name, message) of a Java exception and each of its causes (a py4j Py4JJavaError, or a
    pyspark exception keeping the Java one as `_origin`); of the Python error and its causes otherwise."""
    throwable = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes: list[tuple[str, str]] = []
    if throwable is not None:
        while throwable is not None and len(causes) < 12:
            causes.append((throwable.getClass().getName(), str(throwable.getMessage() or "")))
            throwable = throwable.getCause()
        return causes
    current: BaseException | None = error
    while current is not None and len(causes) < 12:
        causes.append((type(current).__name__, str(current)))
        current = current.__cause__
    return causes


@contextmanager
def lake_write(layer: str, path: str) -> Iterator[None]:
    """Turn a storage failure raised inside into a LakeWriteError naming `path`; others pass unchanged."""
    try:
        yield
    except LakeWriteError:
        raise
    except Exception as error:
        causes = java_causes(error)
        reason = classify(causes)
        if reason is None:
            raise
        raise LakeWriteError(describe(layer, path, reason, causes)) from error


F = TypeVar("F", bound=Callable)


def writes_table(layer: str, path_parameter: str) -> Callable[[F], F]:
    """Decorate a function that writes the `layer` table whose path is its argument `path_parameter`:
    its storage failures become LakeWriteErrors (see lake_write)."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            path = signature.bind(*args, **kwargs).arguments[path_parameter]
            with lake_write(layer, str(path)):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _first_line(message: str) -> str:
    stripped = (message or "").strip()
    return stripped.splitlines()[0] if stripped else ""
