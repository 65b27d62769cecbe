"""`cdc-lakehouse`: replay a file of CDC messages into a silver Delta table without Kafka, and show it.

    cdc-lakehouse apply --spec SPEC.yaml --input MESSAGES.jsonl --table PATH
    cdc-lakehouse show --table PATH [--all-columns] [--history]

`apply`: each input line is one Kafka message value in the spec's format; the lines go through the
same decoders and merge engine as the pipeline, as ONE batch, into the silver table at PATH (created if
missing). A line that cannot be decoded is reported with its line number and stored in the quarantine
table (`PATH` + `_quarantine`, or --quarantine); the other lines are applied. Split a file over several
`apply` calls to apply it in several batches.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from assets.table_spec import load_table_spec
from assets.yaml_loader import SpecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdc-lakehouse", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    apply = commands.add_parser("apply", help="apply a file of CDC messages to a silver Delta table")
    apply.add_argument("--spec", required=True, type=Path, help="table spec YAML")
    apply.add_argument("--input", required=True, type=Path, help="one message value per line ('-' for stdin)")
    apply.add_argument("--table", required=True, help="silver Delta table path (created if missing)")
    apply.add_argument("--quarantine", help="quarantine Delta table path (default: TABLE_quarantine)")
    show = commands.add_parser("show", help="print a silver table's live rows as JSON lines sorted by key")
    show.add_argument("--table", required=True)
    show.add_argument("--all-columns", action="store_true", help="include the underscore columns")
    show.add_argument("--history", action="store_true", help="print the SCD2 versions instead")
    show.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        help="SCD2: the rows as the source held them at this UTC time (e.g. 2026-12-05T10:00:00)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "apply":
            return _apply(args)
        return _show(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _apply(args: argparse.Namespace) -> int:
    from resources.spark_session import build_spark_session
    from transforms.bronze_rows import BRONZE_SCHEMA, QUARANTINE_SCHEMA, to_bronze_row, to_quarantine_row
    from transforms.changes import DecodeError, KafkaMessage
    from transforms.decoders import decode_for_spec
    from transforms.merge import apply_changes

    spec = load_table_spec(args.spec)
    lines = (
        sys.stdin.buffer.read().splitlines()
        if str(args.input) == "-"
        else args.input.read_bytes().splitlines()
    )
    now = datetime.now(UTC)
    source = f"file:{args.input.name}"
    rows, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        message = KafkaMessage(topic=source, partition=0, offset=number, key=None, value=line)
        try:
            for change in decode_for_spec(message, spec):
                if change.table != spec.table:
                    raise DecodeError(f"unknown table: {change.table!r} (the spec is for {spec.table!r})")
                rows.append(to_bronze_row(change, now))
        except DecodeError as exc:
            print(f"{args.input}:{number}: quarantined: {exc}", file=sys.stderr)
            bad.append(to_quarantine_row(spec.table, message, f"line {number}: {exc}", now))

    spark = build_spark_session(app_name="cdc-lakehouse-cli")
    spark.sparkContext.setLogLevel("ERROR")
    if bad:
        quarantine = args.quarantine or f"{args.table.rstrip('/')}_quarantine"
        spark.createDataFrame(bad, QUARANTINE_SCHEMA).write.format("delta").mode("append").save(quarantine)
    stats = apply_changes(
        spark,
        spark.createDataFrame(rows, BRONZE_SCHEMA),
        args.table,
        keys=spec.keys,
        column_types=spec.columns,
        history=spec.history,
        tombstone_retention_hours=spec.deletes.tombstone_retention_hours,
        ignored_operations=spec.ignored_operations,
    )
    print(
        json.dumps({"lines": len(lines), "changes": len(rows), "quarantined": len(bad), **_stats_dict(stats)})
    )
    return 1 if bad and not rows else 0


def _show(args: argparse.Namespace) -> int:
    from delta.tables import DeltaTable

    from resources.spark_session import build_spark_session
    from transforms.merge import read_as_of, read_history, read_live_rows, read_table
    from transforms.sql_text import quote_identifier

    spark = build_spark_session(app_name="cdc-lakehouse-cli")
    spark.sparkContext.setLogLevel("ERROR")
    properties = DeltaTable.forPath(spark, args.table).detail().collect()[0]["properties"]
    keys = json.loads(properties.get("cdc.keys", "[]"))
    if args.as_of is not None:
        frame = read_as_of(spark, args.table, args.as_of)
    elif args.history:
        frame = read_history(spark, args.table, all_columns=args.all_columns)
    elif args.all_columns:
        frame = read_table(spark, args.table)
    else:
        frame = read_live_rows(spark, args.table)
        frame = frame.select(*[quote_identifier(c) for c in frame.columns if not c.startswith("_")])
    order = [c for c in keys if c in frame.columns] + [c for c in ("_valid_from_seq",) if c in frame.columns]
    for row in frame.orderBy(*[quote_identifier(c) for c in order]).toLocalIterator():
        print(json.dumps(row.asDict(recursive=True), default=str, ensure_ascii=False))
    return 0


def _stats_dict(stats) -> dict:
    return stats.as_dict() if hasattr(stats, "as_dict") else dict(vars(stats))


if __name__ == "__main__":
    sys.exit(main())
