"""The gold entities computed in plain Python from silver-like rows: the oracle for the gold SQL.

Written from the cleanup rules (docs/cdc-formats.md §3.8 and the SQL headers), not from the SQL: dicts,
loops and Python types. Input: `silver`, {asset name (s_contact, ...): [row, ...]} where a row maps
the source's column names to their text values (as the generator's truth gives them, CHAR padding
included, None for NULL) plus `_commit_ts` ('YYYY-MM-DD HH:MM:SS', UTC) and `_sequence`.
Output: {entity: {key: {column: value}}} with Python values as Spark collects them (str, bool, int,
Decimal, date, naive UTC datetime).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

Row = dict[str, str | None]
Silver = dict[str, list[Row]]

NO_MATCH = {"no match row id", "nomatchrowid"}
LOV_LANGUAGE = "ENU"


def text(value: str | None) -> str | None:
    return None if value is None else value.strip(" ")


def flag(value: str | None) -> bool | None:
    return {"Y": True, "N": False}.get(text(value))


def primary_id(value: str | None) -> str | None:
    value = text(value)
    return None if value is not None and value.lower() in NO_MATCH else value


def instant(value: str | None) -> datetime | None:
    """An Oracle DATE text, with a space or GoldenGate's colon between date and time."""
    return None if value is None else datetime.strptime(f"{value[:10]} {value[11:]}", "%Y-%m-%d %H:%M:%S")


def day(value: str | None) -> date | None:
    return None if value is None else instant(value).date()


def number(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def integer(value: str | None) -> int | None:
    return None if value is None else int(value)


def newest(row: Row) -> tuple[str, str]:
    return (row["_commit_ts"], row["_sequence"])


class ListOfValues:
    """(LOV type, code) -> display value: the ENU active row whose NAME is the code, else one whose
    VAL is the code; among several, the NAME match, then the newest row."""

    def __init__(self, rows: list[Row]) -> None:
        best: dict[tuple[str, str], tuple[tuple, str | None]] = {}
        for row in rows:
            if text(row["LANG_ID"]) != LOV_LANGUAGE or text(row["ACTIVE_FLG"]) != "Y":
                continue
            display = text(row["VAL"])
            for preference, code in ((1, text(row["NAME"])), (0, display)):
                if code is None:
                    continue
                rank = (preference, *newest(row))
                key = (text(row["TYPE"]), code)
                if key not in best or rank > best[key][0]:
                    best[key] = (rank, display)
        self._display = {key: display for key, (_, display) in best.items()}

    def decode(self, lov_type: str, code: str | None) -> str | None:
        code = text(code)
        return None if code is None else self._display.get((lov_type, code))


def by_key(rows: list[Row], column: str = "ROW_ID") -> dict[str, Row]:
    """Rows by a column's value; where several share it, the newest."""
    chosen: dict[str, Row] = {}
    for row in rows:
        value = row[column]
        if value is not None and (value not in chosen or newest(row) > newest(chosen[value])):
            chosen[value] = row
    return chosen


def system_columns(row: Row) -> dict:
    return {
        "created_at": instant(row["CREATED"]),
        "created_by": text(row["CREATED_BY"]),
        "last_updated_at": instant(row["LAST_UPD"]),
        "last_updated_by": text(row["LAST_UPD_BY"]),
        "modification_number": integer(row["MODIFICATION_NUM"]),
    }


def expected_gold(silver: Silver) -> dict[str, dict[str, dict]]:
    lov = ListOfValues(silver["s_lst_of_val"])
    return {
        "customer": customers(silver, lov),
        "account": accounts(silver, lov),
        "order": orders(silver, lov),
        "order_item": order_items(silver, lov),
        "product": products(silver, lov),
    }


def customers(silver: Silver, lov: ListOfValues) -> dict[str, dict]:
    extensions = by_key(silver["s_contact_x"], "PAR_ROW_ID")
    addresses = by_key(silver["s_addr_per"])
    accounts_by_id = by_key(silver["s_org_ext"])
    result = {}
    for c in silver["s_contact"]:
        x = extensions.get(c["ROW_ID"], {})
        address = addresses.get(c["PR_PER_ADDR_ID"], {})
        account = accounts_by_id.get(c["PR_DEPT_OU_ID"], {})
        result[text(c["ROW_ID"])] = {
            "customer_id": text(c["ROW_ID"]),
            "first_name": text(c["FST_NAME"]),
            "middle_name": text(c["MID_NAME"]),
            "last_name": text(c["LAST_NAME"]),
            "title": text(c["PER_TITLE"]),
            "gender": text(c["SEX_MF"]),
            "birth_date": day(c["BIRTH_DT"]),
            "email": text(c["EMAIL_ADDR"]),
            "work_phone": text(c["WORK_PH_NUM"]),
            "mobile_phone": text(c["CELL_PH_NUM"]),
            "job_title": text(c["JOB_TITLE"]),
            "contact_number": text(c["CSN"]),
            "contact_type_code": text(c["CON_CD"]),
            "contact_type": lov.decode("CONTACT_TYPE", c["CON_CD"]),
            "status_code": text(c["CUST_STAT_CD"]),
            "status": lov.decode("CONTACT_STATUS", c["CUST_STAT_CD"]),
            "preferred_contact_method_code": text(c["PREF_COMM_METH_CD"]),
            "preferred_contact_method": lov.decode("COMM_METHOD", c["PREF_COMM_METH_CD"]),
            "segment_code": text(c["X_SEGMENT_CD"]),
            "segment": lov.decode("CUSTOMER_SEGMENT", c["X_SEGMENT_CD"]),
            "is_employee": flag(c["EMP_FLG"]),
            "suppress_mail": flag(c["SUPPRESS_MAIL_FLG"]),
            "suppress_calls": flag(c["SUPPRESS_CALL_FLG"]),
            "send_newsletter": flag(c["SEND_NEWS_FLG"]),
            "is_private": flag(c["PRIV_FLG"]),
            "x_supprime": flag(c["X_SUPPRIME_FLG"]),
            "account_id": primary_id(c["PR_DEPT_OU_ID"]),
            "account_name": text(account.get("NAME")),
            "position_id": primary_id(c["PR_POSTN_ID"]),
            "primary_address_id": primary_id(c["PR_PER_ADDR_ID"]),
            "address_line_1": text(address.get("ADDR")),
            "address_line_2": text(address.get("ADDR_LINE_2")),
            "city": text(address.get("CITY")),
            "state": text(address.get("STATE")),
            "postal_code": text(address.get("ZIPCODE")),
            "country": text(address.get("COUNTRY")),
            "address_type_code": text(address.get("ADDR_TYPE_CD")),
            "address_type": lov.decode("ADDRESS_TYPE", address.get("ADDR_TYPE_CD")),
            "comments": text(c["COMMENTS"]),
            "attrib_01": text(x.get("ATTRIB_01")),
            "attrib_02": text(x.get("ATTRIB_02")),
            "attrib_03": text(x.get("ATTRIB_03")),
            "attrib_04": text(x.get("ATTRIB_04")),
            "attrib_05": text(x.get("ATTRIB_05")),
            "attrib_08": text(x.get("ATTRIB_08")),
            "attrib_09": text(x.get("ATTRIB_09")),
            "attrib_14": number(x.get("ATTRIB_14")),
            "attrib_15": integer(x.get("ATTRIB_15")),
            "attrib_16": number(x.get("ATTRIB_16")),
            "attrib_26": day(x.get("ATTRIB_26")),
            "attrib_27": day(x.get("ATTRIB_27")),
            "attrib_34": text(x.get("ATTRIB_34")),
            "industry": text(x.get("ATTRIB_48")),
            **system_columns(c),
        }
    return result


def accounts(silver: Silver, lov: ListOfValues) -> dict[str, dict]:
    result = {}
    for a in silver["s_org_ext"]:
        result[text(a["ROW_ID"])] = {
            "account_id": text(a["ROW_ID"]),
            "name": text(a["NAME"]),
            "location": text(a["LOC"]),
            "account_number": text(a["OU_NUM"]),
            "business_unit_id": text(a["BU_ID"]),
            "account_type_code": text(a["ACCNT_TYPE_CD"]),
            "account_type": lov.decode("ACCOUNT_TYPE", a["ACCNT_TYPE_CD"]),
            "status_code": text(a["CUST_STAT_CD"]),
            "status": lov.decode("ACCOUNT_STATUS", a["CUST_STAT_CD"]),
            "is_internal": flag(a["INT_ORG_FLG"]),
            "is_prospect": flag(a["PROSPECT_FLG"]),
            "is_active": flag(a["ACTIVE_FLG"]),
            "primary_contact_id": primary_id(a["PR_CON_ID"]),
            "primary_address_id": primary_id(a["PR_ADDR_ID"]),
            "primary_position_id": primary_id(a["PR_POSTN_ID"]),
            "main_phone": text(a["MAIN_PH_NUM"]),
            "main_fax": text(a["MAIN_FAX_PH_NUM"]),
            "website": text(a["URL"]),
            "description": text(a["DESC_TEXT"]),
            "annual_revenue": number(a["X_ANNUAL_REVN"]),
            "market_segment": text(a["X_PTI1_SEGMENT"]),
            **system_columns(a),
        }
    return result


def line_amount(item: Row) -> Decimal | None:
    price, quantity = number(item["NET_PRI"]), number(item["QTY_REQ"])
    return None if price is None or quantity is None else price * quantity


def orders(silver: Silver, lov: ListOfValues) -> dict[str, dict]:
    counts: dict[str, int] = {}
    totals: dict[str, Decimal] = {}
    for item in silver["s_order_item"]:
        order_id = item["ORDER_ID"]
        counts[order_id] = counts.get(order_id, 0) + 1
        amount = line_amount(item)
        totals[order_id] = totals.get(order_id, Decimal(0)) + (amount if amount is not None else Decimal(0))
    result = {}
    for o in silver["s_order"]:
        result[text(o["ROW_ID"])] = {
            "order_id": text(o["ROW_ID"]),
            "order_number": text(o["ORDER_NUM"]),
            "revision": integer(o["REV_NUM"]),
            "ordered_at": instant(o["ORDER_DT"]),
            "status_code": text(o["STATUS_CD"]),
            "status": lov.decode("ORDER_STATUS", o["STATUS_CD"]),
            "category_code": text(o["ORDER_CAT_CD"]),
            "category": lov.decode("ORDER_CATEGORY", o["ORDER_CAT_CD"]),
            "on_hold": flag(o["HOLD_FLG"]),
            "account_id": text(o["ACCNT_ID"]),
            "billing_account_id": text(o["BILL_ACCNT_ID"]),
            "contact_id": text(o["CONTACT_ID"]),
            "billing_address_id": text(o["BL_ADDR_ID"]),
            "currency_code": text(o["CURCY_CD"]),
            "discount_percent": number(o["DISCNT_PERCENT"]),
            "freight_amount": number(o["FRGHT_AMT"]),
            "position_id": primary_id(o["PR_POSTN_ID"]),
            "description": text(o["DESC_TEXT"]),
            "sub_type": text(o["X_ORDER_SUB_TYPE"]),
            "reason_code": text(o["X_REASON_CODE"]),
            "item_count": counts.get(o["ROW_ID"], 0),
            "total_amount": totals.get(o["ROW_ID"], Decimal(0)),
            **system_columns(o),
        }
    return result


def order_items(silver: Silver, lov: ListOfValues) -> dict[str, dict]:
    result = {}
    for i in silver["s_order_item"]:
        result[text(i["ROW_ID"])] = {
            "order_item_id": text(i["ROW_ID"]),
            "order_id": text(i["ORDER_ID"]),
            "line_number": integer(i["LN_NUM"]),
            "product_id": text(i["PROD_ID"]),
            "quantity": number(i["QTY_REQ"]),
            "base_unit_price": number(i["BASE_UNIT_PRI"]),
            "net_price": number(i["NET_PRI"]),
            "discount_percent": number(i["DISCNT_PERCENT"]),
            "line_amount": line_amount(i),
            "action_code": text(i["ACTION_CD"]),
            "action": lov.decode("ORDER_ITEM_ACTION", i["ACTION_CD"]),
            "status_code": text(i["STATUS_CD"]),
            "status": lov.decode("ORDER_ITEM_STATUS", i["STATUS_CD"]),
            "root_order_item_id": text(i["ROOT_ORDER_ITEM_ID"]),
            "parent_order_item_id": text(i["PAR_ORDER_ITEM_ID"]),
            "service_number": text(i["SERVICE_NUM"]),
            "asset_integration_id": text(i["ASSET_INTEG_ID"]),
            **system_columns(i),
        }
    return result


def products(silver: Silver, lov: ListOfValues) -> dict[str, dict]:
    result = {}
    for p in silver["s_prod_int"]:
        result[text(p["ROW_ID"])] = {
            "product_id": text(p["ROW_ID"]),
            "name": text(p["NAME"]),
            "part_number": text(p["PART_NUM"]),
            "description": text(p["DESC_TEXT"]),
            "product_type_code": text(p["PROD_TYPE_CD"]),
            "product_type": lov.decode("PRODUCT_TYPE", p["PROD_TYPE_CD"]),
            "unit_of_measure_code": text(p["UOM_CD"]),
            "unit_of_measure": lov.decode("UNIT_OF_MEASURE", p["UOM_CD"]),
            "status_code": text(p["STATUS_CD"]),
            "status": lov.decode("PRODUCT_STATUS", p["STATUS_CD"]),
            "is_sales_product": flag(p["SALES_PROD_FLG"]),
            "is_orderable": flag(p["ORDERABLE_FLG"]),
            "effective_start_date": day(p["EFF_START_DT"]),
            "effective_end_date": day(p["EFF_END_DT"]),
            "vendor_account_id": text(p["VENDR_OU_ID"]),
            "list_price": number(p["X_LIST_PRICE"]),
            "product_family": text(p["X_PROD_FAMILY"]),
            **system_columns(p),
        }
    return result


# -- for the tests that compare gold with this oracle -------------------------------------------------


def truth_as_silver(truth: dict[str, dict[str, dict]], specs) -> Silver:
    """The generator's true source tables (workload.state(as_text_values=True)) as this module's input:
    live rows with `_commit_ts`/`_sequence` (ordered by DB_LAST_UPD; they only break ties, and the
    truth must have none that matter: see ambiguous_lookups)."""
    silver = {spec.asset_name: [dict(row) for row in truth[spec.table].values()] for spec in specs}
    for rows in silver.values():
        for row in rows:
            row["_commit_ts"], row["_sequence"] = str(instant(row["DB_LAST_UPD"])), ""
    return silver


def ambiguous_lookups(silver: Silver) -> list:
    """LOV codes with two English candidates of equal rank, extension rows sharing a parent: the cases
    where the cleanup picks the newest row, which a test built on the truth cannot order."""
    seen: dict[tuple, int] = {}
    for row in silver["s_lst_of_val"]:
        if (row["LANG_ID"] or "").strip() == "ENU" and (row["ACTIVE_FLG"] or "").strip() == "Y":
            for rank, code in (("name", row["NAME"]), ("val", row["VAL"])):
                key = (rank, (row["TYPE"] or "").strip(), (code or "").strip())
                seen[key] = seen.get(key, 0) + 1
    parents: dict[str, int] = {}
    for row in silver["s_contact_x"]:
        parents[row["PAR_ROW_ID"]] = parents.get(row["PAR_ROW_ID"], 0) + 1
    return [k for k, n in seen.items() if n > 1 and k[0] == "name"] + [p for p, n in parents.items() if n > 1]


def read_gold(spark, path: str, key: str) -> dict[str, dict]:
    """A gold Delta table as {key: row}, timestamps as naive UTC datetimes (the session time zone is UTC)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    table = spark.read.format("delta").load(path)
    columns = [
        F.col(f"`{f.name}`").cast("timestamp_ntz").alias(f.name)
        if isinstance(f.dataType, TimestampType)
        else F.col(f"`{f.name}`")
        for f in table.schema
    ]
    return {row[key]: row.asDict() for row in table.select(*columns).collect()}


def differences(gold: dict[str, dict], expected: dict[str, dict]) -> list:
    """What differs between two {key: row} tables: missing and unexpected keys, columns, values."""
    found = [("missing key", k) for k in sorted(expected.keys() - gold.keys())]
    found += [("unexpected key", k) for k in sorted(gold.keys() - expected.keys())]
    for key in sorted(expected.keys() & gold.keys()):
        if set(gold[key]) != set(expected[key]):
            found.append(("columns", key, sorted(set(gold[key]) ^ set(expected[key]))))
            continue
        found += [(key, c, gold[key][c], v) for c, v in expected[key].items() if gold[key][c] != v]
    return found
