"""The order service's gold entities computed in plain Python from the generator's truth, the rules of
assets/gold/service_order.sql and order_event.sql written again independently (values as
OrderServiceWorkload.state(as_text_values=True) gives them)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def expected_service_orders(truth: dict[str, dict[str, dict]]) -> dict[int, dict]:
    lines = list(truth["public.order_lines"].values())
    payments = list(truth["public.payments"].values())
    result = {}
    for order in truth["public.orders"].values():
        own_lines = [line for line in lines if line["order_id"] == order["id"]]
        paid = Decimal(0)
        for payment in payments:
            if payment["order_id"] == order["id"]:
                sign = {"captured": 1, "refunded": -1}.get((payment["status"] or "").strip().lower(), 0)
                paid += sign * Decimal(payment["amount"])
        total = Decimal(order["total"])
        result[int(order["id"])] = {
            "order_id": int(order["id"]),
            "customer_id": order["customer_id"].strip(),
            "status": order["status"].strip().upper(),
            "currency": order["currency"].strip().upper(),
            "total": total,
            "line_count": len(own_lines),
            "lines_total": sum(
                (int(line["quantity"]) * Decimal(line["unit_price"]) for line in own_lines), Decimal(0)
            ),
            "paid_amount": paid,
            "balance_due": total - paid,
            "created_at": _instant(order["created_at"]),
            "updated_at": _instant(order["updated_at"]),
        }
    return result


def expected_order_events(events: list[dict]) -> dict[str, dict]:
    """The committed outbox events about orders, by event id (columns of gold order_event but the
    source's commit time and position, which the truth does not hold)."""
    return {
        event["id"]: {
            "event_id": event["id"],
            "order_id": event["aggregateid"].strip(),
            "event_type": event["type"].strip(),
            "status": json.loads(event["payload"]).get("status"),
            "payload": event["payload"],
            "created_at": _instant(event["created_at"]),
        }
        for event in events
        if event["aggregatetype"].strip() == "order"
    }
