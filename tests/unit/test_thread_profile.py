"""The benchmark's summary of py-spy samples (bench/thread_profile.py): which thread time it counts,
how it tells a wait for the JVM from Python work, and where it attributes each sample."""

from bench.thread_profile import summarize

STEP = "thread (101): dagster-step_0"
RAW = "\n".join(
    [
        # inside a py4j call under gold's MERGE: the JVM's time, gold's function
        f"{STEP};_run_step (orchestration/threaded_executor.py:182);refresh_entity (transforms/gold/engine.py:150)"
        ";_merge_keys (transforms/gold/engine.py:416);execute (delta/tables.py:1200)"
        ";send_command (py4j/clientserver.py:511) 30",
        # the same function at another line adds up with it
        f"{STEP};_merge_keys (transforms/gold/engine.py:420);send_command (py4j/clientserver.py:511) 10",
        # Python work inside Great Expectations, under the project's validation
        f"{STEP};_validate (expectations/validate.py:330)"
        ";resolve (great_expectations/validator/validation_graph.py:99) 8",
        # a wait on a lock outside any project function
        f"{STEP};_run_step (orchestration/threaded_executor.py:182);wait (threading.py:320) 2",
        # Python work in a function that happens to be named like a wait: not a wait
        f"{STEP};_run_step (orchestration/threaded_executor.py:182);Config.get (dagster/config.py:10) 4",
        # another thread: not a step's
        "thread (7): MainThread;main (bench/bench_microbatch.py:300);send_command (py4j/clientserver.py:511) 99",
    ]
)


def test_step_threads_split_into_jvm_python_and_waiting_per_innermost_project_function():
    profile = summarize(RAW, samples_per_second=10)
    assert profile.seconds == 5.4  # 54 samples of the step thread; the main thread's 99 are not counted
    assert profile.by_kind == {"jvm": 4.0, "python": 1.2, "waiting": 0.2}
    assert profile.by_function == [
        (4.0, "jvm", "_merge_keys (transforms/gold/engine.py)"),
        (0.8, "python", "_validate (expectations/validate.py)"),
        (0.4, "python", "other"),
        (0.2, "waiting", "other"),  # the executor's own frame is not the place
    ]
    assert (
        profile.text().splitlines()[0]
        == "step threads: 5.4 s sampled (jvm 4.0 s, python 1.2 s, waiting 0.2 s)"
    )
