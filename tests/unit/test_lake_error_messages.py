"""How a lake failure's text becomes the hint a user reads (no server, no Spark: a Python error stands
for the Java cause chain, whose class names and messages are what the hint is chosen from)."""

from __future__ import annotations

import pytest

from resources.lake_check import explain_lake_error

ROOT = "s3a://lake-bucket/lake"


def _s3_message(error_text: str, endpoint: str) -> str:
    return explain_lake_error(ROOT, RuntimeError(error_text), {"fs.s3a.endpoint": endpoint})


@pytest.mark.parametrize("port", [25403, 4030, 9000])
def test_a_refused_connection_names_the_endpoint_whatever_digits_its_port_has(port):
    endpoint = f"http://127.0.0.1:{port}"
    text = (
        "doesBucketExist on lake-bucket: software.amazon.awssdk.core.exception.SdkClientException: "
        f"Unable to execute HTTP request: Connect to 127.0.0.1:{port} [/127.0.0.1] failed: Connection refused"
    )

    message = _s3_message(text, endpoint)

    assert f"cannot connect to the S3 endpoint {endpoint}" in message
    assert "rejected the credentials" not in message


@pytest.mark.parametrize(
    "status_text",
    [
        "Forbidden (Service: S3, Status Code: 403, Request ID: 1)",
        "getFileStatus on s3a://lake-bucket/lake: 403 Forbidden",
    ],
)
def test_an_http_403_from_the_endpoint_is_reported_as_rejected_credentials(status_text):
    endpoint = "http://127.0.0.1:25403"

    message = _s3_message(status_text, endpoint)

    assert f"the S3 endpoint {endpoint} rejected the credentials" in message
    assert "AWS_SECRET_ACCESS_KEY" in message
