"""Benchmark of end-to-end freshness: a steady stream of CRM changes through real Kafka into the loop
(the README's low-latency mode), timed per change from its Kafka produce until the read models
reflect it (prints figures; not a test).

    .venv/bin/python bench/bench_freshness.py                          # 100 changes/s for 10 minutes
    .venv/bin/python bench/bench_freshness.py --duration 60 --rate 20  # a short trial

1. Starts a private stack (Kafka, Cassandra) on free ports, or uses `--stack-dir`'s (its CRM topics
   are deleted first). A fresh lake, Dagster instance and Cassandra keyspace every time.
2. Generates the CRM workload (an initial load, then change transactions, GoldenGate JSON) and
   produces the initial load. Starts the platform as the README tells a user who wants low latency:
   `python -m orchestration.loop --interval 10` as its own process (a separate Python + Spark JVM,
   the deployment a user runs), with the benchmark's settings and the platform's default
   `CDC_CUT_IDLE_SECONDS` (30) unless `--cut-idle-seconds` says otherwise. The loop's first run (every
   asset: a new instance has no successful run) is the warm-up: the stream starts once the initial
   load is reflected everywhere and that run has ended.
3. Produces the change stream at `--rate` messages per second (one GoldenGate message is one row
   change, so `changes` counts messages; the stream is cut at a transaction end, so it holds whole
   transactions) for `--duration` seconds, paced: message i is sent at start + i / rate. The delivery
   report of each message gives its partition and offset; its produce time is taken just before
   `produce()`.
4. Meanwhile, every `--poll` seconds, reads what each read model reflects, without scanning rows:
   - a Cassandra projection: the Kafka offsets its last committed batch reflects (`read_state`,
     transforms/projections/offsets.py): a message (topic, partition, offset) is readable once the
     recorded next offset of its partition is above its offset. The projection writes its rows
     (synchronously acknowledged, one Cassandra node) BEFORE it commits those offsets
     (transforms/projections/project.py, step 6 before 7), so the rows are readable when the offsets
     are seen; the figure is late by at most the commit's own time plus one poll.
   - a gold entity that no projection serves (account, product): the newest gold commit's recorded
     silver versions -> each silver commit's recorded bronze version and cut -> that bronze commit's
     recorded offset ranges (all in the Delta commit metadata, read from the `_delta_log` JSON files
     without Spark). A message is in gold once its offset is below the range end of its partition and
     its commit position (the `csn`) is below silver's cut (transforms/cut.py): the same rule by
     which a projection records the first held offset (transforms/source_position.py).
   A change has ARRIVED when every read model its table reaches reflects it: every projection that
   reads its table through gold (assets/gold/entities.yaml -> assets/projections/*.yaml), and
   every gold entity reading its table that no projection serves. Its freshness is arrival - produce.
5. After the stream, waits until every change has arrived, or until the loop has twice found nothing
   left to do (every record in bronze, every row applied, the last run succeeded: nothing more will
   come), at most `--drain-timeout` seconds. The changes that have not arrived then are `lost`
   (`settled`: false when the timeout, not the loop, ended the wait: then `lost` may hold late
   changes). The percentiles are over the changes that arrived.

The last line is one JSON object: `changes`, `p50_s`, `p99_s`, `max_s`, `lost`, each target beside
its figure (`*_target`), `runs` (loop runs going on at some moment of the stream; `runs_after_stream`:
those begun after it, until the drain ended), their seconds, the settings, and the CPU seconds of
this process itself (producer, poller: what it takes from the platform on a small machine).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from bench_microbatch import point_platform_at  # noqa: E402  (bench/ is this script's folder)

TARGET_P99_SECONDS = 60.0
TARGET_LOST = 0
README_LOOP_INTERVAL = 10.0  # README "Low latency: the loop" and the Makefile's LOOP_INTERVAL
PARTITIONS = 3
RUN_LINE = re.compile(r"^run (\w+): (succeeded|FAILED), (\d+) materializations in ([\d.]+)s")


# -- the changes ----------------------------------------------------------------------------------


@dataclass
class Change:
    """One produced message and what became of it."""

    topic: str
    table: str
    commit_position: str | None  # encoded first component of its sequence (the csn); None: unreadable
    stream: bool  # False: the initial load
    pending: int  # read models that do not reflect it yet
    produced_at: float = 0.0  # time.monotonic() just before produce()
    partition: int = -1
    offset: int = -1
    arrived_at: float | None = None
    error: str | None = None


def commit_position_of(value: bytes | None, sequence_field: str) -> str | None:
    """The commit position a decoder gives a GoldenGate JSON message (transforms.cut.commit_position
    of its encoded sequence), or None when the message does not carry it."""
    from transforms.decoders.fields import position_number
    from transforms.sequence import encode_sequence

    try:
        document = json.loads(value) if value else {}
        return encode_sequence([position_number(document.get(sequence_field), sequence_field)])
    except Exception:  # noqa: BLE001 - a message without a position: it passes no cut (conservative)
        return None


# -- what the read models reflect -----------------------------------------------------------------

TopicState = tuple[dict[int, int], str | None]  # partition -> first offset NOT reflected; cut (None: none)


class DeltaLog:
    """The progress recorded in Delta commits (transforms/delta_commits.py), read from a local table's
    `_delta_log/*.json` files in this process: no Spark. Commit files never change once written."""

    def __init__(self) -> None:
        self._metadata: dict[tuple[str, int], dict | None] = {}

    @staticmethod
    def newest_version(path: str) -> int | None:
        try:
            names = os.listdir(os.path.join(path, "_delta_log"))
        except FileNotFoundError:
            return None
        versions = [
            int(name[:20])
            for name in names
            if len(name) == 25 and name.endswith(".json") and name[:20].isdigit()
        ]
        return max(versions) if versions else None

    def user_metadata(self, path: str, version: int) -> dict | None:
        key = (path, version)
        if key not in self._metadata:
            try:
                text = Path(path, "_delta_log", f"{version:020d}.json").read_text()
            except FileNotFoundError:
                return None
            metadata = None
            for line in text.splitlines():
                if line.startswith('{"commitInfo"'):
                    raw = json.loads(line)["commitInfo"].get("userMetadata")
                    metadata = json.loads(raw) if raw and raw.startswith("{") else None
            self._metadata[key] = metadata
        return self._metadata[key]

    def progress(self, path: str, stage: str, at_or_before: int | None = None) -> dict | None:
        """The metadata of the newest commit of `stage` at or before a version (default: the newest)."""
        version = self.newest_version(path)
        if version is None:
            return None
        version = version if at_or_before is None else min(version, at_or_before)
        while version >= 0:
            metadata = self.user_metadata(path, version)
            if metadata and metadata.get("stage") == stage:
                return metadata
            version -= 1
        return None


@dataclass
class ReadModel:
    name: str  # cassandra/<projection> or gold/<entity>
    topics: dict[str, str]  # topic -> silver table
    state: object  # () -> {topic: TopicState}; raises or returns {} before the first batch


def projection_state(session, keyspace: str, projection: str):
    def state() -> dict[str, TopicState]:
        from transforms.projections import read_state

        committed = read_state(session, keyspace, projection).committed
        if committed is None:
            return {}
        return {
            topic: (dict(partitions), None) for topic, partitions in committed.position.kafka_offsets.items()
        }

    return state


def gold_state(log: DeltaLog, lake, entity: str, topics: dict[str, str]):
    """What gold/<entity>'s newest commit reflects, per topic of the silver tables it reads."""

    def state() -> dict[str, TopicState]:
        from transforms.bronze.ingest import STAGE as BRONZE_STAGE
        from transforms.gold.engine import STAGE as GOLD_STAGE
        from transforms.silver import STAGE as SILVER_STAGE

        gold = log.progress(lake.table_path("gold", entity), GOLD_STAGE)
        if gold is None:
            return {}
        reflected = {}
        for topic, table in topics.items():
            silver_version = (gold.get("silver_versions") or {}).get(table)
            if silver_version is None:
                continue
            silver = log.progress(
                lake.table_path("silver", table), SILVER_STAGE, at_or_before=int(silver_version)
            )
            if silver is None:
                continue
            bronze = log.progress(
                lake.table_path("bronze", table), BRONZE_STAGE, at_or_before=int(silver["bronze_version"])
            )
            if bronze is None:
                continue
            ends = {int(partition): int(end) for partition, (_, end) in bronze["ranges"].items()}
            reflected[topic] = (ends, silver.get("cut"))
        return reflected

    return state


def read_models(specs, session, keyspace: str, lake, sinks: str) -> list[ReadModel]:
    """Every projection (the topics of the silver tables it reads through gold) and, with sinks
    "all", every gold entity no projection reads (its own topics)."""
    from assets.factory import load_entities, load_projections, projection_tables

    topic_of = {spec.asset_name: spec.topic for spec in specs}
    entities = load_entities(specs)
    by_name = {entity.name: entity for entity in entities}
    projections = load_projections(entities)
    models = [
        ReadModel(
            f"cassandra/{p.projection}",
            {topic_of[table]: table for table in projection_tables(p, by_name)},
            projection_state(session, p.keyspace or keyspace, p.projection),
        )
        for p in projections
    ]
    served = {name for p in projections for name in p.entities}
    covered = {topic for model in models for topic in model.topics}
    log = DeltaLog()
    for entity in entities:
        topics = {topic_of[table]: table for table in entity.sources}
        if entity.name in served or (sinks == "projections" and set(topics) <= covered):
            continue
        if sinks == "projections":  # only the topics no projection covers
            topics = {topic: table for topic, table in topics.items() if topic not in covered}
        models.append(ReadModel(f"gold/{entity.name}", topics, gold_state(log, lake, entity.name, topics)))
    return models


class Tracker:
    """The changes, the read models, and which change each model reflects (by pointers that move along
    each partition's changes in offset order: a model reflects a prefix of every partition)."""

    def __init__(self, models: list[ReadModel]) -> None:
        self.models = models
        self.lock = threading.Lock()
        self.changes: list[Change] = []
        self.by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)  # delivered, offset order
        self.pointers: dict[tuple[str, str, int], int] = defaultdict(int)
        self.models_of_topic: dict[str, int] = defaultdict(int)
        for model in models:
            for topic in model.topics:
                self.models_of_topic[topic] += 1
        self.poll_errors: dict[str, str] = {}

    def add(self, change: Change) -> int:
        with self.lock:
            self.changes.append(change)
            return len(self.changes) - 1

    def delivered(self, index: int, error, message) -> None:
        """The producer's delivery report (called from producer.poll/flush, in offset order per partition)."""
        change = self.changes[index]
        if error is not None:
            change.error = str(error)
            return
        with self.lock:
            change.partition, change.offset = message.partition(), message.offset()
            self.by_partition[(change.topic, change.partition)].append(index)

    def poll(self) -> None:
        now = time.monotonic()
        for model in self.models:
            try:
                reflected = model.state()
            except Exception as exc:  # noqa: BLE001 - e.g. the keyspace before the first projection batch
                self.poll_errors[model.name] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            self.poll_errors.pop(model.name, None)
            now = time.monotonic()  # after the read: the state was seen at this moment at the latest
            with self.lock:
                for topic, (ends, cut) in reflected.items():
                    if topic not in model.topics:
                        continue
                    for partition, end in ends.items():
                        indices = self.by_partition.get((topic, partition), [])
                        key = (model.name, topic, partition)
                        pointer = self.pointers[key]
                        while pointer < len(indices):
                            change = self.changes[indices[pointer]]
                            position = change.commit_position
                            if change.offset >= end or (
                                cut is not None and (position is None or position >= cut)
                            ):
                                break
                            change.pending -= 1
                            if change.pending == 0:
                                change.arrived_at = now
                            pointer += 1
                        self.pointers[key] = pointer

    def waiting(self, stream: bool | None = None) -> list[Change]:
        with self.lock:
            return [
                c for c in self.changes if c.arrived_at is None and (stream is None or c.stream == stream)
            ]

    def latencies(self) -> list[float]:
        with self.lock:
            return sorted(
                c.arrived_at - c.produced_at for c in self.changes if c.stream and c.arrived_at is not None
            )


def poll_forever(tracker: Tracker, every: float, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        tracker.poll()
        stop.wait(max(0.0, every - (time.monotonic() - started)))


# -- producing ------------------------------------------------------------------------------------


def produce(
    bootstrap: str,
    tracker: Tracker,
    messages,
    table_of: dict[str, str],
    sequence_field: dict[str, str],
    *,
    stream: bool,
    rate: float | None,
    report=None,
) -> float:
    """Send the messages (paced at `rate` per second, or at once) with an idempotent producer, as the
    workload producer does (acks=all, Java's key hashing); every change is tracked. Returns seconds."""
    from confluent_kafka import Producer

    from devtools.workload.producer import PRODUCER_CONFIG

    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG})
    started = time.monotonic()
    for number, message in enumerate(messages):
        if rate:
            delay = started + number / rate - time.monotonic()
            while delay > 0:
                producer.poll(min(delay, 0.05))
                delay = started + number / rate - time.monotonic()
        table = table_of[message.topic]
        index = tracker.add(
            Change(
                message.topic,
                table,
                commit_position_of(message.value, sequence_field[table]),
                stream,
                pending=tracker.models_of_topic[message.topic],
            )
        )
        tracker.changes[index].produced_at = time.monotonic()
        while True:
            try:
                producer.produce(
                    message.topic,
                    value=message.value,
                    key=message.key,
                    on_delivery=functools.partial(tracker.delivered, index),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if report is not None:
            report(number + 1)
    remaining = producer.flush(120)
    failed = [c.error for c in tracker.changes if c.error]
    if remaining or failed:
        raise RuntimeError(f"{remaining} messages unacknowledged, {len(failed)} failed: {failed[:5]}")
    return time.monotonic() - started


def stream_messages(seed: int, initial_rows: int, wanted: int):
    """The initial load and at least `wanted` change messages, cut at a transaction end."""
    from devtools.workload import WorkloadConfig, generate_workload

    transactions = max(10, math.ceil(wanted / 3.0))  # about 3.6 messages per CRM transaction
    while True:
        workload = generate_workload(
            WorkloadConfig(seed=seed, initial_rows=initial_rows, changes=transactions, initial_load=True)
        )
        loaded = workload.transaction_ends[0]  # with initial_load, the load is the first "transaction"
        ends = [end - loaded for end in workload.transaction_ends[1:] if end - loaded >= wanted]
        if ends:
            return workload.messages[:loaded], workload.messages[loaded : loaded + ends[0]]
        transactions *= 2


# -- the loop -------------------------------------------------------------------------------------


@dataclass
class LoopWatcher:
    """Follows the loop's output (its log file): run lines with the time they were read."""

    log_path: Path
    runs: list[tuple[float, float, bool]] = field(default_factory=list)  # (started, seconds, succeeded)
    nothing_to_do: list[float] = field(default_factory=list)  # when "tables with work: none" was read
    _offset: int = 0

    def read(self, echo: bool = True) -> None:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        now = time.monotonic()
        for line in complete.decode(errors="replace").splitlines():
            match = RUN_LINE.match(line)
            if match:
                seconds = float(match.group(4))
                self.runs.append((now - seconds, seconds, match.group(2) == "succeeded"))
            if line == "tables with work: none":
                self.nothing_to_do.append(now)
            if echo and (match or line.startswith(("every asset", "micro-batch loop", "stopped"))):
                print(f"  [loop] {line}", file=sys.stderr, flush=True)


def start_loop(work: Path, interval: float):
    from devtools.stack.process import spawn

    command = [sys.executable, "-m", "orchestration.loop", "--interval", f"{interval:g}"]
    return spawn(command, work / "loop.log", cwd=PROJECT_ROOT, die_with_parent=True)


# -- figures --------------------------------------------------------------------------------------


def runs_between(
    runs: list[tuple[float, float, bool]], start: float, end: float
) -> list[tuple[float, float, bool]]:
    """The loop runs that were going on at some moment between start and end."""
    return [run for run in runs if run[0] <= end and run[0] + run[1] >= start]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank of sorted values."""
    if not values:
        return None
    return values[max(0, math.ceil(q * len(values)) - 1)]


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def wait_for(
    tracker: Tracker,
    watcher: LoopWatcher,
    loop,
    stream: bool,
    timeout: float,
    label: str,
    until=None,
    give_up=None,
) -> bool:
    """Until every change (of the load or the stream) has arrived and `until()` holds: True. False when
    `give_up()` says nothing more will come, or after `timeout` seconds."""
    started = time.monotonic()
    last_report = started
    while time.monotonic() - started < timeout:
        watcher.read()
        if loop.poll() is not None:
            raise SystemExit(f"the loop stopped (exit {loop.returncode}); its log: {watcher.log_path}")
        waiting = tracker.waiting(stream)
        if not waiting and (until is None or until()):
            return True
        if give_up is not None and give_up():
            return False
        if time.monotonic() - last_report >= 15:
            last_report = time.monotonic()
            errors = sorted({error[:120] for error in tracker.poll_errors.values()})
            log(
                f"{label}: {len(waiting)} changes not yet everywhere after {time.monotonic() - started:.0f}s"
                + (f" (not readable yet: {'; '.join(errors)})" if errors else "")
            )
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of the change stream")
    parser.add_argument("--rate", type=float, default=100.0, help="changes (messages) per second")
    parser.add_argument("--interval", type=float, default=README_LOOP_INTERVAL, help="the loop's --interval")
    parser.add_argument(
        "--cut-idle-seconds",
        type=float,
        default=None,
        help="CDC_CUT_IDLE_SECONDS for the loop (default: unset, the platform's 30)",
    )
    parser.add_argument(
        "--sinks",
        choices=("all", "projections"),
        default="all",
        help="all: a change arrives when every projection AND every gold entity without a "
        "projection that reads its table reflect it; projections: gold only for tables "
        "no projection reads",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1800.0,
        help="at most this many seconds after the stream for every change to arrive (the wait "
        "ends sooner when the loop reports nothing left to do)",
    )
    parser.add_argument(
        "--warm-timeout",
        type=float,
        default=1200.0,
        help="seconds to wait for the initial load to arrive (the warm-up run)",
    )
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between reads of the read models' state"
    )
    parser.add_argument("--initial-rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--stack-dir", type=Path, default=None, help="use (or start) this stack; default a private one"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up as Ctrl-C does

    from devtools.stack.process import log_tail, stop_group
    from devtools.stack.stack import Stack, StackPorts

    work = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    stack = (
        Stack(args.stack_dir)
        if args.stack_dir
        else Stack(work / "stack", StackPorts.free(), die_with_parent=True)
    )
    loop = None
    finished = False
    stop = threading.Event()
    begun = time.monotonic()
    try:
        log(f"starting the stack ({work})")
        stack.up()
        point_platform_at(stack, work)
        from devtools.source_specs import write_source_specs

        write_source_specs(work / "specs", "crm")  # the benchmark streams the CRM's workload
        os.environ["CDC_SPECS_DIR"] = str(work / "specs")
        os.environ.pop("CDC_CUT_IDLE_SECONDS", None)  # the platform's default, as a user runs it
        if args.cut_idle_seconds is not None:
            os.environ["CDC_CUT_IDLE_SECONDS"] = f"{args.cut_idle_seconds:g}"

        from assets.factory import load_specs
        from devtools.workload.producer import create_topics, delete_topics
        from resources.connections import resources_from_env
        from transforms.cut import idle_seconds_from_env

        specs = load_specs()
        resources = resources_from_env()
        session = resources["cassandra"].session()
        models = read_models(specs, session, resources["cassandra"].keyspace, resources["lake"], args.sinks)
        tracker = Tracker(models)
        table_of = {spec.topic: spec.asset_name for spec in specs}
        sequence_field = {spec.asset_name: (spec.sequence_by or ["pos"])[0] for spec in specs}
        uncovered = sorted(t for t in table_of if tracker.models_of_topic[t] == 0)
        if uncovered:
            raise SystemExit(f"no read model reflects topics {uncovered}")
        for model in models:
            log(f"read model {model.name}: {', '.join(sorted(model.topics.values()))}")

        wanted = max(1, round(args.rate * args.duration))
        load, changes = stream_messages(args.seed, args.initial_rows, wanted)
        log(
            f"workload: initial load {len(load)} messages, stream {len(changes)} messages "
            f"({len(changes) / args.rate:.0f}s at {args.rate:g}/s)"
        )

        delete_topics(stack.kafka_bootstrap, sorted(table_of))  # a reused stack's earlier run
        create_topics(stack.kafka_bootstrap, sorted(table_of), PARTITIONS)
        produce(stack.kafka_bootstrap, tracker, load, table_of, sequence_field, stream=False, rate=None)
        poller = threading.Thread(target=poll_forever, args=(tracker, args.poll, stop), daemon=True)
        poller.start()

        loop = start_loop(work, args.interval)
        watcher = LoopWatcher(work / "loop.log")
        log(
            f"loop started (pid {loop.pid}, --interval {args.interval:g}, cut idle "
            f"{idle_seconds_from_env():g}s); warming up on the initial load"
        )
        warm_started = time.monotonic()
        wait_for(
            tracker, watcher, loop, False, args.warm_timeout, "warm-up", until=lambda: bool(watcher.runs)
        )
        if tracker.waiting(False):
            raise SystemExit(
                f"the initial load did not arrive within {args.warm_timeout:g}s; loop log: {work / 'loop.log'}"
            )
        log(
            f"warm: the initial load is everywhere and the first run ended ({time.monotonic() - warm_started:.0f}s)"
        )

        last = [time.monotonic()]

        def report(sent: int) -> None:
            watcher.read()
            if loop.poll() is not None:
                raise SystemExit(f"the loop stopped (exit {loop.returncode})")
            if time.monotonic() - last[0] >= 15:
                last[0] = time.monotonic()
                done = tracker.latencies()
                p99 = percentile(done, 0.99)
                log(
                    f"stream: {sent}/{len(changes)} sent, {len(done)} arrived"
                    + (f", p99 so far {p99:.1f}s" if p99 is not None else "")
                    + f", {len(watcher.runs)} loop runs ended so far"
                )

        stream_started = time.monotonic()
        produce_seconds = produce(
            stack.kafka_bootstrap,
            tracker,
            changes,
            table_of,
            sequence_field,
            stream=True,
            rate=args.rate,
            report=report,
        )
        stream_ended = time.monotonic()
        log(f"stream produced in {produce_seconds:.1f}s; waiting for every change to arrive")

        def loop_has_nothing_left() -> bool:
            """Two "nothing to do" detections after the stream (the second began after it for sure): bronze
            holds every record, silver applied every row, and the last run (gold, projections) succeeded."""
            if len([t for t in watcher.nothing_to_do if t > stream_ended]) < 2:
                return False
            time.sleep(2 * args.poll + 1)  # the poller reads the final state once more
            return True

        all_arrived = wait_for(
            tracker, watcher, loop, True, args.drain_timeout, "drain", give_up=loop_has_nothing_left
        )
        settled = all_arrived or len([t for t in watcher.nothing_to_do if t > stream_ended]) >= 2
        drained = time.monotonic()
        watcher.read()
        if not settled:
            log(
                f"the drain was cut at {args.drain_timeout:g}s while the loop still had work: `lost` counts late changes too"
            )

        latencies = tracker.latencies()
        lost = len(tracker.waiting(True))
        by_table: dict[str, list[float]] = defaultdict(list)
        for change in tracker.changes:
            if change.stream and change.arrived_at is not None:
                by_table[change.table].append(change.arrived_at - change.produced_at)
        stream_runs = runs_between(watcher.runs, stream_started, stream_ended)
        drain_runs = runs_between(watcher.runs, stream_ended, drained)
        run_seconds = sorted(seconds for _, seconds, _ in stream_runs)
        figures = {
            "changes": len(changes),
            "p50_s": rounded(percentile(latencies, 0.50), 1),
            "p99_s": rounded(percentile(latencies, 0.99), 1),
            "p99_s_target": TARGET_P99_SECONDS,
            "max_s": rounded(latencies[-1] if latencies else None, 1),
            "lost": lost,
            "lost_target": TARGET_LOST,
            "settled": settled,
            "runs": len(stream_runs),
            "runs_failed": sum(1 for *_, ok in stream_runs if not ok),
            "runs_after_stream": len([run for run in drain_runs if run[0] >= stream_ended]),
            "run_seconds_p50": rounded(percentile(run_seconds, 0.5), 1),
            "run_seconds_max": rounded(run_seconds[-1] if run_seconds else None, 1),
            "duration_s": rounded(produce_seconds, 1),
            "rate": args.rate,
            "rate_achieved": rounded(len(changes) / produce_seconds if produce_seconds else None, 1),
            "drain_s": rounded(drained - stream_ended, 1),
            "interval_s": args.interval,
            "cut_idle_seconds": idle_seconds_from_env(),
            "read_models": [model.name for model in models],
            "p99_s_by_table": {
                t: rounded(percentile(sorted(v), 0.99), 1) for t, v in sorted(by_table.items())
            },
            "total_s": rounded(time.monotonic() - begun, 0),
            "bench_process_cpu_s": rounded(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        }
        print(json.dumps(figures))
        finished = True
        return 0
    finally:
        stop.set()
        if loop is not None:
            stop_group(loop.pid, grace_seconds=60)
            if not finished:
                log(f"the loop's log, its end:\n{log_tail(work / 'loop.log', 60)}")
        if not args.stack_dir:
            stack.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
