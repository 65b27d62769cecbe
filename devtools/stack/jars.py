"""Java dependencies from Maven Central, fetched with `mvn` into a cache folder outside git.

`jars/pom.xml` has one profile per consumer (kafka, cassandra, delta). `ensure_jars(profile)` runs
`mvn dependency:copy-dependencies` for that profile once, marks the folder complete, and afterwards
only lists it. The cache folder is `$CDC_JAR_CACHE` or `.cache/jars` at the project root
(resources.spark_session.jar_cache_root: the platform reads it, never fetches).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from resources.spark_session import JARS_COMPLETE_MARK, jar_cache_root

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POM = PROJECT_ROOT / "jars" / "pom.xml"


class JarFetchError(RuntimeError):
    pass


def pom_profiles() -> list[str]:
    """The profile ids of jars/pom.xml, in file order."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ElementTree.parse(POM).getroot()
    return [element.text for element in root.findall("m:profiles/m:profile/m:id", namespace)]


def ensure_jars(profile: str) -> list[Path]:
    """Return the jars of a pom.xml profile, fetching them with mvn the first time."""
    folder = jar_cache_root() / profile
    mark = folder / JARS_COMPLETE_MARK
    if not mark.exists() or mark.read_text().strip() != _pom_digest():
        _fetch(profile, folder)
    return sorted(folder.glob("*.jar"))


def _pom_digest() -> str:
    """A folder is reused only while pom.xml is unchanged, so a version bump refetches."""
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _fetch(profile: str, folder: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("`mvn` is not on PATH: install Maven (Debian package `maven`) to fetch the jars")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        f"-P{profile}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={folder}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise JarFetchError(f"mvn could not fetch the jars of profile {profile!r} ({POM}):\n{tail}")
    (folder / JARS_COMPLETE_MARK).write_text(_pom_digest() + "\n")
