"""A poison corpus through real Kafka into bronze (issue 18): every kind of bad input lands in the
quarantine with its raw bytes, its offset and a reason a person understands, the good messages
interleaved around it all land in bronze, and the run does not fail because of it.

One topic and ONE ingest batch per format. Each corpus entry is (kind, raw value or None, reason
substring); the test reports every kind that misbehaved by name. The good messages carry the shapes
the tools emit that the typed columns accept (README "Typed columns"); the refused ones are poison.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.stack.kafka import MAX_RECORD_BYTES
from transforms.bronze.ingest import ingest_batch
from transforms.bronze.kafka_reader import make_consumer
from transforms.specs.table import TableSpec

pytestmark = pytest.mark.integration

TABLE = "SIEBEL.S_POISON"
COLUMNS = {
    "QTY": "long",
    "PRICE": "decimal(10,2)",
    "BIRTH": "date",
    "UPDATED": "timestamp",
    "ACTIVE": "boolean",
}
TEN_MB = 10 * 1024 * 1024
DEEP = 100_000  # nesting levels


def gg(*, drop: tuple[str, ...] = (), after: dict | None = None, **fields) -> bytes:
    """A GoldenGate insert of SIEBEL.S_POISON whose typed values the spec accepts, with `after` merged
    into its after image (None is a JSON null), `fields` set at the top level and `drop` removed."""
    document = {
        "table": TABLE,
        "op_type": "I",
        "op_ts": "2024-03-05 14:02:11.000000",
        "pos": "00000000000000000001",
        "after": {
            "ROW_ID": "1-P",
            "NAME": "poison",
            "QTY": 3,
            "PRICE": 12.50,
            "BIRTH": "1970-01-01",
            "UPDATED": "2024-03-05 14:02:11",
            "ACTIVE": "Y",
        },
    }
    document.update(fields)
    if after:
        document["after"] = {**document["after"], **after}
    for name in drop:
        document.pop(name)
    return json.dumps(document).encode()


def refused(column: str, value: str, why: str) -> str:
    """The reason a typed column gives for a value (transforms/decoders/column_types.py)."""
    return f"`after` column {column}: {value!r} {why}"


GOOD_TEMPLATE = gg()
DEEP_ARRAY = "[" * DEEP + "]" * DEEP

# (kind, raw Kafka value or None, a distinctive part of the quarantine reason)
GOLDENGATE_POISON: list[tuple[str, bytes | None, str]] = [
    # --- not a JSON object -----------------------------------------------------------------------
    ("invalid JSON", b"{not json", "invalid JSON at byte 1: Expecting property name"),
    (
        "truncated message",
        GOOD_TEMPLATE[:-2],
        f"invalid JSON at byte {len(GOOD_TEMPLATE) - 2}: Expecting ',' delimiter",
    ),
    ("non-UTF-8 bytes", gg(after={"NAME": "x"}).replace(b'"x"', b'"\xff\xfe"'), "is not UTF-8 at byte"),
    (
        "Latin-1 text",
        gg(after={"NAME": "caf\u00e9"}).replace(b"caf\\u00e9", b"caf\xe9"),
        "is not UTF-8 at byte",
    ),
    ("empty value", b"", "holds no JSON document (it is empty or only whitespace)"),
    ("only whitespace", b" \r\n\t ", "holds no JSON document"),
    ("Kafka tombstone (null value)", None, "the Kafka value is null (GoldenGate sends no tombstones)"),
    ("UTF-8 byte order mark", b"\xef\xbb\xbf" + GOOD_TEMPLATE, "starts with a UTF-8 byte order mark"),
    (
        "whole message is an array",
        b'[{"table":"SIEBEL.S_POISON"}]',
        "the JSON document is an array, not an object",
    ),
    ("whole message is a number", b"42", "the JSON document is a number, not an object"),
    ("whole message is a string", b'"I"', "the JSON document is a string, not an object"),
    ("whole message is null", b"null", "the JSON document is null, not an object"),
    ("NaN literal", gg().replace(b"12.5", b"NaN"), "NaN is not a JSON number"),
    (
        "raw control character in a string",
        gg(after={"NAME": "a\tb"}).replace(b"\\t", b"\t"),
        "Invalid control character",
    ),
    ("unpaired surrogate escape", gg(after={"NAME": "\ud800"}), "unpaired UTF-16 surrogate"),
    (
        "duplicated top-level key",
        gg().replace(b'"op_type": "I"', b'"op_type": "I", "op_type": "D"'),
        "repeats the field 'op_type'",
    ),
    (
        "duplicated column",
        gg().replace(b'"NAME": "poison"', b'"NAME": "poison", "NAME": "other"'),
        "repeats the field 'NAME'",
    ),
    (
        "deeply nested JSON (100k levels)",
        gg(after={"NAME": "@"}).replace(b'"@"', DEEP_ARRAY.encode()),
        "nested too deeply",
    ),
    ("deeply nested whole message", DEEP_ARRAY.encode(), "nested too deeply"),
    (
        "value nested 300 levels",
        gg(after={"NAME": "@"}).replace(b'"@"', b"[" * 300 + b"]" * 300),
        "`after` column NAME: arrays and objects nested too deeply (more than 200 levels)",
    ),
    (
        "broken second document (tx mode)",
        GOOD_TEMPLATE + b"\n{broken",
        f"invalid JSON at byte {len(GOOD_TEMPLATE) + 2}: Expecting property name",
    ),
    # --- the GoldenGate envelope --------------------------------------------------------------------
    ("unknown table", gg(table="SIEBEL.S_OTHER"), "unknown table: 'SIEBEL.S_OTHER'"),
    ("missing table", gg(drop=("table",)), "no `table` field"),
    ("missing op_type", gg(drop=("op_type",)), "no `op_type` field"),
    ("missing pos", gg(drop=("pos",)), "`pos` is null or missing"),
    ("pos not a number", gg(pos="12a"), "`pos` is '12a', not a non-negative integer"),
    ("unknown op_type", gg(op_type="X"), "unknown op_type 'X' (expected I, U, D or T)"),
    ("op_type of the wrong JSON type", gg(op_type=1), "`op_type` is 1, not a non-empty string"),
    ("insert without after", gg(drop=("after",)), "op_type I has no `after` image"),
    (
        "update with before but no after",
        gg(op_type="U", before={"ROW_ID": "1-P"}, drop=("after",)),
        "op_type U has no `after` image",
    ),
    ("delete without before", gg(op_type="D"), "op_type D has no `before` image"),
    (
        "image of the wrong JSON type",
        gg(op_type="D", before=["1-P"]),
        "`before` is an array, not an object or null",
    ),
    (
        "missing key column",
        gg(after={"ROW_ID": None}).replace(b'"ROW_ID": null, ', b""),
        "`after` image lacks key column ROW_ID",
    ),
    ("null key value", gg(after={"ROW_ID": None}), "key column ROW_ID is null"),
    ("op_ts not a timestamp", gg(op_ts="yesterday"), "`op_ts`: timestamp 'yesterday' does not match"),
    # --- typed values -------------------------------------------------------------------------------
    ("long beyond 64 bits", gg(after={"QTY": 2**64}), refused("QTY", str(2**64), "is out of the long range")),
    (
        "long just beyond the long range",
        gg(after={"QTY": 2**63}),
        refused("QTY", str(2**63), "is out of the long range"),
    ),
    (
        "decimal beyond 64 bits",
        gg(after={"PRICE": 2**70}),
        refused("PRICE", str(2**70), "has more than 8 integer digits; decimal(10,2) cannot hold it"),
    ),
    (
        "decimal too large for its precision",
        gg(after={"PRICE": "123456789.5"}),
        refused("PRICE", "123456789.5", "has more than 8 integer digits"),
    ),
    (
        "decimal with too many fraction digits",
        gg().replace(b"12.5", b"12.345"),
        refused("PRICE", "12.345", "has more than 2 fraction digits; decimal(10,2) would round it"),
    ),
    (
        "integer beyond Python's digit limit",
        gg().replace(b'"QTY": 3', b'"QTY": ' + b"9" * 5000),
        "a number has more than 4300 digits",
    ),
    ("text in a numeric column", gg(after={"QTY": "twelve"}), refused("QTY", "twelve", "is not a number")),
    ("fraction in a long column", gg(after={"QTY": "2.5"}), refused("QTY", "2.5", "has a fraction")),
    ("10 MB value", gg(after={"QTY": "1" * TEN_MB}), "has more than 1000 characters"),
    (
        "date that is not a date",
        gg(after={"BIRTH": "2024-02-30"}),
        refused("BIRTH", "2024-02-30", "is not a valid date and time (day is out of range for month)"),
    ),
    (
        "date that is text",
        gg(after={"BIRTH": "yesterday"}),
        refused("BIRTH", "yesterday", "matches no accepted shape"),
    ),
    (
        "date with a time of day",
        gg(after={"BIRTH": "1994-09-30:15:33:00"}),
        "has a time of day (15:33:00) a date column cannot hold",
    ),
    (
        "boolean that is not a boolean",
        gg(after={"ACTIVE": "maybe"}),
        refused("ACTIVE", "maybe", "is not a boolean"),
    ),
    (
        "timestamp: bare epoch number",
        gg(after={"UPDATED": 1709647331000}),
        refused("UPDATED", "1709647331000", "matches no accepted shape"),
    ),
    (
        "timestamp: Oracle NLS default",
        gg(after={"UPDATED": "05-MAR-24 02.02.11.000000 PM"}),
        refused("UPDATED", "05-MAR-24 02.02.11.000000 PM", "matches no accepted shape"),
    ),
    (
        "timestamp: US month/day/year",
        gg(after={"UPDATED": "03/05/2024 14:02:11"}),
        refused("UPDATED", "03/05/2024 14:02:11", "matches no accepted shape"),
    ),
    (
        "timestamp: RFC 1123",
        gg(after={"UPDATED": "Tue, 05 Mar 2024 14:02:11 GMT"}),
        refused("UPDATED", "Tue, 05 Mar 2024 14:02:11 GMT", "matches no accepted shape"),
    ),
    (
        "timestamp: without seconds",
        gg(after={"UPDATED": "2024-03-05T14:02"}),
        refused("UPDATED", "2024-03-05T14:02", "matches no accepted shape"),
    ),
    (
        "timestamp: ten fraction digits",
        gg(after={"UPDATED": "2024-03-05 14:02:11.1234567890"}),
        refused("UPDATED", "2024-03-05 14:02:11.1234567890", "matches no accepted shape"),
    ),
    (
        "timestamp: hour 24",
        gg(after={"UPDATED": "2024-03-05 24:00:00"}),
        refused("UPDATED", "2024-03-05 24:00:00", "is not a valid date and time (hour must be in 0..23)"),
    ),
    (
        "timestamp: offset out of range",
        gg(after={"UPDATED": "2024-03-05 14:02:11+25:00"}),
        refused("UPDATED", "2024-03-05 14:02:11+25:00", "has a zone offset +25:00 out of range"),
    ),
    (
        "timestamp: unknown region",
        gg(after={"UPDATED": "2024-03-05 14:02:11 Mars/Olympus_Mons"}),
        "names an unknown time zone 'Mars/Olympus_Mons'",
    ),
    ("timestamp: empty text", gg(after={"UPDATED": ""}), refused("UPDATED", "", "matches no accepted shape")),
]


def good_gg(number: int, after: dict) -> bytes:
    return gg(pos=f"{number:020d}", after={"ROW_ID": f"1-{number}", "NAME": f"good {number}", **after})


# Good messages: the shapes the tools emit that the typed columns accept, each with the canonical text
# bronze must hold. Cycled between the poison messages.
GOOD_SHAPES: list[tuple[dict, dict]] = [
    (
        {"UPDATED": "1994-09-30:15:33:00", "BIRTH": "1994-09-30:00:00:00"},  # GoldenGate DATE default form
        {"UPDATED": "1994-09-30 15:33:00", "BIRTH": "1994-09-30"},
    ),
    ({"UPDATED": "2024-03-05 14:02:11.123456789"}, {"UPDATED": "2024-03-05 14:02:11.123456"}),  # TIMESTAMP(9)
    ({"UPDATED": "2024-12-17T15:23:37.618Z"}, {"UPDATED": "2024-12-17 15:23:37.618000"}),  # Debezium ISO
    ({"UPDATED": "2024-03-05 14:02:11.000000 +01:00"}, {"UPDATED": "2024-03-05 13:02:11"}),  # WITH TIME ZONE
    ({"UPDATED": "2024-03-05T14:02:11+0100"}, {"UPDATED": "2024-03-05 13:02:11"}),
    ({"UPDATED": "2024-03-05 14:02:11 Europe/Berlin"}, {"UPDATED": "2024-03-05 13:02:11"}),
    ({"UPDATED": "2024-03-05"}, {"UPDATED": "2024-03-05 00:00:00"}),
    (
        {"QTY": "1E+2", "PRICE": "17520.00", "ACTIVE": "n"},
        {"QTY": "100", "PRICE": "17520.00", "ACTIVE": "false"},
    ),
    (
        {"QTY": 2**63 - 1, "PRICE": 99999999.99, "ACTIVE": 1},
        {"QTY": str(2**63 - 1), "PRICE": "99999999.99", "ACTIVE": "true"},
    ),
    (
        {"QTY": -(2**63), "PRICE": "1.5E+1", "BIRTH": None},
        {"QTY": str(-(2**63)), "PRICE": "15.00", "BIRTH": None},
    ),
]


# --- Debezium (PostgreSQL connector, JSON converter) -------------------------------------------------

DBZ_TABLE = "public.poison"
DBZ_COLUMNS = {"qty": "long", "price": "decimal(10,2)", "updated": "timestamp"}
DECIMAL = {
    "type": "bytes",
    "optional": True,
    "name": "org.apache.kafka.connect.data.Decimal",
    "parameters": {"scale": "2"},
    "field": "price",
}
ROW_SCHEMA = {
    "type": "struct",
    "optional": True,
    "fields": [
        {"type": "int32", "optional": False, "field": "id"},
        {"type": "int64", "optional": True, "field": "qty"},
        DECIMAL,
        {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "field": "updated"},
    ],
}
ENVELOPE_SCHEMA = {
    "type": "struct",
    "name": "pg.public.poison.Envelope",
    "fields": [
        {**ROW_SCHEMA, "field": "before"},
        {**ROW_SCHEMA, "field": "after"},
        {"type": "struct", "field": "source", "fields": []},
        {"type": "string", "field": "op"},
    ],
}


def dbz(*, drop: tuple[str, ...] = (), source: dict | None = None, **fields) -> bytes:
    """A Debezium create of public.poison (no schema wrapper), with `fields` and `source` merged."""
    event = {
        "before": None,
        "after": {"id": 7, "qty": 3, "price": "12.50", "updated": "2024-12-17T15:23:37.618Z"},
        "source": {
            "version": "2.7.3.Final",
            "connector": "postgresql",
            "name": "pg",
            "ts_ms": 1734448917618,
            "snapshot": "false",
            "db": "shop",
            "schema": "public",
            "table": "poison",
            "txId": 556,
            "lsn": 24023128,
        },
        "op": "c",
        "ts_ms": 1734448917700,
    }
    event.update(fields)
    event["source"] = {**event["source"], **(source or {})}
    for name in drop:
        event.pop(name)
    return json.dumps(event).encode()


def dbz_with_schema(after: dict) -> bytes:
    payload = json.loads(dbz(after=after))
    return json.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload}).encode()


DEBEZIUM_POISON: list[tuple[str, bytes | None, str]] = [
    ("invalid JSON", b'{"before":null,"after":{"id":', "Debezium message: invalid JSON at byte"),
    ("envelope without payload", json.dumps({"schema": ENVELOPE_SCHEMA}).encode(), "no `op` field"),
    (
        "schema wrapper with a null payload",
        json.dumps({"schema": ENVELOPE_SCHEMA, "payload": None}).encode(),
        "the change event is null, not an object",
    ),
    (
        "flattened record (ExtractNewRecordState)",
        b'{"id":7,"qty":3}',
        "unwrapped/flattened records are not supported",
    ),
    ("op not in c/r/u/d/t/m", dbz(op="x"), "unknown op 'x' (expected c, r, u, d, t or m)"),
    ("update without after", dbz(op="u", before={"id": 7}, after=None), "op u has no `after` image"),
    (
        "delete without before or Kafka key",
        dbz(op="d", after=None),
        "`before` is null and the Kafka key is null",
    ),
    ("missing source", dbz(drop=("source",)), "`source` is null, not an object"),
    ("missing lsn", dbz(source={"lsn": None}), "`source.lsn` is null or missing"),
    (
        "unknown connector",
        dbz(source={"connector": "informix"}),
        "no default position for connector 'informix'",
    ),
    (
        "source.ts_ms not a number",
        dbz(source={"ts_ms": "yesterday"}),
        "`source.ts_ms`: ms 'yesterday' is not an integer",
    ),
    ("unknown table", dbz(source={"table": "other"}), "unknown table: 'public.other'"),
    ("two documents in one value", dbz() + dbz(), "extra data after the first document"),
    (
        "text in a long column",
        dbz(after={"id": 7, "qty": "many"}),
        "`after` column qty: 'many' is not a number",
    ),
    (
        "long beyond 64 bits",
        dbz(after={"id": 7, "qty": 2**64}),
        "'18446744073709551616' is out of the long range",
    ),
    (
        "ISO timestamp with day 32",
        dbz(after={"id": 7, "updated": "2024-12-32T00:00:00Z"}),
        "'2024-12-32T00:00:00Z' is not a valid date and time",
    ),
    (
        "schema Decimal that is not base64",
        dbz_with_schema({"id": 7, "price": "12.50"}),
        "`after` column price: decimal value '12.50' is not valid base64",
    ),
    (
        "schema MicroTimestamp that is text",
        dbz_with_schema({"id": 7, "updated": "2024-12-17T15:23:37Z"}),
        "`after` column updated: us '2024-12-17T15:23:37Z' is not an integer",
    ),
    ("deeply nested JSON (100k levels)", DEEP_ARRAY.encode(), "nested too deeply"),
]


def good_dbz(number: int) -> tuple[bytes, dict]:
    """A good Debezium create and the canonical typed values bronze must hold: schemaless (ISO text,
    decimal text) for odd numbers, with the schema (Decimal bytes, MicroTimestamp epoch) for even."""
    if number % 2:
        after = {
            "id": number,
            "qty": f"{number}E+1",
            "price": "1.5E+1",
            "updated": "2024-12-17T15:23:37.618123Z",
        }
        return dbz(after=after, source={"lsn": 24023128 + number}), {
            "qty": str(number * 10),
            "price": "15.00",
            "updated": "2024-12-17 15:23:37.618123",
        }
    after = {"id": number, "qty": number, "price": "BOI=", "updated": 1734448917618123}
    event = json.loads(dbz(after=after, source={"lsn": 24023128 + number}))
    return json.dumps({"schema": ENVELOPE_SCHEMA, "payload": event}).encode(), {
        "qty": str(number),
        "price": "12.50",
        "updated": "2024-12-17 15:21:57.618123",
    }


class Topic:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.name = f"crm.poison.{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(self.name, 1, 1)])[self.name].result(timeout=30)

    def produce(self, values: list[bytes | None], *, keyed: bool = True) -> None:
        # The broker's limit (16 MiB, devtools/stack/kafka.py): room for the 10 MB value; librdkafka's
        # default is 1 MB. Uncompressed, so the broker sees the full size.
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "none",
                "message.max.bytes": MAX_RECORD_BYTES,
            }
        )
        failed = []

        def delivered(error, message) -> None:
            if error is not None:
                failed.append(f"{len(message.value() or b'')} bytes: {error}")

        for offset, value in enumerate(values):
            producer.produce(
                self.name, key=f"k{offset}".encode() if keyed else None, value=value, on_delivery=delivered
            )
        assert producer.flush(60) == 0
        assert not failed, f"the broker refused records: {failed}"


def _interleave(poison: list[tuple[str, bytes | None, str]], good: list[bytes]) -> list[bytes | None]:
    """good[0], poison[0], good[1], poison[1], ... good[-1]: len(good) == len(poison) + 1."""
    values: list[bytes | None] = [good[0]]
    for (_, value, _), after in zip(poison, good[1:], strict=True):
        values += [value, after]
    return values


def _ingest(spark, spec: TableSpec, bootstrap: str, lake: Path):
    consumer = make_consumer({"bootstrap.servers": bootstrap}, group_id=f"test-poison-{uuid.uuid4().hex[:6]}")
    try:
        return ingest_batch(spark, spec, consumer, str(lake / "bronze"), str(lake / "quarantine"))
    finally:
        consumer.close()


def _misbehaving(corpus, quarantine: dict[int, object], offset_of: dict[str, int]) -> list[str]:
    """Every kind that is not in the quarantine with its raw bytes and a reason holding its substring."""
    problems = []
    for kind, value, reason in corpus:
        row = quarantine.get(offset_of[kind])
        if row is None:
            problems.append(f"{kind}: not in the quarantine (offset {offset_of[kind]})")
            continue
        raw = None if row["raw_value"] is None else bytes(row["raw_value"])
        if raw != value:
            problems.append(f"{kind}: raw bytes differ ({None if raw is None else len(raw)} bytes stored)")
        if reason not in row["error"]:
            problems.append(f"{kind}: reason {row['error'][:300]!r} lacks {reason!r}")
    return problems


def test_goldengate_poison_corpus_is_quarantined_with_raw_bytes_offset_and_reason(
    spark, kafka_bootstrap, tmp_lake
):
    assert len(GOLDENGATE_POISON) >= 30 and len({kind for kind, _, _ in GOLDENGATE_POISON}) == len(
        GOLDENGATE_POISON
    )
    topic = Topic(kafka_bootstrap)
    good_count = len(GOLDENGATE_POISON) + 1
    shapes = [GOOD_SHAPES[i % len(GOOD_SHAPES)] for i in range(good_count)]
    good = [good_gg(i + 1, sent) for i, (sent, _) in enumerate(shapes)]
    topic.produce(_interleave(GOLDENGATE_POISON, good))
    spec = TableSpec(
        table=TABLE, topic=topic.name, format="goldengate_json", keys=["ROW_ID"], columns=COLUMNS
    )

    batch = _ingest(spark, spec, kafka_bootstrap, tmp_lake)

    assert (batch.records_read, batch.rows_written, batch.quarantined) == (
        2 * good_count - 1,
        good_count,
        len(GOLDENGATE_POISON),
    )
    quarantine = {
        row["offset"]: row for row in spark.read.format("delta").load(str(tmp_lake / "quarantine")).collect()
    }
    offset_of = {kind: 2 * i + 1 for i, (kind, _, _) in enumerate(GOLDENGATE_POISON)}
    problems = _misbehaving(GOLDENGATE_POISON, quarantine, offset_of)
    assert not problems, "kinds that misbehaved:\n" + "\n".join(problems)
    assert sorted(quarantine) == sorted(offset_of.values())
    assert {row["partition"] for row in quarantine.values()} == {0}

    bronze = spark.read.format("delta").load(str(tmp_lake / "bronze")).orderBy("offset").collect()
    assert [row["offset"] for row in bronze] == [2 * i for i in range(good_count)]
    for row, (_, expected) in zip(bronze, shapes, strict=True):
        after = json.loads(row["after"])
        assert {column: after[column] for column in expected} == expected, row["offset"]


def test_debezium_poison_corpus_is_quarantined_and_a_tombstone_is_skipped(spark, kafka_bootstrap, tmp_lake):
    """Debezium's tombstone (null value after a delete) is legitimate: no bronze row, no quarantine row."""
    topic = Topic(kafka_bootstrap)
    good = [good_dbz(i + 1) for i in range(len(DEBEZIUM_POISON) + 1)]
    corpus = DEBEZIUM_POISON[:3] + [("tombstone", None, "")] + DEBEZIUM_POISON[3:]
    values = [good[0][0]]  # good, poison, good, ...; the tombstone follows a poison message directly
    good_offsets, offset_of = [0], {}
    good_left = iter(good[1:])
    for kind, value, _ in corpus:
        offset_of[kind] = len(values)
        values.append(value)
        if kind != "tombstone":
            good_offsets.append(len(values))
            values.append(next(good_left)[0])
    topic.produce(values, keyed=False)
    spec = TableSpec(
        table=DBZ_TABLE, topic=topic.name, format="debezium_json", keys=["id"], columns=DBZ_COLUMNS
    )

    batch = _ingest(spark, spec, kafka_bootstrap, tmp_lake)

    assert (batch.records_read, batch.rows_written, batch.quarantined) == (
        len(values),
        len(good),
        len(DEBEZIUM_POISON),
    )
    quarantine = {
        row["offset"]: row for row in spark.read.format("delta").load(str(tmp_lake / "quarantine")).collect()
    }
    problems = _misbehaving(DEBEZIUM_POISON, quarantine, offset_of)
    assert not problems, "kinds that misbehaved:\n" + "\n".join(problems)
    assert sorted(quarantine) == sorted(offset_of[kind] for kind, _, _ in DEBEZIUM_POISON)
    bronze = spark.read.format("delta").load(str(tmp_lake / "bronze")).orderBy("offset").collect()
    assert [row["offset"] for row in bronze] == good_offsets
    assert offset_of["tombstone"] not in good_offsets
    for row, (_, expected) in zip(bronze, good, strict=True):
        after = json.loads(row["after"])
        assert {column: after[column] for column in expected} == expected, row["offset"]
