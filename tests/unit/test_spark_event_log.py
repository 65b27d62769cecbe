"""The benchmark's per-step sum of Spark's event log (bench/spark_event_log.py): which queries belong to a
step of the run asked for, root against nested, and whose seconds count."""

import json

from bench.spark_event_log import event_log_conf, queries_by_step, read_events

RUN = "db86e8d3-1111-2222-3333-444455556666"
START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"
END = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd"


def start(execution: int, description: str, time: int, root: int | None = None) -> dict:
    return {
        "Event": START,
        "executionId": execution,
        "rootExecutionId": execution if root is None else root,
        "description": description,
        "time": time,
    }


def end(execution: int, time: int) -> dict:
    return {"Event": END, "executionId": execution, "time": time}


EVENTS = [
    start(1, "silver__s_contact (run db86e8d3)", 1_000),
    # Delta's MERGE inside it: nested, its own label prefixed by Delta
    start(2, "Delta: silver__s_contact (run db86e8d3): Writing modified data", 1_200, root=1),
    end(2, 1_900),
    end(1, 3_500),
    # a query Delta started on its own (a root one) for the same step
    start(3, "Delta: Delta: silver__s_contact (run db86e8d3): Filtering files for query", 4_000),
    end(3, 4_250),
    start(4, "gold__customer (run db86e8d3) - MERGE operation - materialize source", 5_000),
    end(4, 5_400),
    # another run's step, and a query outside any step: not counted
    start(5, "silver__s_contact (run 0badcafe)", 6_000),
    end(5, 9_000),
    start(6, "count at NativeMethodAccessorImpl.java:0", 6_000),
    end(6, 7_000),
]


def test_each_step_of_the_run_counts_its_root_queries_and_their_seconds():
    steps = queries_by_step(EVENTS, RUN)

    assert set(steps) == {"silver__s_contact", "gold__customer"}
    silver = steps["silver__s_contact"]
    assert (silver.queries, silver.nested) == (2, 1)
    assert silver.seconds == 2.5 + 0.25  # the root queries only: the nested one runs inside the first
    gold = steps["gold__customer"]
    assert (gold.queries, gold.nested, gold.seconds) == (1, 0, 0.4)


def test_the_event_log_is_read_from_its_folder_and_only_sql_executions_are_parsed(tmp_path):
    application = tmp_path / "local-1"
    lines = [json.dumps({"Event": "SparkListenerJobStart", "Job ID": 1}), "not json at all: never parsed"]
    lines += [json.dumps(event) for event in EVENTS]
    application.write_text("\n".join(lines) + "\n")

    assert list(read_events(tmp_path)) == EVENTS
    assert event_log_conf(tmp_path)["spark.eventLog.dir"] == tmp_path.resolve().as_uri()
