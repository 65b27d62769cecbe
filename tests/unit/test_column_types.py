"""Typed columns (transforms/decoders/column_types.py, decode_for_spec): every shape the CDC tools write
for a typed column becomes the one canonical text Spark's cast reads exactly, and a value matching no
accepted shape is refused with the column, the value and the accepted shapes (never a silent NULL)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assets.table_spec import load_table_spec
from assets.yaml_loader import SpecError
from transforms.changes import DecodeError, KafkaMessage, Op
from transforms.decoders import decode, decode_for_spec
from transforms.decoders.column_types import TIMESTAMP_SHAPES, Refused, site_pattern, typed_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORACLE_SAMPLE = FIXTURES / "messages" / "goldengate" / "oracle_doc_qasource_tcustord.jsonl"
ORACLE_SPEC = FIXTURES / "specs" / "qasource_tcustord.yaml"


def refused(value: str, type_name: str, pattern: str | None = None, *, key: bool = False) -> str:
    with pytest.raises(Refused) as caught:
        typed_value(value, type_name, site_pattern(pattern) if pattern else None, key=key)
    return str(caught.value)


# --- timestamp ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        # GoldenGate DATE: a colon (its default form), a space or a T between date and time
        ("1994-09-30:15:33:00", "1994-09-30 15:33:00"),
        ("1994-09-30 15:33:00", "1994-09-30 15:33:00"),
        ("1994-09-30T15:33:00", "1994-09-30 15:33:00"),
        # TIMESTAMP(n): 0 to 9 fraction digits, in every separator form
        ("2015-11-05:18:45:36.1", "2015-11-05 18:45:36.100000"),
        ("2015-11-05 18:45:36.123", "2015-11-05 18:45:36.123000"),
        ("2015-11-05T18:45:36.123456", "2015-11-05 18:45:36.123456"),
        ("2015-11-05 18:45:36.000000", "2015-11-05 18:45:36"),
        # digits 7-9 do not fit a Delta timestamp (microseconds): truncated, never rounded up
        ("2015-11-05:18:45:36.123456789", "2015-11-05 18:45:36.123456"),
        ("2015-11-05:18:45:36.999999999", "2015-11-05 18:45:36.999999"),
        ("2015-11-05 18:45:36.1234567", "2015-11-05 18:45:36.123456"),
        # a date alone is that day's midnight
        ("1994-09-30", "1994-09-30 00:00:00"),
        # TIMESTAMP WITH TIME ZONE: converted to the UTC wall-clock time
        ("2015-11-05:18:45:36.123456789 -07:00", "2015-11-06 01:45:36.123456"),
        ("2015-11-05 18:45:36.123456 +01:00", "2015-11-05 17:45:36.123456"),
        ("2015-11-05 18:45:36+0530", "2015-11-05 13:15:36"),
        ("2015-11-05 18:45:36 +01", "2015-11-05 17:45:36"),
        ("2015-11-05 18:45:36 UTC", "2015-11-05 18:45:36"),
        ("2015-11-05 18:45:36.5 Europe/Berlin", "2015-11-05 17:45:36.500000"),  # CET, +01:00
        ("2015-07-05 18:45:36 Europe/Berlin", "2015-07-05 16:45:36"),  # CEST, +02:00
        ("2015-11-05 18:45:36 US/Pacific", "2015-11-06 02:45:36"),
        # Debezium's schemaless ISO forms (ZonedTimestamp) and its typed output stay as they were read
        ("2024-12-17T15:23:37.618Z", "2024-12-17 15:23:37.618000"),
        ("2024-03-05T14:02:10.5+01:00", "2024-03-05 13:02:10.500000"),
        ("2024-03-05 14:02:10", "2024-03-05 14:02:10"),
        ("2024-03-05 14:02:10.000123", "2024-03-05 14:02:10.000123"),
    ],
)
def test_every_timestamp_shape_becomes_the_canonical_utc_text(value, canonical):
    assert typed_value(value, "timestamp") == canonical


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1994-09-30 15:33", "matches no accepted shape"),
        ("30-09-1994 15:33:00", "matches no accepted shape"),
        ("1994-09-30  15:33:00", "matches no accepted shape"),
        ("1994-09-30:15:33:00.1234567890", "matches no accepted shape"),  # 10 fraction digits
        ("1709647330000", "matches no accepted shape"),  # epoch ms: Debezium without its schema
        ("1994-09-31:15:33:00", "is not a valid date and time (day is out of range for month)"),
        ("1994-09-30:24:00:00", "is not a valid date and time"),
        ("2015-11-05 18:45:36 +19:00", "has a zone offset +19:00 out of range"),
        ("2015-11-05 18:45:36 Mars/Olympus_Mons", "names an unknown time zone 'Mars/Olympus_Mons'"),
    ],
)
def test_a_timestamp_in_no_accepted_shape_is_refused_saying_why_and_what_is_accepted(value, why):
    message = refused(value, "timestamp")
    assert message.startswith(f"{value!r} {why}")
    assert message.endswith(f"Accepted for timestamp: {TIMESTAMP_SHAPES}")
    assert TIMESTAMP_SHAPES.startswith("YYYY-MM-DD[ T:]HH:MI:SS[.f{1,9}][zone] or YYYY-MM-DD (zone: Z, UTC,")


def test_a_key_timestamp_refuses_nanoseconds_it_would_have_to_drop_but_keeps_zero_ones():
    assert "declare the key column string" in refused("2015-11-05:18:45:36.123456789", "timestamp", key=True)
    assert typed_value("2015-11-05:18:45:36.123456000", "timestamp", key=True) == "2015-11-05 18:45:36.123456"


# --- date -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1994-09-30",
        "1994-09-30:00:00:00",  # an Oracle DATE at midnight, GoldenGate's default form
        "1994-09-30 00:00:00",
        "1994-09-30T00:00:00.000000000",
        "1994-09-30T00:00:00Z",
        "1994-09-30 02:00:00 +02:00",  # midnight UTC
    ],
)
def test_a_date_column_takes_a_date_or_a_date_time_at_midnight(value):
    assert typed_value(value, "date") == "1994-09-30"


def test_a_date_column_refuses_a_time_of_day_it_would_drop():
    assert refused("1994-09-30:15:33:00", "date").startswith(
        "'1994-09-30:15:33:00' has a time of day (15:33:00) a date column cannot hold; declare the column timestamp."
    )
    assert "a date column cannot hold" in refused("1994-09-30 00:00:00.000000001", "date")
    assert "matches no accepted shape" in refused("30.09.1994", "date")


# --- numbers and booleans -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name", "canonical"),
    [
        ("144", "long", "144"),  # a JSON number (as the decoders write it)
        ("600", "int", "600"),  # treatAllColumnsAsStrings: a digit string
        ("-3", "int", "-3"),
        ("+7", "long", "7"),
        ("007", "long", "7"),
        ("1E+2", "long", "100"),  # digit text with an exponent
        ("1.5e3", "int", "1500"),
        ("17520.00", "long", "17520"),  # integral: nothing lost
        ("2147483647", "int", "2147483647"),
        ("-9223372036854775808", "long", "-9223372036854775808"),
        ("17520.00", "decimal(8,2)", "17520.00"),
        ("17520", "decimal(8,2)", "17520.00"),
        ("135000.00", "decimal(22,7)", "135000.0000000"),
        ("1.5E+3", "decimal(8,2)", "1500.00"),
        ("0.1", "decimal(8,2)", "0.10"),
        ("-0.50000", "decimal(8,2)", "-0.50"),
        ("-0.0", "decimal(8,2)", "0.00"),
        (
            "123456789012345678901234567890.12345678",
            "decimal(38,8)",
            "123456789012345678901234567890.12345678",
        ),
        ("1.5e3", "double", "1500.0"),
        ("0.1", "double", "0.1"),
        ("3.140000104904175", "double", "3.140000104904175"),
        ("NaN", "double", "NaN"),
        ("Infinity", "double", "Infinity"),
        ("-Infinity", "double", "-Infinity"),
    ],
)
def test_numbers_as_json_numbers_or_digit_strings_become_exact_canonical_text(value, type_name, canonical):
    assert typed_value(value, type_name) == canonical


@pytest.mark.parametrize(
    ("value", "type_name", "why"),
    [
        ("1.5", "long", "has a fraction; an integer column (long) cannot hold it"),
        ("2147483648", "int", "is out of the int range [-2147483648, 2147483647]"),
        ("9223372036854775808", "long", "is out of the long range"),
        ("1.234", "decimal(8,2)", "has more than 2 fraction digits; decimal(8,2) would round it"),
        ("1234567.00", "decimal(8,2)", "has more than 6 integer digits; decimal(8,2) cannot hold it"),
        ("1E+400", "double", "is beyond the double range"),
        ("12 345", "long", "is not a number"),
        (" 12", "long", "is not a number"),
        ("", "decimal(8,2)", "is not a number"),
        ("AukO3QA=", "decimal(22,7)", "is not a number"),  # a Debezium Decimal without its schema
        ("1E+5000", "decimal(8,2)", "has an exponent beyond ±1000"),
        ("1" * 1001, "decimal(8,2)", "has more than 1000 characters"),
    ],
)
def test_a_number_the_type_cannot_hold_exactly_is_refused(value, type_name, why):
    assert why in refused(value, type_name)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("true", "true"),
        ("false", "false"),
        ("Y", "true"),
        ("n", "false"),
        ("1", "true"),
        ("0", "false"),
        ("YES", "true"),
        ("no", "false"),
        ("T", "true"),
        ("f", "false"),
    ],
)
def test_booleans(value, canonical):
    assert typed_value(value, "boolean") == canonical


def test_a_non_boolean_is_refused_and_strings_and_nulls_are_never_touched():
    assert refused("maybe", "boolean").startswith("'maybe' is not a boolean. Accepted for boolean:")
    assert typed_value("1994-09-30:15:33:00", "string") == "1994-09-30:15:33:00"
    assert typed_value(None, "timestamp") is None


def test_a_long_refused_value_is_shortened_in_the_reason():
    message = refused("x" * 500, "long")
    assert message.startswith("'" + "x" * 80 + "...' is not a number")


# --- a site's pattern (gg.format.timestamp) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "canonical"),
    [
        ("yyyy-MM-dd HH:mm:ss.SSS", "2024-01-02 03:04:05.123", "2024-01-02 03:04:05.123000"),
        ("yyyy-MM-dd HH:mm:ss.SSSSSSSSS", "2024-01-02 03:04:05.123456789", "2024-01-02 03:04:05.123456"),
        ("dd/MM/yyyy hh:mm:ss a", "02/01/2024 03:04:05 PM", "2024-01-02 15:04:05"),
        ("dd/MM/yyyy hh:mm:ss a", "02/01/2024 12:04:05 AM", "2024-01-02 00:04:05"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", "2024-01-02T03:04:05.000001+02:00", "2024-01-02 01:04:05.000001"),
        ("yyyy-MM-dd'T'HH:mm:ssX", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05"),
        ("yyyyMMddHHmmss", "20240102030405", "2024-01-02 03:04:05"),
        ("d.M.yyyy H:mm", "2.1.2024 3:04", "2024-01-02 03:04:00"),
        ("yyyy-MM-dd HH:mm:ss VV", "2024-01-02 03:04:05 Europe/Berlin", "2024-01-02 02:04:05"),
        ("yyyy-MM-dd 'at' HH:mm:ss ''Z''", "2024-01-02 at 03:04:05 '+0100'", "2024-01-02 02:04:05"),
    ],
)
def test_a_site_pattern_reads_its_values(pattern, value, canonical):
    assert typed_value(value, "timestamp", site_pattern(pattern)) == canonical


def test_with_a_site_pattern_only_that_pattern_is_accepted_for_dates_and_timestamps():
    pattern = "yyyy-MM-dd HH:mm:ss.SSS"
    message = refused("2024-01-02:03:04:05.123", "timestamp", pattern)
    assert message == (
        "'2024-01-02:03:04:05.123' matches no accepted shape. "
        "Accepted for timestamp: the site pattern 'yyyy-MM-dd HH:mm:ss.SSS'"
    )
    assert "matches no accepted shape" in refused("2024-01-02 03:04:05", "timestamp", pattern)
    assert typed_value("2024-01-02 00:00:00.000", "date", site_pattern(pattern)) == "2024-01-02"
    assert "at midnight" in refused("2024-01-02", "date", pattern)
    assert typed_value("1E+2", "long", site_pattern(pattern)) == "100"  # numbers are not affected


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("yy-MM-dd HH:mm:ss", "'yy' is not supported"),
        ("yyyy-MMM-dd", "'MMM' is not supported"),
        ("EEE yyyy-MM-dd", "'EEE' is not supported"),
        ("yyyy-MM-dd 'T HH:mm", "unclosed quote at character 12"),
        ("HH:mm:ss", "needs the year, month, day"),
        ("yyyy-MM-dd hh:mm:ss", "hh (1-12) needs a (AM/PM)"),
        ("yyyy-MM-dd HH:mm:ss.SSSSSSSSSS", "at most 9 fraction digits"),
        ("yyyy-MM-dd HH:mm:ss HH", "'HH' repeats a field"),
    ],
)
def test_an_unsupported_site_pattern_says_what_is_wrong(pattern, why):
    with pytest.raises(ValueError, match="pattern") as caught:
        site_pattern(pattern)
    assert why in str(caught.value)


SPEC = "table: T.X\ntopic: t.X\nformat: goldengate_json\nkeys: [ID]\n"


def spec_from(folder: Path, text: str, name: str = "spec.yaml"):
    path = folder / name
    path.write_text(text)
    return load_table_spec(path)


def test_the_site_pattern_is_a_spec_setting_checked_when_the_spec_loads(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SPEC + "timestamp_format: yyyy-MM-dd HH:mm:ss.SSS\ncolumns: {AT: timestamp}\n")
    assert load_table_spec(good).timestamp_format == "yyyy-MM-dd HH:mm:ss.SSS"
    assert spec_from(tmp_path, SPEC).timestamp_format is None  # GoldenGate's default shapes

    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC + "columns: {AT: timestamp}\ntimestamp_format: yy-MM-dd\n")
    with pytest.raises(SpecError) as caught:
        load_table_spec(bad)
    assert str(caught.value).startswith(
        f"{bad}:6: timestamp_format: pattern 'yy-MM-dd': 'yy' is not supported"
    )

    debezium = tmp_path / "debezium.yaml"
    debezium.write_text(SPEC.replace("goldengate_json", "debezium_json") + "timestamp_format: yyyy-MM-dd\n")
    with pytest.raises(SpecError) as caught:
        load_table_spec(debezium)
    assert f"{debezium}:5: timestamp_format: is GoldenGate's gg.format.timestamp" in str(caught.value)


# --- through the decoder: decode_for_spec ------------------------------------------------------------


def message(value: str | bytes, offset: int = 0, key: bytes | None = None) -> KafkaMessage:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return KafkaMessage(topic="t", partition=0, offset=offset, key=key, value=raw)


def oracle_sample() -> list[str]:
    return ORACLE_SAMPLE.read_text().splitlines()


def test_oracles_sample_with_typed_columns_decodes_every_value_typed_key_included():
    spec = load_table_spec(ORACLE_SPEC)
    insert, update, delete, truncate = (
        decode_for_spec(message(line, n), spec) for n, line in enumerate(oracle_sample())
    )

    (record,) = insert
    assert record.key == {
        "CUST_CODE": "WILL",
        "ORDER_DATE": "1994-09-30 15:33:00",
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": "144",
    }
    assert record.after == {
        "CUST_CODE": "WILL",
        "ORDER_DATE": "1994-09-30 15:33:00",
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": "144",
        "PRODUCT_PRICE": "17520.00",
        "PRODUCT_AMOUNT": "3",
        "TRANSACTION_ID": "100",
    }
    (record,) = update
    assert record.op is Op.UPDATE and record.old_key is None
    assert record.key["ORDER_DATE"] == "1995-12-31 15:00:00"
    assert record.after == {
        "CUST_CODE": "BILL",
        "ORDER_DATE": "1995-12-31 15:00:00",
        "PRODUCT_CODE": "CAR",
        "ORDER_ID": "765",
        "PRODUCT_PRICE": "14000.00",
    }
    assert (
        record.before["ORDER_DATE"] == "1995-12-31 15:00:00" and record.before["PRODUCT_PRICE"] == "15000.00"
    )
    (record,) = delete
    assert record.key == {
        "CUST_CODE": "DAVE",
        "ORDER_DATE": "1993-11-03 07:51:35",
        "PRODUCT_CODE": "PLANE",
        "ORDER_ID": "600",
    }
    assert record.before["PRODUCT_PRICE"] == "135000.00" and record.after is None
    (record,) = truncate
    assert record.op is Op.TRUNCATE and record.key == {}


def test_without_typed_columns_decode_for_spec_is_decode():
    spec = load_table_spec(ORACLE_SPEC).model_copy(update={"columns": {}})
    for n, line in enumerate(oracle_sample()):
        assert decode_for_spec(message(line, n), spec) == decode(
            message(line, n), format="goldengate_json", keys=spec.keys
        )


def test_a_value_in_no_accepted_shape_refuses_the_message_naming_column_value_and_shapes():
    spec = load_table_spec(ORACLE_SPEC)
    bad = oracle_sample()[0].replace('"1994-09-30:15:33:00"', '"1994-09-31:15:33:00"')
    with pytest.raises(DecodeError) as caught:
        decode_for_spec(message(bad), spec)
    assert str(caught.value) == (
        "GoldenGate message: `after` column ORDER_DATE: '1994-09-31:15:33:00' is not a valid date and time "
        f"(day is out of range for month). Accepted for timestamp: {TIMESTAMP_SHAPES}"
    )
    price = oracle_sample()[0].replace("17520.00", "17520.005")
    with pytest.raises(
        DecodeError, match=r"`after` column PRODUCT_PRICE: '17520.005' has more than 2 fraction"
    ):
        decode_for_spec(message(price), spec)
    before = oracle_sample()[1].replace('"PRODUCT_AMOUNT":3', '"PRODUCT_AMOUNT":"three"')
    with pytest.raises(DecodeError, match=r"`before` column PRODUCT_AMOUNT: 'three' is not a number"):
        decode_for_spec(message(before), spec)


def test_a_transaction_mode_message_says_which_change_was_refused():
    spec = load_table_spec(ORACLE_SPEC)
    first, second = (
        oracle_sample()[0],
        oracle_sample()[2].replace("1993-11-03:07:51:35", "1993-11-03 7:51:35"),
    )
    with pytest.raises(
        DecodeError, match=r"^GoldenGate message \(change 2 of 2\): `before` column ORDER_DATE"
    ):
        decode_for_spec(message(first + second), spec)


def test_changes_of_another_table_on_the_topic_are_left_to_the_caller_untyped():
    spec = load_table_spec(ORACLE_SPEC)
    other = (
        oracle_sample()[0]
        .replace("QASOURCE.TCUSTORD", "QASOURCE.OTHER")
        .replace("17520.00", '"not typed here"')
    )
    (record,) = decode_for_spec(message(other), spec)
    assert record.table == "QASOURCE.OTHER" and record.after["ORDER_DATE"] == "1994-09-30:15:33:00"


DATE_KEYED = (
    SPEC.replace("keys: [ID]", "keys: [DAY, SHOP]")
    + "columns: {DAY: date, SHOP: int, SOLD: long, AT: timestamp}\n"
)


def test_a_table_keyed_by_a_date_gets_one_key_whatever_shape_the_date_arrives_in(tmp_path):
    spec = spec_from(tmp_path, DATE_KEYED)
    keys = set()
    for n, day in enumerate(
        ["2024-01-02:00:00:00", "2024-01-02 00:00:00", "2024-01-02T00:00:00.000000", "2024-01-02"]
    ):
        value = json.dumps(
            {
                "table": "T.X",
                "op_type": "U",
                "op_ts": "2024-01-02 10:00:00.000000",
                "pos": str(n),
                "before": {"DAY": day, "SHOP": 7},
                "after": {"DAY": day, "SHOP": "7", "SOLD": n},
            }
        )
        (record,) = decode_for_spec(message(value, n), spec)
        assert record.old_key is None  # the same key before and after, whatever the shape
        keys.add(json.dumps(record.key, sort_keys=True))
    assert keys == {'{"DAY": "2024-01-02", "SHOP": "7"}'}

    late = json.dumps(
        {
            "table": "T.X",
            "op_type": "I",
            "op_ts": "2024-01-02 10:00:00.000000",
            "pos": "9",
            "after": {"DAY": "2024-01-02:10:00:00", "SHOP": 7},
        }
    )
    with pytest.raises(DecodeError, match=r"`after` column DAY: '2024-01-02:10:00:00' has a time of day"):
        decode_for_spec(message(late), spec)


def test_debezium_values_keep_converting_iso_strings_and_schema_typed_values(tmp_path):
    """Schemaless Debezium Oracle (ZonedTimestamp ISO strings) and a Postgres event with its schema."""
    oracle = (FIXTURES / "messages" / "debezium" / "seatunnel_debezium_oracle.json").read_bytes()
    spec_text = "table: QA_SOURCE.ALL_TYPES1\ntopic: t\nformat: debezium_json\nkeys: [F1]\n"
    spec = spec_from(
        tmp_path, spec_text + "columns: {F1: long, F30: timestamp, F31: timestamp, F11: 'decimal(10,2)'}\n"
    )
    (record,) = decode_for_spec(message(oracle), spec)
    assert (record.after["F1"], record.after["F30"], record.after["F31"], record.after["F11"]) == (
        "1",
        "2024-12-17 15:23:37.618000",
        "2024-12-17 15:23:38.790000",
        "1.00",
    )
    epoch = spec_from(tmp_path, spec_text + "columns: {F27: timestamp}\n")
    with pytest.raises(
        DecodeError, match=r"^Debezium message: `after` column F27: '1734449012000' matches no"
    ):
        decode_for_spec(message(oracle), epoch)

    postgres = (
        FIXTURES / "messages" / "debezium" / "postgres_schema_decimal_microtimestamp.json"
    ).read_bytes()
    plain = decode(message(postgres), format="debezium_json", keys=["id"])
    spec_text = "table: public.transactions\ntopic: t\nformat: debezium_json\nkeys: [id]\n"
    typed = decode_for_spec(
        message(postgres),
        spec_from(
            tmp_path, spec_text + "columns: {id: int, amount: 'decimal(10,2)', created_at: timestamp}\n"
        ),
    )
    assert typed == plain  # already canonical: the schema gave exact decimals and timestamps


# --- properties: any moment in any shape, any decimal that fits ------------------------------------


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    separator=st.sampled_from([" ", "T", ":"]),
    nanos=st.integers(0, 999),
    digits=st.integers(0, 9),
)
def test_any_moment_written_in_any_shape_reads_back_as_its_microseconds(moment, separator, nanos, digits):
    fraction = f"{moment.microsecond:06d}{nanos:03d}"[:digits]
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    text = f"{day}{separator}{moment:%H:%M:%S}" + (f".{fraction}" if digits else "")
    expected = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")) if digits else 0)
    assert typed_value(text, "timestamp") == expected.isoformat(sep=" ")


@given(
    unscaled=st.integers(-(10**18) + 1, 10**18 - 1),
    scale=st.integers(0, 10),
    extra_zeros=st.integers(0, 3),
    exponent_form=st.booleans(),
)
def test_any_decimal_that_fits_reads_back_exactly(unscaled, scale, extra_zeros, exponent_form):
    value = Decimal(unscaled).scaleb(-scale)
    text = format(value, "E") if exponent_form else format(value, "f") + ("0" * extra_zeros if scale else "")
    canonical = typed_value(text, f"decimal(28,{scale})")
    assert Decimal(canonical) == value and canonical == format(value.quantize(Decimal(1).scaleb(-scale)), "f")
