-- Gold entity `product`: one row per live product (S_PROD_INT), keyed by product_id (its ROW_ID).
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
-- Specific to product: X_PROD_FAMILY is the deployment's product family (a padded CHAR(30)).
SELECT
    TRIM(p.ROW_ID) AS product_id,
    TRIM(p.NAME) AS name,
    TRIM(p.PART_NUM) AS part_number,
    TRIM(p.DESC_TEXT) AS description,
    TRIM(p.PROD_TYPE_CD) AS product_type_code,
    lov.display['PRODUCT_TYPE'][TRIM(p.PROD_TYPE_CD)] AS product_type,
    TRIM(p.UOM_CD) AS unit_of_measure_code,
    lov.display['UNIT_OF_MEASURE'][TRIM(p.UOM_CD)] AS unit_of_measure,
    TRIM(p.STATUS_CD) AS status_code,
    lov.display['PRODUCT_STATUS'][TRIM(p.STATUS_CD)] AS status,
    CASE TRIM(p.SALES_PROD_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_sales_product,
    CASE TRIM(p.ORDERABLE_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_orderable,
    p.EFF_START_DT AS effective_start_date,
    p.EFF_END_DT AS effective_end_date,
    TRIM(p.VENDR_OU_ID) AS vendor_account_id,
    p.X_LIST_PRICE AS list_price,
    TRIM(p.X_PROD_FAMILY) AS product_family,
    p.CREATED AS created_at,
    TRIM(p.CREATED_BY) AS created_by,
    p.LAST_UPD AS last_updated_at,
    TRIM(p.LAST_UPD_BY) AS last_updated_by,
    p.MODIFICATION_NUM AS modification_number
FROM s_prod_int AS p
CROSS JOIN lov
