"""transforms.delta_rs.storage_options: delta-rs reaches the lake with the settings Spark's Hadoop
configuration holds (LakeResource.hadoop_settings), so both engines use one configuration."""

from __future__ import annotations

from transforms.delta_rs import quote, storage_options


def test_a_local_path_and_hdfs_need_no_options():
    assert storage_options("/tmp/lake/gold/customer", {}.get) == {}
    assert storage_options("hdfs://127.0.0.1:9000/lake/gold/customer", {}.get) == {}


def test_an_s3a_bucket_takes_its_own_settings_before_the_general_ones():
    hadoop = {
        "fs.s3a.bucket.lake.endpoint": "http://127.0.0.1:9100",
        "fs.s3a.bucket.lake.path.style.access": "true",
        "fs.s3a.bucket.lake.access.key": "bucket-key",
        "fs.s3a.bucket.lake.secret.key": "bucket-secret",
        "fs.s3a.access.key": "general-key",
        "fs.s3a.secret.key": "general-secret",
        "fs.s3a.session.token": "general-token",
        "fs.s3a.endpoint.region": "eu-west-1",
    }
    assert storage_options("s3a://lake/cdc/gold/customer", hadoop.get) == {
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9100",
        "AWS_ALLOW_HTTP": "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bucket-key",
        "AWS_SECRET_ACCESS_KEY": "bucket-secret",
        "AWS_SESSION_TOKEN": "general-token",
    }


def test_an_endpoint_without_a_scheme_follows_the_ssl_setting_and_the_region_has_a_default():
    plain = {"fs.s3a.endpoint": "s3.example.com:9000", "fs.s3a.connection.ssl.enabled": "false"}
    assert storage_options("s3a://b/t", plain.get) == {
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        "AWS_ENDPOINT_URL": "http://s3.example.com:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
    }
    secure = {"fs.s3a.endpoint": "s3.example.com"}
    assert storage_options("s3a://b/t", secure.get)["AWS_ENDPOINT_URL"] == "https://s3.example.com"
    assert storage_options("s3a://b/t", secure.get)["AWS_ALLOW_HTTP"] == "false"


def test_quoted_names_keep_case_spaces_and_quotes():
    assert quote("CUSTOMER_ID") == '"CUSTOMER_ID"'
    assert quote('odd "name" here') == '"odd ""name"" here"'
