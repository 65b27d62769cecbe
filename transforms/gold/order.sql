-- Gold entity `order`: one row per live order header (S_ORDER), keyed by order_id (its ROW_ID),
-- with the totals of its live lines (S_ORDER_ITEM.ORDER_ID).
--
-- Cleanup rules (docs/cdc-formats.md §3.8), the same in every gold SQL file:
--   * Strings are trimmed (CHAR padding goes). ROW_IDs stay strings, never re-cased.
--   * PR_*_ID holding the No-Match sentinel ('No Match Row Id' or 'NoMatchRowId', any case) -> NULL.
--   * *_FLG: 'Y' -> true, 'N' -> false, NULL or anything else -> NULL. Tri-state on purpose: a flag
--     the source did not fill is unknown, not "no".
--   * *_CD list-of-values codes: the trimmed code is kept as <name>_code, its display value is <name>:
--     the VAL of the S_LST_OF_VAL row with TYPE = the column's LOV type, NAME = the code,
--     LANG_ID 'ENU' and ACTIVE_FLG 'Y'; if no NAME matches, a row of that type whose VAL is the code
--     (MLOV columns may store the display value); neither: NULL. Of several candidates the NAME match
--     wins, then the row changed last (_commit_ts, _sequence): one value per code, never more rows.
--   * CREATED / LAST_UPD are Siebel "UTC Date Time": silver types them as TIMESTAMP in the platform's
--     UTC session time zone (orchestration/spark_session.py), so they are the UTC instants stored at
--     the source and pass through unchanged. DATE columns stay dates.
--   * Dropped: DCKING_NUM (obsolete), CONFLICT_ID, DB_LAST_UPD(_SRC), PAR_ROW_ID and silver's _columns.
-- Specific to order:
--   * item_count: the order's live lines; total_amount: the sum of their line amounts, NET_PRI * QTY_REQ
--     (the net unit price times the quantity, as in gold order_item.line_amount). A line missing
--     either adds nothing; an order without lines has item_count 0 and total_amount 0.
--   * FRGHT_AMT and DISCNT_PERCENT are header fields, reported as they are, not applied to the total.
--   * ORDER_DT (ordered_at) is typed TIMESTAMP by its spec and passes through like CREATED.
--   * X_ORDER_SUB_TYPE and X_REASON_CODE are the deployment's order sub type and reason code.
WITH lov AS (
    SELECT lov_type, lookup_code, display_value
    FROM (
        SELECT *,
               ROW_NUMBER() OVER (PARTITION BY lov_type, lookup_code
                                  ORDER BY match_rank, changed_at DESC, change_sequence DESC) AS pick
        FROM (
            SELECT TRIM(TYPE) AS lov_type, TRIM(NAME) AS lookup_code, TRIM(VAL) AS display_value,
                   1 AS match_rank, _commit_ts AS changed_at, _sequence AS change_sequence
            FROM s_lst_of_val
            WHERE TRIM(LANG_ID) = 'ENU' AND TRIM(ACTIVE_FLG) = 'Y'
            UNION ALL
            SELECT TRIM(TYPE), TRIM(VAL), TRIM(VAL), 2, _commit_ts, _sequence
            FROM s_lst_of_val
            WHERE TRIM(LANG_ID) = 'ENU' AND TRIM(ACTIVE_FLG) = 'Y'
        ) AS candidates
    ) AS ranked
    WHERE pick = 1
),
line_totals AS (
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
    status.display_value AS status,
    TRIM(o.ORDER_CAT_CD) AS category_code,
    category.display_value AS category,
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
LEFT JOIN line_totals ON line_totals.ORDER_ID = o.ROW_ID
LEFT JOIN lov AS status ON status.lov_type = 'ORDER_STATUS' AND status.lookup_code = TRIM(o.STATUS_CD)
LEFT JOIN lov AS category ON category.lov_type = 'ORDER_CATEGORY' AND category.lookup_code = TRIM(o.ORDER_CAT_CD)
