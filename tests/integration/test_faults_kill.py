"""Fault matrix, the SIGKILL rows: a run of the `microbatch` job killed in the middle of silver, gold (its
first write and an incremental MERGE) and a projection write loses and duplicates nothing.

One small CRM workload (tests.pipeline.small_crm_workload, test_lake_end_to_end's too) goes through real
Kafka, Spark+Delta and Cassandra into ONE lake in two parts (split at a source transaction's end), by
runs of the job (every asset; no check: checks write no table and cost about a third of a run), each
in a child process (tests/integration/microbatch_kill_runner.py) killed with SIGKILL, the process and
its Spark JVM at once, at one point:

1. (first part) during S_LST_OF_VAL's silver MERGE, after the batch's change-log append: data files
   written, not committed (so also "between the change-log append and the silver commit");
2. during gold `order`'s write (its first, the whole entity): data files written, not committed;
3. during the Cassandra upserts of `orders_by_customer`: half of them written, no offsets commit (gold
   was written, in one commit, before);
4. (second part produced) during gold `order`'s incremental MERGE of the keys the new changes touch:
   data files written, not committed (the projections, after gold, are not reached);
5. then the next run of the job (every asset, in this process) completes, as a user's next run would.

Every layer is then compared with the truth the way the clean-run tests compare it (the control:
test_lake_end_to_end.py and test_make_run.py run the same workload shape without a fault): bronze holds
each Kafka record once, silver equals the generator's source state, gold the cleanup rules applied to
it (tests/gold_expectation.py), every projection the rows its SQL makes from gold. The killed writes
left no commit (their data files stay on disk, in no table version) and nothing was applied twice; the
change log holds the killed batch again per attempt, which its readers are promised to be harmless
(transforms/merge/change_log.py), and the batch's primary-key change makes the MERGE read it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest

from devtools.stack.jars import PROJECT_ROOT
from devtools.workload.producer import produce_messages
from tests.integration.microbatch_kill_runner import data_files, run_every_asset
from tests.lake_truth import bronze_problems, gold_problems, silver_problems
from tests.pipeline import small_crm_workload, specs_on_topics, unique_prefix
from transforms.delta_commits import current_version

pytestmark = pytest.mark.integration

# S_LST_OF_VAL's batch holds a primary-key change, so its MERGE replays the moved keys from the change
# log, which then holds the batch three times (two killed runs and the one that commits).
SILVER = "s_lst_of_val"
GOLD = "order"
PROJECTION = "orders_by_customer"
RUN_TIMEOUT_S = 600
FIRST_PART = 0.7  # of the messages, up to the transaction end nearest this share


def _killed_run(prefix: str, environment: dict[str, str], logs: Path, point: str, target: str) -> float:
    """One run of the job in a child process (its own process group), which must die by SIGKILL at
    `point`; returns its seconds."""
    name = f"{point}-{target.replace('/', '-')}"
    started = time.monotonic()
    with open(logs / f"{name}.out", "w") as out, open(logs / f"{name}.err", "w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.microbatch_kill_runner", prefix, point, target],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            returncode = child.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            returncode = None
    seconds = time.monotonic() - started
    tail = (logs / f"{name}.out").read_text()[-1500:] + (logs / f"{name}.err").read_text()[-3000:]
    assert returncode == -signal.SIGKILL, (
        f"the run was not killed at {point} {target}: rc={returncode}\n{tail}"
    )
    print(f"run killed at {point} {target}: {seconds:.1f}s")
    return seconds


def _next_run(prefix: str, home: Path):
    """The next run of every asset, configured from the environment (the test set it as the killed runs'
    was), in this process; it must succeed."""
    from resources.connections import resources_from_env

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_every_asset(prefix, resources_from_env(), instance)
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, f"the run after the kill failed: {failures}"
    return result


def _gold_mode(result, entity: str) -> str:
    """How a run's materialization of gold `entity` recomputed it (full, incremental, skipped)."""
    [materialization] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["gold", entity])
    ]
    return materialization.metadata["mode"].value


def _commits(spark, path: Path) -> list[dict]:
    """The table's commits, oldest first (operation and userMetadata)."""
    if current_version(spark, str(path)) is None:
        return []
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version", "operation", "userMetadata")
    return [row.asDict() for row in history.orderBy("version").collect()]


def _committed_files(spark, path: Path) -> set[str]:
    """The data files the table's current version holds (local paths)."""
    if current_version(spark, str(path)) is None:
        return set()
    return {unquote(urlparse(uri).path) for uri in spark.read.format("delta").load(str(path)).inputFiles()}


def _uncommitted_files(spark, path: Path) -> set[str]:
    """Data files in the table's folder that its current version does not hold."""
    return data_files(path) - _committed_files(spark, path)


def _projection_rows(session, keyspace: str, spec) -> dict[tuple, dict]:
    rows = session.execute(f"SELECT {', '.join(spec.columns)} FROM {keyspace}.{spec.table_name}")
    return {tuple(row._asdict()[k] for k in spec.primary_key): row._asdict() for row in rows}


def _projection_from_gold(spark, spec, gold_paths: dict[str, str]) -> dict[tuple, dict]:
    """The rows the projection's SQL makes from gold's current versions, as Cassandra gives them back."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    from transforms.projections.rows import projection_rows

    versions = {entity: current_version(spark, gold_paths[entity]) for entity in spec.entities}
    rows, _rejected = projection_rows(spark, spec, gold_paths, versions)
    rows = rows.select(
        *[
            F.col(f.name).cast("timestamp_ntz").alias(f.name)
            if isinstance(f.dataType, TimestampType)
            else f.name
            for f in rows.schema
            if f.name in spec.columns
        ]
    )
    return {tuple(row[k] for k in spec.primary_key): row.asDict() for row in rows.collect()}


def test_sigkill_during_silver_gold_an_incremental_gold_merge_and_a_projection_write_loses_nothing(
    spark, stack, cassandra_session, tmp_path, monkeypatch
):
    from assets.factory import load_entities, load_projections
    from transforms.merge.change_log import log_path
    from transforms.merge.layout import PK_CHANGED
    from transforms.projections.offsets import read_state

    started = time.monotonic()
    prefix, keyspace = unique_prefix(), f"kill_{uuid.uuid4().hex[:8]}"
    lake, home, logs = tmp_path / "lake", tmp_path / "dagster_home", tmp_path / "logs"
    for folder in (lake, home, logs):
        folder.mkdir()
    workload = small_crm_workload(prefix)
    split = min(workload.transaction_ends, key=lambda end: abs(end - FIRST_PART * len(workload.messages)))
    first_part, second_part = workload.messages[:split], workload.messages[split:]
    produce_messages(stack.kafka_bootstrap, first_part, partitions=3)
    settings = {
        **stack.connection_settings(),
        "CDC_LAKE_ROOT": str(lake),
        "CDC_CASSANDRA_KEYSPACE": keyspace,
        "CDC_SPARK_LOG": str(logs / "spark.log"),
        "DAGSTER_HOME": str(home),
    }
    environment = {**os.environ, **settings}
    specs = specs_on_topics(prefix)
    specs_by_name = {spec.asset_name: spec for spec in specs}
    entities = load_entities(specs)
    silver = lake / "silver" / SILVER
    gold = lake / "gold" / GOLD
    seconds = {}

    # 1. killed during the MERGE of S_LST_OF_VAL's batch, after its change-log append
    seconds["during_silver_merge"] = _killed_run(
        prefix, environment, logs, "during_write", f"silver/{SILVER}"
    )
    for spec in specs:
        assert current_version(spark, str(lake / "bronze" / spec.asset_name)) is not None, spec.asset_name
    created = _commits(spark, silver)
    assert [c["operation"] for c in created] == ["CREATE TABLE"], created  # the empty table: no commit ...
    killed_silver_files = _uncommitted_files(spark, silver)  # ... but data files
    assert killed_silver_files, "the MERGE was killed before it wrote a data file"
    assert len(_commits(spark, Path(log_path(str(silver))))) == 1  # the change log has the batch

    # 2. killed during gold's write (its first: the whole entity) with every silver table applied
    seconds["during_gold_write"] = _killed_run(prefix, environment, logs, "during_write", f"gold/{GOLD}")
    assert current_version(spark, str(gold)) is None, _commits(spark, gold)
    killed_gold_files = _uncommitted_files(spark, gold)
    assert killed_gold_files, "gold's write was killed before it wrote a data file"

    # 3. killed between the two halves of a projection's upserts: begun, half written, not committed
    seconds["during_projection_write"] = _killed_run(
        prefix, environment, logs, "during_projection_write", PROJECTION
    )
    begun = read_state(cassandra_session, keyspace, PROJECTION)
    assert begun.committed is None and len(begun.attempts) == 1, begun
    projections = {p.projection: p for p in load_projections(entities)}
    half_written = len(_projection_rows(cassandra_session, keyspace, projections[PROJECTION]))
    assert half_written > 0

    gold_written = _commits(spark, gold)  # that run wrote gold before its projections
    assert [c["operation"] for c in gold_written] == ["WRITE"], gold_written

    # 4. the second part: killed during gold `order`'s incremental MERGE of the keys it changed
    produce_messages(stack.kafka_bootstrap, second_part, partitions=3)
    seconds["during_gold_merge"] = _killed_run(prefix, environment, logs, "during_write", f"gold/{GOLD}")
    assert _commits(spark, gold) == gold_written  # no commit: the table is at its first version ...
    killed_merge_files = _uncommitted_files(spark, gold) - killed_gold_files
    assert killed_merge_files, "gold's MERGE was killed before it wrote a data file"  # ... with new files
    assert read_state(cassandra_session, keyspace, PROJECTION) == begun  # projections not reached

    # 5. the next run of every asset, configured the same way, in this process
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    recovery_started = time.monotonic()
    result = _next_run(prefix, home)
    seconds["recovery"] = time.monotonic() - recovery_started
    assert _gold_mode(result, GOLD) == "incremental"

    # every layer equals the truth (tests/lake_truth.py: as the clean runs are judged)
    problems = [
        *bronze_problems(spark, lake, specs, workload),
        *silver_problems(spark, lake, specs, workload),
        *gold_problems(spark, lake, specs, entities, workload),
    ]
    assert not problems, "\n".join(problems)

    # silver: each part's batch applied in ONE commit, the victim's too
    second_topics = {message.topic for message in second_part}
    for spec in specs:
        commits = _commits(spark, lake / "silver" / spec.asset_name)
        batches = [c for c in commits if c["userMetadata"]]
        assert len(batches) == 1 + (spec.topic in second_topics), (spec.asset_name, commits)
    merges = 1 + (specs_by_name[SILVER].topic in second_topics)
    assert [c["operation"] for c in _commits(spark, silver)] == ["CREATE TABLE"] + ["MERGE"] * merges
    # the killed MERGE's files are still on disk, in no version (the table holds its own)
    assert _committed_files(spark, silver) and killed_silver_files <= _uncommitted_files(spark, silver)
    # the change log holds the first part's batch once per attempt (1 killed, 1 committed) and the
    # second's once; readers keep one change per (key, sequence) (transforms.merge.change_log), and the
    # MERGE replayed keys a primary-key change linked from it, yet silver equals the source
    log = spark.read.format("delta").load(log_path(str(silver)))
    copies = {row["count"] for row in log.groupBy("_key", "_sequence").count().collect()}
    assert copies == ({1, 2} if merges == 2 else {2}), copies
    assert spark.read.format("delta").load(str(silver)).where(f"{PK_CHANGED} IS NOT NULL").count() > 0

    # gold: one commit per entity and part, the victims' too; their killed files in no version
    for entity in entities:
        assert len(_commits(spark, lake / "gold" / entity.name)) <= 2, entity.name
    assert [c["operation"] for c in _commits(spark, gold)] == ["WRITE", "MERGE"]
    killed = killed_gold_files | killed_merge_files
    assert _committed_files(spark, gold) and killed <= _uncommitted_files(spark, gold)

    # projections: each equals what its SQL makes from gold, and its batch is committed
    gold_paths = {entity.name: str(lake / "gold" / entity.name) for entity in entities}
    for name, spec in projections.items():
        stored = _projection_rows(cassandra_session, keyspace, spec)
        wanted = _projection_from_gold(spark, spec, gold_paths)
        assert stored == wanted, f"{name}: {len(stored.keys() ^ wanted.keys())} keys differ"
        state = read_state(cassandra_session, keyspace, name)
        assert state.attempts == () and state.committed is not None, (name, state)
        assert state.committed.position.gold_versions == {
            e: current_version(spark, gold_paths[e]) for e in spec.entities
        }
    assert half_written < len(_projection_rows(cassandra_session, keyspace, projections[PROJECTION]))

    cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    shown = ", ".join(f"{point} {s:.1f}s" for point, s in seconds.items())
    print(f"runs: {shown}; whole test {time.monotonic() - started:.1f}s")
