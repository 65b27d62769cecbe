import pytest

from transforms.bronze.offsets import OffsetRange, OffsetsAgedOut, plan_ranges


def test_new_table_reads_from_low_to_high_watermark():
    ranges = plan_ranges("t", {0: (0, 10), 1: (5, 7)}, {})
    assert ranges == [OffsetRange("t", 0, 0, 10), OffsetRange("t", 1, 5, 7)]


def test_resumes_after_the_recorded_offsets():
    ranges = plan_ranges("t", {0: (0, 10), 1: (0, 7)}, {0: 10, 1: 3})
    assert [(r.start, r.end, r.size) for r in ranges] == [(10, 10, 0), (3, 7, 4)]


def test_cap_limits_records_per_partition():
    ranges = plan_ranges("t", {0: (0, 1000)}, {0: 100}, max_records_per_partition=50)
    assert ranges == [OffsetRange("t", 0, 100, 150)]


def test_records_lost_to_retention_are_an_error_naming_partition_and_count():
    with pytest.raises(OffsetsAgedOut, match=r"t\[0\].*offset 5.*starts at 20.*15 records"):
        plan_ranges("t", {0: (20, 30)}, {0: 5})


def test_allow_gap_resumes_at_low_watermark():
    assert plan_ranges("t", {0: (20, 30)}, {0: 5}, allow_gap=True) == [OffsetRange("t", 0, 20, 30)]
