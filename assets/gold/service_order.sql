-- Gold entity `service_order`: one row per live order of the order service (source `orders`, Postgres
-- public.orders via Debezium), keyed by order_id (its bigint id), with what its live lines and
-- payments add up to.
--
-- Cleanup rules:
--   * status and currency are trimmed and upper-cased (the service writes them so; a hand-edited row
--     may not).
--   * line_count / lines_total: the order's live lines (order_lines.order_id), quantity * unit_price
--     summed; an order without lines has 0 and 0. `total` is the service's own stored total, kept
--     beside it: a difference between the two is the service's business, shown, not repaired.
--   * paid_amount: its captured payments summed, minus refunded ones; 0 without payments.
--     balance_due = total - paid_amount.
--   * customer_id is the CRM contact's ROW_ID (gold customer.customer_id), trimmed.
--   * timestamps are the service's timestamptz values, in UTC. `notes` (free text) is not projected.
WITH line_totals AS (
    SELECT order_id,
           COUNT(*) AS line_count,
           SUM(CAST(quantity * unit_price AS DECIMAL(38, 2))) AS lines_total
    FROM order_lines
    GROUP BY order_id
),
payment_totals AS (
    SELECT order_id,
           SUM(CASE LOWER(TRIM(status))
                   WHEN 'captured' THEN amount
                   WHEN 'refunded' THEN -amount
                   ELSE 0
               END) AS paid_amount
    FROM payments
    GROUP BY order_id
)
SELECT
    o.id AS order_id,
    TRIM(o.customer_id) AS customer_id,
    UPPER(TRIM(o.status)) AS status,
    UPPER(TRIM(o.currency)) AS currency,
    o.total,
    COALESCE(l.line_count, 0) AS line_count,
    COALESCE(l.lines_total, CAST(0 AS DECIMAL(38, 2))) AS lines_total,
    CAST(COALESCE(p.paid_amount, 0) AS DECIMAL(38, 2)) AS paid_amount,
    CAST(o.total - COALESCE(p.paid_amount, 0) AS DECIMAL(38, 2)) AS balance_due,
    o.created_at,
    o.updated_at
FROM orders AS o
LEFT JOIN line_totals AS l ON l.order_id = o.id
LEFT JOIN payment_totals AS p ON p.order_id = o.id
