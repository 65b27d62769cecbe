-- Gold entity `order`: one row per live order header (S_ORDER), keyed by order_id (its ROW_ID),
-- with the totals of its live lines (S_ORDER_ITEM.ORDER_ID).
--
-- Cleanup rules (docs/cdc-formats.md §3.8), the same in every gold SQL file:
--   * Strings are trimmed (CHAR padding goes). ROW_IDs stay strings, never re-cased.
--   * PR_*_ID holding the No-Match sentinel ('No Match Row Id' or 'NoMatchRowId', any case) -> NULL.
--   * *_FLG: 'Y' -> true, 'N' -> false, NULL or anything else -> NULL. Tri-state on purpose: a flag
--     the source did not fill is unknown, not "no".
--   * *_CD list-of-values codes: the trimmed code is kept as <name>_code, its display value is <name>
--     (the shared view `lov`, assets/gold/shared/lov.sql, says which row gives it).
--   * CREATED / LAST_UPD are Siebel "UTC Date Time": silver types them as TIMESTAMP in the platform's
--     UTC session time zone (resources/spark_session.py), so they are the UTC instants stored at
--     the source and pass through unchanged. DATE columns stay dates.
--   * Dropped: DCKING_NUM (obsolete), CONFLICT_ID, DB_LAST_UPD(_SRC), PAR_ROW_ID and silver's _columns.
-- Specific to order:
--   * item_count: the order's live lines; total_amount: the sum of their line amounts, NET_PRI * QTY_REQ
--     (the net unit price times the quantity, as in gold order_item.line_amount). A line missing
--     either adds nothing; an order without lines has item_count 0 and total_amount 0.
--   * FRGHT_AMT and DISCNT_PERCENT are header fields, reported as they are, not applied to the total.
--   * ORDER_DT (ordered_at) is typed TIMESTAMP by its spec and passes through like CREATED.
--   * X_ORDER_SUB_TYPE and X_REASON_CODE are the deployment's order sub type and reason code.
WITH line_totals AS (
    SELECT ORDER_ID,
           COUNT(*) AS item_count,
           SUM(CAST(NET_PRI * QTY_REQ AS DECIMAL(38, 7))) AS total_amount
    FROM s_order_item
    GROUP BY ORDER_ID
)
SELECT
    TRIM(o.ROW_ID) AS order_id,
    TRIM(o.ORDER_NUM) AS order_number,
    o.REV_NUM AS revision,
    o.ORDER_DT AS ordered_at,
    TRIM(o.STATUS_CD) AS status_code,
    lov.display['ORDER_STATUS'][TRIM(o.STATUS_CD)] AS status,
    TRIM(o.ORDER_CAT_CD) AS category_code,
    lov.display['ORDER_CATEGORY'][TRIM(o.ORDER_CAT_CD)] AS category,
    CASE TRIM(o.HOLD_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS on_hold,
    TRIM(o.ACCNT_ID) AS account_id,
    TRIM(o.BILL_ACCNT_ID) AS billing_account_id,
    TRIM(o.CONTACT_ID) AS contact_id,
    TRIM(o.BL_ADDR_ID) AS billing_address_id,
    TRIM(o.CURCY_CD) AS currency_code,
    o.DISCNT_PERCENT AS discount_percent,
    o.FRGHT_AMT AS freight_amount,
    CASE WHEN LOWER(TRIM(o.PR_POSTN_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(o.PR_POSTN_ID) END AS position_id,
    TRIM(o.DESC_TEXT) AS description,
    TRIM(o.X_ORDER_SUB_TYPE) AS sub_type,
    TRIM(o.X_REASON_CODE) AS reason_code,
    COALESCE(line_totals.item_count, 0) AS item_count,
    COALESCE(line_totals.total_amount, CAST(0 AS DECIMAL(38, 7))) AS total_amount,
    o.CREATED AS created_at,
    TRIM(o.CREATED_BY) AS created_by,
    o.LAST_UPD AS last_updated_at,
    TRIM(o.LAST_UPD_BY) AS last_updated_by,
    o.MODIFICATION_NUM AS modification_number
FROM s_order AS o
CROSS JOIN lov
LEFT JOIN line_totals ON line_totals.ORDER_ID = o.ROW_ID
