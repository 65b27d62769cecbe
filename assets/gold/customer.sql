-- Gold entity `customer`: one row per live contact (S_CONTACT), keyed by customer_id (its ROW_ID).
-- Folded in: the contact's one-to-one extension S_CONTACT_X (on PAR_ROW_ID), its primary address
-- S_ADDR_PER (PR_PER_ADDR_ID) and the name of its account S_ORG_EXT (PR_DEPT_OU_ID).
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
-- Specific to customer:
--   * ATTRIB_nn of the extension are deployment-specific (rule 10): passed through under their own
--     names, except ATTRIB_48, which Siebel documents as Industry.
--   * If silver ever holds two extension rows for one contact, the one changed last is used.
WITH extension AS (
    SELECT *
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY PAR_ROW_ID ORDER BY _commit_ts DESC, _sequence DESC) AS pick
        FROM s_contact_x
    ) AS ranked
    WHERE pick = 1
)
SELECT
    TRIM(c.ROW_ID) AS customer_id,
    TRIM(c.FST_NAME) AS first_name,
    TRIM(c.MID_NAME) AS middle_name,
    TRIM(c.LAST_NAME) AS last_name,
    TRIM(c.PER_TITLE) AS title,
    TRIM(c.SEX_MF) AS gender,
    c.BIRTH_DT AS birth_date,
    TRIM(c.EMAIL_ADDR) AS email,
    TRIM(c.WORK_PH_NUM) AS work_phone,
    TRIM(c.CELL_PH_NUM) AS mobile_phone,
    TRIM(c.JOB_TITLE) AS job_title,
    TRIM(c.CSN) AS contact_number,
    TRIM(c.CON_CD) AS contact_type_code,
    lov.display['CONTACT_TYPE'][TRIM(c.CON_CD)] AS contact_type,
    TRIM(c.CUST_STAT_CD) AS status_code,
    lov.display['CONTACT_STATUS'][TRIM(c.CUST_STAT_CD)] AS status,
    TRIM(c.PREF_COMM_METH_CD) AS preferred_contact_method_code,
    lov.display['COMM_METHOD'][TRIM(c.PREF_COMM_METH_CD)] AS preferred_contact_method,
    TRIM(c.X_SEGMENT_CD) AS segment_code,
    lov.display['CUSTOMER_SEGMENT'][TRIM(c.X_SEGMENT_CD)] AS segment,
    CASE TRIM(c.EMP_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_employee,
    CASE TRIM(c.SUPPRESS_MAIL_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS suppress_mail,
    CASE TRIM(c.SUPPRESS_CALL_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS suppress_calls,
    CASE TRIM(c.SEND_NEWS_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS send_newsletter,
    CASE TRIM(c.PRIV_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS is_private,
    CASE TRIM(c.X_SUPPRIME_FLG) WHEN 'Y' THEN TRUE WHEN 'N' THEN FALSE END AS x_supprime,
    CASE WHEN LOWER(TRIM(c.PR_DEPT_OU_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(c.PR_DEPT_OU_ID) END AS account_id,
    TRIM(account.NAME) AS account_name,
    CASE WHEN LOWER(TRIM(c.PR_POSTN_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(c.PR_POSTN_ID) END AS position_id,
    CASE WHEN LOWER(TRIM(c.PR_PER_ADDR_ID)) IN ('no match row id', 'nomatchrowid') THEN NULL
         ELSE TRIM(c.PR_PER_ADDR_ID) END AS primary_address_id,
    TRIM(address.ADDR) AS address_line_1,
    TRIM(address.ADDR_LINE_2) AS address_line_2,
    TRIM(address.CITY) AS city,
    TRIM(address.STATE) AS state,
    TRIM(address.ZIPCODE) AS postal_code,
    TRIM(address.COUNTRY) AS country,
    TRIM(address.ADDR_TYPE_CD) AS address_type_code,
    lov.display['ADDRESS_TYPE'][TRIM(address.ADDR_TYPE_CD)] AS address_type,
    TRIM(c.COMMENTS) AS comments,
    TRIM(x.ATTRIB_01) AS attrib_01,
    TRIM(x.ATTRIB_02) AS attrib_02,
    TRIM(x.ATTRIB_03) AS attrib_03,
    TRIM(x.ATTRIB_04) AS attrib_04,
    TRIM(x.ATTRIB_05) AS attrib_05,
    TRIM(x.ATTRIB_08) AS attrib_08,
    TRIM(x.ATTRIB_09) AS attrib_09,
    x.ATTRIB_14 AS attrib_14,
    x.ATTRIB_15 AS attrib_15,
    x.ATTRIB_16 AS attrib_16,
    x.ATTRIB_26 AS attrib_26,
    x.ATTRIB_27 AS attrib_27,
    TRIM(x.ATTRIB_34) AS attrib_34,
    TRIM(x.ATTRIB_48) AS industry,
    c.CREATED AS created_at,
    TRIM(c.CREATED_BY) AS created_by,
    c.LAST_UPD AS last_updated_at,
    TRIM(c.LAST_UPD_BY) AS last_updated_by,
    c.MODIFICATION_NUM AS modification_number
FROM s_contact AS c
CROSS JOIN lov
LEFT JOIN extension AS x ON x.PAR_ROW_ID = c.ROW_ID
LEFT JOIN s_addr_per AS address ON address.ROW_ID = c.PR_PER_ADDR_ID
LEFT JOIN s_org_ext AS account ON account.ROW_ID = c.PR_DEPT_OU_ID
