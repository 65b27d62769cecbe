-- Gold entity `order_item`: one row per live order line (S_ORDER_ITEM), keyed by order_item_id
-- (its ROW_ID).
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
-- Specific to order_item: line_amount = NET_PRI * QTY_REQ (NULL if either is NULL), the amount the
-- gold order's total_amount adds up.
SELECT
    TRIM(i.ROW_ID) AS order_item_id,
    TRIM(i.ORDER_ID) AS order_id,
    i.LN_NUM AS line_number,
    TRIM(i.PROD_ID) AS product_id,
    i.QTY_REQ AS quantity,
    i.BASE_UNIT_PRI AS base_unit_price,
    i.NET_PRI AS net_price,
    i.DISCNT_PERCENT AS discount_percent,
    CAST(i.NET_PRI * i.QTY_REQ AS DECIMAL(38, 7)) AS line_amount,
    TRIM(i.ACTION_CD) AS action_code,
    lov.display['ORDER_ITEM_ACTION'][TRIM(i.ACTION_CD)] AS action,
    TRIM(i.STATUS_CD) AS status_code,
    lov.display['ORDER_ITEM_STATUS'][TRIM(i.STATUS_CD)] AS status,
    TRIM(i.ROOT_ORDER_ITEM_ID) AS root_order_item_id,
    TRIM(i.PAR_ORDER_ITEM_ID) AS parent_order_item_id,
    TRIM(i.SERVICE_NUM) AS service_number,
    TRIM(i.ASSET_INTEG_ID) AS asset_integration_id,
    i.CREATED AS created_at,
    TRIM(i.CREATED_BY) AS created_by,
    i.LAST_UPD AS last_updated_at,
    TRIM(i.LAST_UPD_BY) AS last_updated_by,
    i.MODIFICATION_NUM AS modification_number
FROM s_order_item AS i
CROSS JOIN lov
