"""python -m devtools.workload --bootstrap HOST:PORT --seed 7 --initial-rows 200 --changes 2000
   [--partitions 3] [--state-out truth.json] [--dump messages.jsonl] [--initial-load --overlap N]
   [--before-image key|key+changed|all] [--debezium-table S_PROD_INT ...] [--topic-template crm.{table}]

Generates the CRM workload; sends it to Kafka when --bootstrap is given; writes the true final
source state and/or the messages when asked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools.workload.config import WorkloadConfig
from devtools.workload.generator import generate_workload
from devtools.workload.goldengate import BEFORE_IMAGES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.workload", description=__doc__.split("\n\n")[1])
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers HOST:PORT; omit to only write files")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--initial-rows", type=int, default=200)
    parser.add_argument(
        "--changes", type=int, default=2000, help="business transactions after the initial rows"
    )
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--before-image", choices=BEFORE_IMAGES, default="key+changed")
    parser.add_argument(
        "--initial-load", action="store_true", help="initial rows as a GoldenGate initial load"
    )
    parser.add_argument("--overlap", type=int, default=0, help="changes repeated after the initial load")
    parser.add_argument(
        "--debezium-table", action="append", default=[], help="table to write as Debezium JSON"
    )
    parser.add_argument("--topic-template", default="crm.{table}")
    parser.add_argument("--state-out", type=Path, help="write the true final state (JSON) here")
    parser.add_argument("--dump", type=Path, help="write the messages (JSON lines: topic, key, value) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = WorkloadConfig(
        seed=args.seed,
        initial_rows=args.initial_rows,
        changes=args.changes,
        before_image=args.before_image,
        initial_load=args.initial_load,
        overlap=args.overlap,
        debezium_tables=tuple(args.debezium_table),
        topic_template=args.topic_template,
    )
    workload = generate_workload(config)
    if args.state_out:
        args.state_out.write_text(workload.state_json() + "\n", encoding="utf-8")
    if args.dump:
        args.dump.write_text(workload.messages_jsonl(), encoding="utf-8")
    rows = sum(len(rows) for rows in workload.state().values())
    print(
        f"{len(workload.messages)} messages on {len(workload.topics())} topics, "
        f"{len(workload.transaction_ends)} transactions; {rows} rows in the final state"
    )
    if args.bootstrap:
        from devtools.workload.producer import produce_messages

        counts = produce_messages(args.bootstrap, workload.messages, partitions=args.partitions)
        for topic, count in sorted(counts.items()):
            print(f"  {topic}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
