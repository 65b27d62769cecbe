"""The replay of pytest-xdist's loadfile queue (bench/suite_schedule.py): test times per file from a
JUnit file, and when each worker ends for a given order of the files."""

from bench.suite_schedule import collected_files, makespan, orders, seconds_by_test_file

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.integration.test_flow" name="test_whole_flow" time="300.5" />
<testcase classname="tests.unit.test_rules.TestCells" name="test_absent" time="0.25" />
<testcase classname="tests.unit.test_rules.TestCells" name="test_null" time="0.75" />
<testcase classname="tests.unit.test_other" name="test_one[a]" time="2.0" />
</testsuite></testsuites>
"""

# one long single-test file and two files of short tests
SECONDS = {"long.py": [10.0], "four.py": [1.0] * 4, "six.py": [1.0] * 6}


def test_a_junit_file_gives_each_test_file_its_tests_seconds(tmp_path):
    path = tmp_path / "suite.xml"
    path.write_text(JUNIT)
    assert seconds_by_test_file(path) == {
        "tests/integration/test_flow.py": [300.5],
        "tests/unit/test_rules.py": [0.25, 0.75],
        "tests/unit/test_other.py": [2.0],
    }


def test_xdist_default_order_leaves_the_long_single_test_file_for_the_end():
    order = orders(SECONDS, ["long.py", "four.py", "six.py"])["xdist_default"]
    assert order == ["six.py", "four.py", "long.py"]
    # worker 0 runs six.py (6 s); worker 1 runs four.py and, with two of its tests left, takes long.py
    assert makespan(order, SECONDS) == [6.0, 14.0]


def test_collection_order_starts_the_long_file_first_and_the_short_ones_fill_the_other_worker():
    order = orders(SECONDS, ["long.py", "four.py", "six.py"])["collection"]
    assert makespan(order, SECONDS) == [10.0, 10.0]


def test_one_worker_runs_every_file_one_after_the_other():
    assert makespan(["six.py", "long.py", "four.py"], SECONDS, workers=1) == [20.0]


def test_the_collection_order_is_read_from_pytest_collect_only_output():
    output = (
        "tests/integration/test_flow.py::test_whole_flow\n"
        "tests/unit/test_rules.py::TestCells::test_absent\n"
        "tests/unit/test_rules.py::TestCells::test_null\n"
        "tests/unit/test_other.py::test_one[a]\n"
        "\n"
        "4 tests collected in 0.52s\n"
    )
    assert collected_files(output) == [
        "tests/integration/test_flow.py",
        "tests/unit/test_rules.py",
        "tests/unit/test_other.py",
    ]
