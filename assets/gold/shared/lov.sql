-- Shared view `lov`: every list-of-values lookup at once, as ONE row holding the map
-- display[<LOV type>][<code>] -> display value. An entity SQL that reads `lov` gets this query as its
-- first CTE (assets/gold_spec.py); it joins it once (`CROSS JOIN lov`) and decodes each *_CD column with
-- `lov.display['<LOV type>'][TRIM(<code column>)]`: NULL when the type or the code has no entry.
--
-- The rule: the display value of a code is the VAL of the S_LST_OF_VAL row with TYPE = the column's LOV
-- type, NAME = the code, LANG_ID 'ENU' and ACTIVE_FLG 'Y'; if no NAME matches, a row of that type whose
-- VAL is the code (MLOV columns may store the display value); neither: NULL. Of several candidates the
-- NAME match wins, then the row changed last (_commit_ts, _sequence): one value per code.
--
-- One row instead of a join per lookup: Spark reads the list of values once per query, not once per
-- decoded column (a customer row decodes five codes).
SELECT map_from_entries(collect_list(struct(lov_type, codes))) AS display
FROM (
    SELECT lov_type, map_from_entries(collect_list(struct(lookup_code, display_value))) AS codes
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
    WHERE pick = 1 AND lov_type IS NOT NULL AND lookup_code IS NOT NULL
    GROUP BY lov_type
) AS lov_types
