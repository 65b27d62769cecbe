-- Gold entity `account`: one row per live account (S_ORG_EXT), keyed by account_id (its ROW_ID).
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
-- Specific to account: X_PTI1_SEGMENT is the deployment's market segment (a padded CHAR(30)).
SELECT
    TRIM(a.ROW_ID) AS account_id,
    TRIM(a.NAME) AS name,
    TRIM(a.LOC) AS location,
    TRIM(a.OU_NUM) AS account_number,
    TRIM(a.BU_ID) AS business_unit_id,
    TRIM(a.ACCNT_TYPE_CD) AS account_type_code,
    lov.display['ACCOUNT_TYPE'][TRIM(a.ACCNT_TYPE_CD)] AS account_type,
    TRIM(a.CUST_STAT_CD) AS status_code,
    lov.display['ACCOUNT_STATUS'][TRIM(a.CUST_STAT_CD)] AS status,
    CASE TRIM(a.INT_ORG_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_internal,
    CASE TRIM(a.PROSPECT_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_prospect,
    CASE TRIM(a.ACTIVE_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_active,
    CASE WHEN LOWER(TRIM(a.PR_CON_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(a.PR_CON_ID) END AS primary_contact_id,
    CASE WHEN LOWER(TRIM(a.PR_ADDR_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(a.PR_ADDR_ID) END AS primary_address_id,
    CASE WHEN LOWER(TRIM(a.PR_POSTN_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(a.PR_POSTN_ID) END AS primary_position_id,
    TRIM(a.MAIN_PH_NUM) AS main_phone,
    TRIM(a.MAIN_FAX_PH_NUM) AS main_fax,
    TRIM(a.URL) AS website,
    TRIM(a.DESC_TEXT) AS description,
    a.X_ANNUAL_REVN AS annual_revenue,
    TRIM(a.X_PTI1_SEGMENT) AS market_segment,
    a.CREATED AS created_at,
    TRIM(a.CREATED_BY) AS created_by,
    a.LAST_UPD AS last_updated_at,
    TRIM(a.LAST_UPD_BY) AS last_updated_by,
    a.MODIFICATION_NUM AS modification_number
FROM s_org_ext AS a
CROSS JOIN lov
