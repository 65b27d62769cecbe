"""Value canonicalization and JSON reading shared by the decoders (transforms/decoders/values.py,
json_documents.py): exact decimals, strings untouched, timestamps without rounding, precise errors."""

from __future__ import annotations

import base64
import sys
from datetime import datetime

import pytest

from transforms.changes import DecodeError
from transforms.decoders.json_documents import documents, single_document
from transforms.decoders.values import (
    MAX_NESTING,
    canonical_value,
    date_text_from_days,
    datetime_from_epoch_ms,
    decimal_text_from_base64,
    parse_source_timestamp,
    time_text_from_count,
    timestamp_text_from_epoch,
)


def value_of(json_text: str) -> str | None:
    """Canonical text of the JSON value `json_text`, read the way the decoders read Kafka values."""
    return canonical_value(single_document(json_text.encode("utf-8")))


# --- numbers are exact decimals, never floats --------------------------------------------------------


@pytest.mark.parametrize(
    ("json_number", "expected"),
    [
        ("17520.00", "17520.00"),  # trailing zeros (the scale) survive
        ("135000.00", "135000.00"),
        ("144", "144"),
        ("-3", "-3"),
        ("0.1", "0.1"),  # a float would print 0.1 too, but see the next cases
        ("3.140000104904175", "3.140000104904175"),
        ("0.10000000149011612", "0.10000000149011612"),
        ("1E+2", "100"),  # exponent notation expanded to plain digits
        ("1.50e2", "150"),
        ("1e-8", "0.00000001"),
        ("-0.0", "-0.0"),
    ],
)
def test_numbers_keep_their_exact_decimal_text(json_number, expected):
    assert value_of(json_number) == expected


def test_numbers_of_more_than_forty_digits_keep_every_digit():
    integer = "1234567890123456789012345678901234567890123456789"  # 49 digits, beyond int64 and double
    fraction = "98765432109876543210987654321098765432109876543210.000000000000000000000000000001"
    assert value_of(integer) == integer
    assert value_of(fraction) == fraction
    assert value_of("-" + fraction) == "-" + fraction


def test_booleans_become_true_and_false_not_numbers():
    assert value_of("true") == "true"
    assert value_of("false") == "false"


def test_json_null_is_none():
    assert value_of("null") is None


# --- strings are kept exactly --------------------------------------------------------------------


def test_strings_keep_padding_unicode_and_date_lookalikes_exactly():
    assert value_of('"ABC   "') == "ABC   "  # CHAR padding: trimming is gold's job
    assert value_of('"Ærøskøbing – 東京 – 🙂"') == "Ærøskøbing – 東京 – 🙂"
    assert value_of('"1994-09-30:15:33:00"') == "1994-09-30:15:33:00"  # a text column that looks like a date
    assert value_of('"0136"') == "0136"  # leading zeros of a code are not a number


def test_escaped_unicode_decodes_to_the_same_text_as_raw_unicode():
    assert value_of('"\\u00c6r\\u00f8sk\\u00f8bing \\ud83d\\ude42"') == "Ærøskøbing 🙂"
    assert value_of('"\\u0000\\u0000Vurdering\\u0000"') == "\x00\x00Vurdering\x00"


def test_an_unpaired_surrogate_escape_is_an_error_not_a_broken_string():
    with pytest.raises(DecodeError, match="unpaired UTF-16 surrogate"):
        value_of('"abc\\ud800"')


def test_nested_objects_and_arrays_become_canonical_json_text_with_exact_numbers():
    assert value_of('{"b": [1, 2.50, "x"], "a": {"z": null, "y": true}}') == (
        '{"a":{"y":true,"z":null},"b":[1,2.50,"x"]}'
    )
    assert value_of('["é", 1e2]') == '["é",100]'


# --- JSON reading -------------------------------------------------------------------------------


def test_several_concatenated_documents_are_read_with_their_byte_offsets():
    raw = '{"a":"é"}{"b":2}\n  {"c":3}\n'.encode()
    assert documents(raw) == [(0, {"a": "é"}), (10, {"b": 2}), (20, {"c": 3})]


def test_invalid_json_reports_the_byte_offset_counting_multibyte_characters():
    raw = '{"name":"Ærø", "x": }'.encode()  # Æ and ø are two bytes each: the error is at byte 22
    with pytest.raises(DecodeError, match=r"invalid JSON at byte 22: Expecting value"):
        documents(raw)


def test_a_repeated_field_name_is_an_error_instead_of_keeping_the_last_value():
    with pytest.raises(DecodeError, match="repeats the field 'ROW_ID'"):
        single_document(b'{"ROW_ID":"1-A","ROW_ID":"1-B"}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected_as_not_json(constant):
    with pytest.raises(DecodeError, match=f"{constant} is not a JSON number"):
        single_document(f'{{"x": {constant}}}'.encode())


def test_an_empty_value_holds_no_document():
    with pytest.raises(DecodeError, match="holds no JSON document"):
        documents(b"  \n")


def test_bytes_that_are_not_utf8_are_an_error_naming_the_byte():
    with pytest.raises(DecodeError, match="not UTF-8 at byte 9"):
        documents(b'{"name":"\xff"}')


def test_extra_data_after_a_single_document_is_an_error():
    with pytest.raises(DecodeError, match="byte 7: extra data"):
        single_document(b'{"a":1}{"b":2}')


def test_an_integer_beyond_the_int_digit_limit_is_a_decode_error():
    with pytest.raises(DecodeError, match="document at byte 0"):
        single_document(b'{"x": ' + b"9" * 5000 + b"}")


def test_a_leading_byte_order_mark_is_refused_by_name():
    with pytest.raises(DecodeError, match=r"starts with a UTF-8 byte order mark \(bytes EF BB BF\)"):
        documents(b'\xef\xbb\xbf{"a":1}')


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_beyond_the_parser_is_a_decode_error_not_a_recursion_error(depth):
    with pytest.raises(DecodeError, match=r"document at byte 0: arrays and objects nested too deeply"):
        documents(b"[" * depth + b"]" * depth)


def test_a_number_beyond_pythons_digit_limit_is_refused_in_plain_words():
    limit = sys.get_int_max_str_digits()
    assert documents(b'{"n": ' + b"9" * limit + b"}")[0][1]["n"] == int("9" * limit)
    with pytest.raises(DecodeError, match=f"document at byte 0: a number has more than {limit} digits$"):
        documents(b'{"n": ' + b"9" * (limit + 1) + b"}")


def test_a_value_nested_deeper_than_max_nesting_is_refused_and_max_nesting_is_kept():
    assert value_of("[" * MAX_NESTING + "]" * MAX_NESTING) == "[" * MAX_NESTING + "]" * MAX_NESTING
    deeper = '{"a":' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)
    with pytest.raises(DecodeError, match=f"nested too deeply \\(more than {MAX_NESTING} levels\\)"):
        value_of(deeper)


# --- source timestamps (GoldenGate op_ts) --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-11-05 18:45:36.000000", datetime(2015, 11, 5, 18, 45, 36)),
        ("1994-09-30:15:33:00", datetime(1994, 9, 30, 15, 33, 0)),
        ("2016-10-05T10:15:51.267000", datetime(2016, 10, 5, 10, 15, 51, 267000)),
        ("2022-01-11 11:00:40", datetime(2022, 1, 11, 11, 0, 40)),
        ("2020-05-13 17:26:27.9", datetime(2020, 5, 13, 17, 26, 27, 900000)),
        # digits 7-9 are truncated, not rounded
        ("2020-05-13 17:26:27.123456789", datetime(2020, 5, 13, 17, 26, 27, 123456)),
        ("2020-05-13 17:26:27.999999999", datetime(2020, 5, 13, 17, 26, 27, 999999)),
    ],
)
def test_source_timestamps_accept_space_colon_and_t_separators_with_up_to_nine_fraction_digits(
    text, expected
):
    assert parse_source_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2015-11-05", "2015-11-05 18:45", "2015-11-05 18:45:36.1234567890", "2015-13-05 18:45:36", 20151105],
)
def test_malformed_source_timestamps_are_errors(text):
    with pytest.raises(DecodeError, match="timestamp"):
        parse_source_timestamp(text)


# --- epoch numbers (Debezium temporal types) -----------------------------------------------------


def test_epoch_timestamps_become_wall_clock_text_without_losing_nanoseconds():
    assert timestamp_text_from_epoch(1709647330000, "ms") == "2024-03-05 14:02:10"
    assert timestamp_text_from_epoch(1734449012123, "ms") == "2024-12-17 15:23:32.123000"
    assert timestamp_text_from_epoch(1767806283683652, "us") == "2026-01-07 17:18:03.683652"
    assert timestamp_text_from_epoch(1767806283683652001, "ns") == "2026-01-07 17:18:03.683652001"
    assert timestamp_text_from_epoch(1767806283683652000, "ns") == "2026-01-07 17:18:03.683652"
    assert timestamp_text_from_epoch(-1, "ms") == "1969-12-31 23:59:59.999000"


def test_epoch_values_that_are_not_integers_or_out_of_range_are_errors():
    with pytest.raises(DecodeError, match="not an integer"):
        timestamp_text_from_epoch("1709647330000", "ms")
    with pytest.raises(DecodeError, match="not an integer"):
        timestamp_text_from_epoch(True, "ms")
    with pytest.raises(DecodeError, match="out of the datetime range"):
        timestamp_text_from_epoch(10**20, "ms")


def test_commit_timestamps_from_epoch_milliseconds_are_naive_utc():
    assert datetime_from_epoch_ms(1709647331000) == datetime(2024, 3, 5, 14, 2, 11)
    assert datetime_from_epoch_ms(1596001099434) == datetime(2020, 7, 29, 5, 38, 19, 434000)


def test_days_since_epoch_become_iso_dates():
    assert date_text_from_days(20073) == "2024-12-16"
    assert date_text_from_days(-1) == "1969-12-31"
    with pytest.raises(DecodeError, match="out of range"):
        date_text_from_days(10**9)


def test_times_of_day_keep_their_fraction():
    assert time_text_from_count(56033000, "ms") == "15:33:53"
    assert time_text_from_count(56033000001, "us") == "15:33:53.000001"
    assert time_text_from_count(56033000000001, "ns") == "15:33:53.000000001"
    with pytest.raises(DecodeError, match="outside one day"):
        time_text_from_count(86400000, "ms")


# --- Kafka Connect decimals ----------------------------------------------------------------------


def test_connect_decimals_decode_base64_twos_complement_with_their_scale():
    # docs/cdc-formats.md §2.6: 1250.00 in a NUMBER(22,7) column
    assert decimal_text_from_base64("AukO3QA=", 7) == "1250.0000000"
    assert decimal_text_from_base64("A5lh", 2) == "2358.73"
    assert decimal_text_from_base64("AQ==", 0) == "1"
    assert decimal_text_from_base64("AA==", 3) == "0.000"
    assert decimal_text_from_base64("/w==", 2) == "-0.01"  # 0xff is -1 in two's complement
    assert decimal_text_from_base64("BNI=", -2) == "123400"  # negative scale (NUMBER(P,-2))


def test_connect_decimals_of_more_than_forty_digits_are_exact():
    unscaled = -123456789012345678901234567890123456789012345
    encoded = base64.b64encode(unscaled.to_bytes(20, "big", signed=True)).decode()
    assert decimal_text_from_base64(encoded, 10) == "-12345678901234567890123456789012345.6789012345"


def test_connect_decimals_that_are_not_base64_are_errors():
    with pytest.raises(DecodeError, match="not valid base64"):
        decimal_text_from_base64("not base64!", 2)
    with pytest.raises(DecodeError, match="not a base64 string"):
        decimal_text_from_base64(12.5, 2)
    with pytest.raises(DecodeError, match="empty"):
        decimal_text_from_base64("", 2)
