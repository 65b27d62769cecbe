"""The summary `make run` prints: what each layer holds, whether silver equals the source, the checks,
the quarantine, a sample projection query and the Kafka offsets the projections reflect."""

from __future__ import annotations

import dagster as dg


def print_summary(truth: dict[str, dict], result: dg.ExecuteInProcessResult, stack) -> bool:
    """`truth`: every source table's true rows, as the workloads' state(as_text_values=True) give them."""
    from assets.factory import load_entities, load_projections, load_specs
    from orchestration.loop import not_materialized
    from resources.connections import resources_from_env

    resources = resources_from_env()
    spark = resources["spark"].session(resources["lake"])
    lake = resources["lake"]
    specs = load_specs()
    entities = load_entities(specs)
    all_equal = True

    print("\n==> Rows per table")
    print(
        f"    {'table':<14} {'bronze events':>13} {'quarantined':>11} {'silver rows':>11}  silver = source?"
    )
    for source in sorted({spec.source for spec in specs}):
        tables = [spec for spec in specs if spec.source == source]
        print(f"    source {source} ({', '.join(sorted({spec.format for spec in tables}))}):")
        for spec in tables:
            problems, line = _table_line(spark, lake, spec, truth[spec.table])
            all_equal &= not problems
            print(line)
    print(f"    {'gold entity':<14} {'rows':>13}")
    for entity in entities:
        print(f"    {entity.name:<14} {_count(spark, lake.table_path('gold', entity.name)):>13}")

    print("\n==> Checks (Great Expectations suites as Dagster asset checks, last run)")
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    print(f"    {len(evaluations)} evaluated, {len(evaluations) - len(failed)} passed, {len(failed)} failed")
    for evaluation in failed:
        observed = evaluation.metadata.get("observed_value")
        observed = getattr(observed, "value", observed)
        print(
            f"    failed ({evaluation.severity.value}): {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            f", observed {observed}"
        )
    held = not_materialized(result)
    if (
        held
    ):  # each waits for a failed blocking check upstream of it (or a failed step): the run's events say which
        print(f"    not materialized in that run: {', '.join(held)}")

    print("\n==> Cassandra projections")
    from transforms.projections import load_projection_with_offsets

    session = resources["cassandra"].session()
    for projection in load_projections(entities):
        snapshot = load_projection_with_offsets(session, projection, keyspace=projection.keyspace or "cdc")
        print(
            f"    {projection.projection}: {len(snapshot.rows)} rows, as of source commit time "
            f"{snapshot.as_of_us} µs, write timestamp {snapshot.write_timestamp}"
        )
        offsets = ", ".join(
            f"{topic}{dict(sorted(parts.items()))}" for topic, parts in sorted(snapshot.kafka_offsets.items())
        )
        print(f"      reflects Kafka offsets (next to read): {offsets}")
    _sample_query(
        session,
        "orders_by_customer",
        "customer_id",
        "SELECT order_date, order_id, status, total FROM cdc.orders_by_customer WHERE customer_id = %s LIMIT 5",
        lambda row: f"{row.order_date}  {row.order_id:<12} {str(row.status):<14} {row.total}",
    )
    _sample_query(
        session,
        "order_timeline",
        "order_id",
        "SELECT committed_at, event_type, status, event_id FROM cdc.order_timeline WHERE order_id = %s LIMIT 5",
        lambda row: f"{row.committed_at}  {row.event_type:<16} {str(row.status):<10} {row.event_id}",
    )
    return all_equal and not [e for e in failed if e.severity == dg.AssetCheckSeverity.ERROR]


def _table_line(spark, lake, spec, truth_rows_of_table: dict) -> tuple[list[str], str]:
    """(silver's differences from the source, the table's summary line)."""
    from devtools.workload.compare import differences, silver_rows, truth_rows
    from transforms.delta_commits import table_exists

    bronze = _count(spark, lake.table_path("bronze", spec.asset_name))
    quarantined = _count(spark, lake.table_path("quarantine", spec.asset_name))
    silver_path = lake.table_path("silver", spec.asset_name)
    if table_exists(spark, silver_path):
        rows = silver_rows(spark, silver_path, spec)
        problems = differences(rows, truth_rows(truth_rows_of_table, spec))
    else:
        rows, problems = {}, ["no silver table"]
    verdict = "yes" if not problems else f"NO: {len(problems)} differences, e.g. {problems[0]}"
    return problems, f"    {spec.asset_name:<14} {bronze:>13} {quarantined:>11} {len(rows):>11}  {verdict}"


def _sample_query(session, table: str, partition_column: str, query: str, line) -> None:
    """`query` (one partition of `table`, %s its key) for the partition with the most rows, as cqlsh shows it."""
    sizes = session.execute(
        f"SELECT {partition_column}, count(*) AS n FROM cdc.{table} GROUP BY {partition_column}"
    ).all()
    if sizes:
        key = getattr(max(sizes, key=lambda row: row.n), partition_column)
        print(f"\n    cqlsh> {query.replace('%s', repr(key))};")
        for row in session.execute(query, (key,)):
            print(f"      {line(row)}")


def _count(spark, path: str) -> int:
    from transforms.delta_commits import table_exists

    return spark.read.format("delta").load(path).count() if table_exists(spark, path) else 0
