-- Gold entity `order_item`: one row per live order line (S_ORDER_ITEM), keyed by order_item_id
-- (its ROW_ID).
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
-- Specific to order_item: line_amount = NET_PRI * QTY_REQ (NULL if either is NULL), the amount the
-- gold order's total_amount adds up.
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
)
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
    action.display_value AS action,
    TRIM(i.STATUS_CD) AS status_code,
    status.display_value AS status,
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
LEFT JOIN lov AS action ON action.lov_type = 'ORDER_ITEM_ACTION' AND action.lookup_code = TRIM(i.ACTION_CD)
LEFT JOIN lov AS status ON status.lov_type = 'ORDER_ITEM_STATUS' AND status.lookup_code = TRIM(i.STATUS_CD)
