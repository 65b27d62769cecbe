"""The simulated order service, the platform's second source next to the Siebel CRM: a small
order-management application on a Postgres database `orders`, captured by Debezium's Postgres
connector (debezium_postgres.py). Its orders name CRM contacts (customer_id = a contact's ROW_ID).

The database (schema public; every key is `id`, from a sequence or a uuid):
- orders (REPLICA IDENTITY DEFAULT): customer_id, status (NEW, PAID, SHIPPED, DELIVERED, CANCELLED),
  currency, total = the sum of its lines' quantity * unit_price, notes, created_at, updated_at (set
  by every update). notes is kept out of line (`SET (toast_tuple_target = 128)`, `ALTER COLUMN notes
  SET STORAGE EXTERNAL`), so an update that leaves it alone does not log it (TOAST).
- order_lines (REPLICA IDENTITY FULL): order_id, line_no, sku, quantity, unit_price.
- payments (REPLICA IDENTITY DEFAULT): order_id, amount, method, status (captured, refunded), paid_at.
- outbox (Debezium's outbox event router columns): the service inserts each domain event and deletes
  it in the same transaction, so the table stays empty while the WAL, and the connector, see both.

Sequences are not transactional: a rolled-back transaction burns the ids it drew. Row timestamps are
now(), the transaction's start; its commit follows a moment later. txIds and WAL lsns only grow;
rolled-back transactions use some too.

The run (generate_order_service): `initial_orders` orders (NEW or PAID) exist before the capture
starts; the connector snapshots them at `start_time`, then streams `changes` business transactions
(a share of the create-order ones roll back). After `restart_at` of them the connector restarts and
re-delivers its last `redelivered` records (at least once), as soon as those hold an outbox event.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.workload import json_text
from devtools.workload.capture import WorkloadMessage
from devtools.workload.debezium_postgres import (
    CommittedTransaction,
    PostgresConnector,
    Sent,
    TableSetup,
    columns,
)
from devtools.workload.source_db import Row, RowChange

State = dict[str, dict[str, Row]]  # "public.orders" -> id as text -> row
COLUMNS = {  # the tables' column lists, as in their DDL
    "orders": "id bigint, customer_id text, status text, currency char(3), total numeric(12,2), notes text, created_at timestamptz, updated_at timestamptz",
    "order_lines": "id bigint, order_id bigint, line_no integer, sku text, quantity integer, unit_price numeric(12,2)",
    "payments": "id bigint, order_id bigint, amount numeric(12,2), method text, status text, paid_at timestamptz",
    "outbox": "id uuid, aggregatetype text, aggregateid text, type text, payload jsonb, created_at timestamptz",
}
TABLES = {
    "orders": TableSetup("orders", columns(COLUMNS["orders"]), toasted=("notes",)),
    "order_lines": TableSetup("order_lines", columns(COLUMNS["order_lines"]), replica_identity="FULL"),
    "payments": TableSetup(
        "payments", columns(COLUMNS["payments"]), schemas=True, decimal_handling="precise"
    ),
    "outbox": TableSetup("outbox", columns(COLUMNS["outbox"])),
}
SNAPSHOT_ORDER = ("order_lines", "orders", "payments")  # the connector reads tables in name order
FIRST_IDS = {"orders": 1001, "order_lines": 5001, "payments": 9001}
EVENT_TYPES = {"NEW": "OrderCreated", "PAID": "OrderPaid", "SHIPPED": "OrderShipped"}
EVENT_TYPES |= {"DELIVERED": "OrderDelivered", "CANCELLED": "OrderCancelled"}
TARGETS = {"pay": ("NEW",), "ship": ("PAID",), "deliver": ("SHIPPED",), "cancel": ("NEW", "PAID")}
TARGETS |= {"edit_notes": tuple(EVENT_TYPES), "change_quantity": ("NEW",), "remove_line": ("NEW",)}
TARGETS |= {"delete_order": ("CANCELLED", "DELIVERED")}  # the statuses of the orders each can act on
DEFAULT_WEIGHTS = {"create": 24.0, "pay": 16.0, "ship": 10.0, "deliver": 8.0, "cancel": 5.0}
DEFAULT_WEIGHTS |= {"edit_notes": 10.0, "change_quantity": 10.0, "remove_line": 6.0}
DEFAULT_WEIGHTS |= {"renumber_line": 4.0, "delete_order": 7.0}
MOVES = {"ship": "SHIPPED", "deliver": "DELIVERED"}  # business transactions that only move the status
METHODS = ("card", "transfer", "paypal")
PHRASES = (  # what the notes are made of
    "Customer asked for gift wrapping and a printed invoice; Deliver to the side entrance after nine; "
    "Call ahead if the parcel is late; Warehouse confirmed stock for every item; Keep the original "
    "packaging for returns; Loyalty discount applied by the sales team; Billing address differs from the "
    "delivery address; Fragile, glass inside; Leave with the neighbour if nobody answers"
).split("; ")


@dataclass(frozen=True)
class OrderServiceConfig:
    """seed: same seed and settings -> byte-identical records. initial_orders: orders before the
    capture starts. changes: business transactions streamed (rolled-back ones included).
    rollback_rate: share of create-order transactions that roll back. redelivered: records the
    connector sends again after its restart, at `restart_at` (share of `changes`). start_time:
    the snapshot (naive UTC); commits then move forward by seeded steps independent of it."""

    seed: int = 11
    initial_orders: int = 30
    changes: int = 300
    rollback_rate: float = 0.05
    redelivered: int = 12
    restart_at: float = 2 / 3
    customer_ids: tuple[str, ...] = ("1-5XQ2", "1-7KD9", "1-9AB3", "1-2MN7", "1-4PQ8", "1-8ZR1")
    topic_template: str = "orders.public.{table}"
    start_time: datetime = datetime(2024, 3, 1, 8, 0, 0)
    operation_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        if min(self.initial_orders, self.changes, self.redelivered) < 0:
            raise ValueError("initial_orders, changes and redelivered are counts (>= 0)")
        if not (0 <= self.rollback_rate <= 1 and 0 <= self.restart_at <= 1):
            raise ValueError("rollback_rate and restart_at are shares between 0 and 1")
        unknown = set(self.operation_weights) - set(DEFAULT_WEIGHTS)
        if unknown or self.operation_weights.get("create", 0) <= 0:
            raise ValueError(f"operation_weights: use {sorted(DEFAULT_WEIGHTS)}, create above 0")
        if "{table}" not in self.topic_template or not self.customer_ids:
            raise ValueError("topic_template needs {table}; customer_ids needs an id")


def value_text(value: Any) -> str | None:
    """A source value as the decoder's canonical text: digits, 2-digit decimals, naive UTC times."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    return value


@dataclass(frozen=True)
class OrderServiceWorkload:
    """messages: every record in sending order (snapshot, stream, re-delivery). final_state: the
    tables' rows at the end; events: the outbox events committed while captured, in commit order."""

    messages: list[WorkloadMessage]
    final_state: State
    events: list[Row]
    rolled_back_order_ids: list[str]
    redelivered_event_ids: list[str]
    ended_at: datetime

    def state(self, as_text_values: bool = False) -> State:
        """Every table by id as text, with public.outbox as its committed events (each once)."""
        tables = {**self.final_state, "public.outbox": {event["id"]: event for event in self.events}}
        convert = value_text if as_text_values else (lambda v: v)
        return {
            t: {k: {c: convert(v) for c, v in r.items()} for k, r in rows.items()}
            for t, rows in tables.items()
        }

    def topics(self) -> list[str]:
        return sorted({m.topic for m in self.messages})


class OrderDatabase:
    """The Postgres database: rows by id, sequences, txIds and the WAL position (lsn). Writes happen
    in a transaction: begin(), then insert/update/delete, then commit() or rollback()."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: dict[str, dict[Any, Row]] = {table: {} for table in TABLES}
        self._next_ids = dict(FIRST_IDS)
        self._xid, self.lsn = 5_840, 709_820_416
        self._changes: list[tuple[int, RowChange]] = []

    def nextval(self, table: str) -> int:
        self._next_ids[table] += 1
        return self._next_ids[table] - 1

    def begin(self) -> int:
        self._xid += self.rng.randint(1, 4)  # other sessions' transactions take xids too
        self._changes = []
        return self._xid

    def insert(self, table: str, row: Row) -> None:
        self.rows[table][row["id"]] = dict(row)
        self._log(RowChange(table, "I", new_row=dict(row)))

    def update(self, table: str, key: Any, **values: Any) -> None:
        old = self.rows[table][key]
        new = {**old, **values}
        if new["id"] != key:
            del self.rows[table][key]
        self.rows[table][new["id"]] = new
        self._log(RowChange(table, "U", old_row=dict(old), new_row=dict(new), changed=tuple(values)))

    def delete(self, table: str, key: Any) -> None:
        self._log(RowChange(table, "D", old_row=self.rows[table].pop(key)))

    def commit(self, at: datetime) -> CommittedTransaction:
        self.lsn += self.rng.randint(24, 64)  # the commit record
        return CommittedTransaction(self._xid, self._changes, self.lsn, at)

    def rollback(self) -> None:
        for _, change in reversed(self._changes):
            rows = self.rows[change.table]
            if change.new_row is not None:
                del rows[change.new_row["id"]]
            if change.old_row is not None:
                rows[change.old_row["id"]] = change.old_row
        self.lsn += self.rng.randint(24, 64)  # the abort record

    def sorted_rows(self, table: str) -> list[Row]:
        return [dict(self.rows[table][key]) for key in sorted(self.rows[table])]

    def _log(self, change: RowChange) -> None:
        self.lsn += self.rng.randint(56, 480)
        self._changes.append((self.lsn, change))


class OrderService:
    """The application code: each business transaction's statements (the caller begins and ends the
    transaction). The outbox events it writes collect in `written_events`."""

    def __init__(self, db: OrderDatabase, rng: random.Random, customer_ids: tuple[str, ...]) -> None:
        self.db, self.rng, self.customer_ids = db, rng, customer_ids
        self.products = [
            (f"SKU-{10_007 + 37 * n}", Decimal(rng.randint(199, 24_999)).scaleb(-2)) for n in range(24)
        ]
        self.written_events: list[Row] = []

    def choose(self, weights: dict[str, float]) -> tuple[str, Any]:
        """A business transaction (weighted, among those with something to act on) and its target."""
        lines = Counter(line["order_id"] for line in self.db.rows["order_lines"].values())
        orders = self.db.rows["orders"].values()
        options = {
            op: [o["id"] for o in orders if o["status"] in statuses] for op, statuses in TARGETS.items()
        }
        options |= {"create": [None], "renumber_line": sorted(self.db.rows["order_lines"])}
        options["remove_line"] = [o for o in options["remove_line"] if lines[o] > 1]
        names = [op for op, weight in weights.items() if weight > 0 and options[op]]
        operation = self.rng.choices(names, [weights[op] for op in names])[0]
        return operation, self.rng.choice(options[operation])

    def run(self, operation: str, target: Any, now: datetime) -> int | None:
        """Run one business transaction's statements; a create returns its new order's id."""
        if operation == "create":
            return self.create_order(now)
        if operation in MOVES:
            self._set_status(target, MOVES[operation], now)
        else:
            getattr(self, operation)(target, now)
        return None

    def create_order(self, now: datetime) -> int:
        order_id, lines = self.db.nextval("orders"), []
        for line_no in range(1, self.rng.randint(1, 4) + 1):
            sku, price = self.rng.choice(self.products)
            line: Row = {"id": self.db.nextval("order_lines"), "order_id": order_id, "line_no": line_no}
            lines.append({**line, "sku": sku, "quantity": self.rng.randint(1, 5), "unit_price": price})
        customer, currency = self.rng.choice(self.customer_ids), self.rng.choice(("EUR", "USD", "GBP"))
        order: Row = {"id": order_id, "customer_id": customer, "status": "NEW", "currency": currency}
        order |= {"total": _total(lines), "notes": self._notes(), "created_at": now, "updated_at": now}
        self.db.insert("orders", order)
        for line in lines:
            self.db.insert("order_lines", line)
        self._event(order, "OrderCreated", now)
        return order_id

    def pay(self, order_id: int, now: datetime) -> None:
        payment: Row = {"id": self.db.nextval("payments"), "order_id": order_id}
        payment |= {"amount": self.db.rows["orders"][order_id]["total"], "method": self.rng.choice(METHODS)}
        self.db.insert("payments", {**payment, "status": "captured", "paid_at": now})
        self._set_status(order_id, "PAID", now)

    def cancel(self, order_id: int, now: datetime) -> None:
        for payment in self._rows_of("payments", order_id):
            self.db.update("payments", payment["id"], status="refunded")
        self._set_status(order_id, "CANCELLED", now)

    def edit_notes(self, order_id: int, now: datetime) -> None:
        self.db.update("orders", order_id, notes=self._notes(), updated_at=now)

    def change_quantity(self, order_id: int, now: datetime) -> None:
        line = self.rng.choice(self._rows_of("order_lines", order_id))
        quantity = self.rng.choice([q for q in range(1, 7) if q != line["quantity"]])
        self.db.update("order_lines", line["id"], quantity=quantity)
        self._retotal(order_id, now)

    def remove_line(self, order_id: int, now: datetime) -> None:
        self.db.delete("order_lines", self.rng.choice(self._rows_of("order_lines", order_id))["id"])
        self._retotal(order_id, now)

    def renumber_line(self, line_id: int, now: datetime) -> None:
        """A key change: the line moves to a new id from the sequence."""
        self.db.update("order_lines", line_id, id=self.db.nextval("order_lines"))

    def delete_order(self, order_id: int, now: datetime) -> None:
        for table in ("order_lines", "payments"):
            for row in self._rows_of(table, order_id):
                self.db.delete(table, row["id"])
        order = self.db.rows["orders"][order_id]
        self.db.delete("orders", order_id)
        self._event(order, "OrderDeleted", now)

    def _set_status(self, order_id: int, status: str, now: datetime) -> None:
        self.db.update("orders", order_id, status=status, updated_at=now)
        self._event(self.db.rows["orders"][order_id], EVENT_TYPES[status], now)

    def _retotal(self, order_id: int, now: datetime) -> None:
        self.db.update(
            "orders", order_id, total=_total(self._rows_of("order_lines", order_id)), updated_at=now
        )

    def _event(self, order: Row, event_type: str, now: datetime) -> None:
        """Write the domain event to the outbox and delete it again (the connector sees both)."""
        payload = {"order_id": order["id"], "status": order["status"], "total": format(order["total"], "f")}
        event: Row = {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "aggregatetype": "order",
        }
        event |= {"aggregateid": str(order["id"]), "type": event_type, "payload": _jsonb(payload)}
        event["created_at"] = now
        self.db.insert("outbox", event)
        self.db.delete("outbox", event["id"])
        self.written_events.append(event)

    def _rows_of(self, table: str, order_id: int) -> list[Row]:
        return sorted(
            (r for r in self.db.rows[table].values() if r["order_id"] == order_id), key=lambda r: r["id"]
        )

    def _notes(self) -> str:
        """A long free text: several hundred characters of sentences."""
        text, length = self.rng.choice(PHRASES), self.rng.randint(300, 700)
        while len(text) < length:
            text += ". " + self.rng.choice(PHRASES)
        return text + "."


def _total(lines: list[Row]) -> Decimal:
    return sum((line["quantity"] * line["unit_price"] for line in lines), Decimal("0.00"))


def _jsonb(document: dict[str, Any]) -> str:
    """Postgres's jsonb output text: keys by length then bytes, `", "` and `": "` between."""
    items = sorted(document.items(), key=lambda item: (len(item[0]), item[0]))
    return "{" + ", ".join(f"{json_text.dumps(k)}: {json_text.dumps(v)}" for k, v in items) + "}"


def _after(moment: datetime, rng: random.Random, low_us: int, high_us: int) -> datetime:
    return moment + timedelta(microseconds=rng.randint(low_us, high_us))


def _initial_orders(service: OrderService, config: OrderServiceConfig, rng: random.Random) -> None:
    """The orders placed (and some paid) in the 30 days before the capture starts; not captured."""
    ages = [rng.randint(3_600 * 10**6, 30 * 86_400 * 10**6) for _ in range(config.initial_orders)]
    paid = []
    for age in sorted(ages, reverse=True):
        created = config.start_time - timedelta(microseconds=age)
        service.db.begin()
        order_id = service.create_order(created)
        service.db.commit(_after(created, rng, 800, 40_000))
        if rng.random() < 0.5:
            paid.append((_after(created, rng, 60 * 10**6, 3_000 * 10**6), order_id))
    for at, order_id in sorted(paid):
        service.db.begin()
        service.pay(order_id, at)
        service.db.commit(_after(at, rng, 800, 40_000))
    service.written_events.clear()


def generate_order_service(config: OrderServiceConfig) -> OrderServiceWorkload:
    """Build the initial orders, snapshot them, stream the business transactions (see the module doc)."""
    rng = random.Random(config.seed)
    db = OrderDatabase(rng)
    service = OrderService(db, rng, config.customer_ids)
    _initial_orders(service, config, rng)
    connector = PostgresConnector(TABLES, config.topic_template, rng, config.start_time)
    snapshot_xid = db.begin()
    connector.snapshot(
        {t: db.sorted_rows(t) for t in SNAPSHOT_ORDER}, db.lsn, snapshot_xid, config.start_time
    )
    streamed_from, restart_after = len(connector.sent), round(config.changes * config.restart_at)
    events: list[Row] = []
    rolled_back: list[str] = []
    redelivered: list[Sent] | None = None if config.redelivered else []
    now = ended_at = config.start_time
    for number in range(1, config.changes + 1):
        begin = _after(now, rng, 300_000, 90_000_000)
        now = _after(begin, rng, 800, 40_000)
        operation, target = service.choose(config.operation_weights)
        db.begin()
        created = service.run(operation, target, begin)
        if created is not None and rng.random() < config.rollback_rate:
            db.rollback()
            service.written_events.clear()
            rolled_back.append(str(created))
            continue
        connector.stream(db.commit(now))
        events += service.written_events
        service.written_events.clear()
        ended_at = now
        if redelivered is None and number >= restart_after and _can_restart(connector, streamed_from, config):
            redelivered = connector.redeliver(config.redelivered)
    if redelivered is None and len(connector.sent) - streamed_from >= config.redelivered:
        redelivered = connector.redeliver(config.redelivered)  # no window with an outbox event came
    redelivered_ids = [event_id for s in redelivered or [] if (event_id := _outbox_event(s.change))]
    final_state = {f"public.{t}": {str(row["id"]): row for row in db.sorted_rows(t)} for t in SNAPSHOT_ORDER}
    return OrderServiceWorkload(
        messages=[s.message for s in connector.sent],
        final_state={t: final_state[t] for t in ("public.orders", "public.order_lines", "public.payments")},
        events=events,
        rolled_back_order_ids=rolled_back,
        redelivered_event_ids=redelivered_ids,
        ended_at=ended_at,
    )


def _outbox_event(change: RowChange | None) -> str | None:
    """The event id of an outbox insert; None for any other change (or a tombstone)."""
    if change is None or change.table != "outbox" or change.op != "I" or change.new_row is None:
        return None
    return change.new_row["id"]


def _can_restart(connector: PostgresConnector, streamed_from: int, config: OrderServiceConfig) -> bool:
    """The connector restarts once its last `redelivered` streamed records hold an outbox event."""
    if len(connector.sent) - streamed_from < config.redelivered:
        return False
    return any(_outbox_event(s.change) for s in connector.sent[len(connector.sent) - config.redelivered :])
