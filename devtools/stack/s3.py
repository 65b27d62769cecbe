"""A local S3 server: s3proxy (Apache 2.0) on 127.0.0.1, storing objects as files.

s3proxy's `filesystem-nio2` backend keeps each bucket as a folder of `<home>/data`, so what Spark
writes through s3a can be looked at with `ls`. The server checks request signatures against one
identity (access key) and credential (secret key): `$CDC_S3_LOCAL_ACCESS_KEY` and
`$CDC_S3_LOCAL_SECRET_KEY`, else the defaults below. The bucket `lake` exists from the start;
`create_bucket` makes more.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from devtools.stack.jars import ensure_jars
from devtools.stack.ports import HOST, accepts_connections
from devtools.stack.server import SERVER_JIT_OPTIONS, Server, java_executable

DEFAULT_BUCKET = "lake"
LOCAL_ACCESS_KEY = "cdc-local"
LOCAL_SECRET_KEY = "cdc-local-secret"
# s3a signs with SigV4 and needs a region name; s3proxy accepts any.
LOCAL_REGION = "us-east-1"

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class S3RequestError(RuntimeError):
    def __init__(self, status: int, body: str, what: str):
        super().__init__(f"{what}: HTTP {status} {body[:300]}")
        self.status = status


def local_credentials() -> tuple[str, str]:
    """The access and secret key the local server accepts (environment, else the defaults)."""
    return (
        os.environ.get("CDC_S3_LOCAL_ACCESS_KEY") or LOCAL_ACCESS_KEY,
        os.environ.get("CDC_S3_LOCAL_SECRET_KEY") or LOCAL_SECRET_KEY,
    )


class S3Server(Server):
    name = "s3"
    stop_grace_seconds = 15.0

    def __init__(
        self,
        home: Path,
        log_path: Path,
        port: int,
        access_key: str = LOCAL_ACCESS_KEY,
        secret_key: str = LOCAL_SECRET_KEY,
    ):
        super().__init__(home, log_path)
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """One folder per bucket."""
        return self.home / "data"

    @property
    def properties_path(self) -> Path:
        return self.home / "s3proxy.properties"

    def ports(self) -> dict[str, int]:
        return {"http": self.port}

    def properties(self) -> dict[str, str]:
        return {
            "s3proxy.endpoint": self.endpoint,
            # s3a signs with V4; `check` below signs with the simpler V2.
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": self.access_key,
            "s3proxy.credential": self.secret_key,
            "jclouds.provider": "filesystem-nio2",
            "jclouds.filesystem.basedir": str(self.data_dir),
        }

    def prepare(self) -> None:
        # the lake it serves is read through s3a: its jars (hadoop-aws, the AWS SDK bundle, ~690 MB)
        # are fetched with the server's, since the platform itself only reads the jar folder
        ensure_jars("s3a")
        (self.data_dir / DEFAULT_BUCKET).mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        jar = next((jar for jar in ensure_jars("s3proxy") if jar.name.startswith("s3proxy-")), None)
        if jar is None:
            raise RuntimeError("the s3proxy profile of jars/pom.xml fetched no s3proxy-*.jar")
        return [
            java_executable(),
            "-Xms64m",
            "-Xmx256m",
            "-XX:+ExitOnOutOfMemoryError",
            *SERVER_JIT_OPTIONS,
            "-jar",
            str(jar),
            "--properties",
            str(self.properties_path),
        ]

    def check(self, timeout: float) -> str:
        if not accepts_connections(self.port):
            raise ConnectionError(f"nothing accepts connections on {self.endpoint}")
        buckets = self.list_buckets(timeout)
        return f"{len(buckets)} buckets ({', '.join(buckets)})"

    # -- a minimal signed client (enough for the health check and test set-up) -------------------

    def list_buckets(self, timeout: float = 10.0) -> list[str]:
        body = self._request("GET", "/", timeout, "listing buckets")
        return re.findall(r"<Bucket><Name>([^<]+)</Name>", body)

    def create_bucket(self, bucket: str, timeout: float = 10.0) -> None:
        if not _BUCKET_NAME.match(bucket):
            raise ValueError(f"{bucket!r} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')")
        self._request("PUT", f"/{bucket}", timeout, f"creating bucket {bucket}")

    def _request(self, method: str, path: str, timeout: float, what: str) -> str:
        """One request signed with AWS signature version 2 (s3proxy accepts it; s3a uses V4)."""
        date = email.utils.formatdate(usegmt=True)
        string_to_sign = f"{method}\n\n\n{date}\n{path}"
        digest = hmac.new(self.secret_key.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        headers = {
            "Date": date,
            "Authorization": f"AWS {self.access_key}:{base64.b64encode(digest).decode()}",
        }
        request = urllib.request.Request(self.endpoint + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            raise S3RequestError(
                error.code, error.read().decode(errors="replace"), f"{what} at {self.endpoint}"
            ) from None
