"""A small raw fixture in the build database's `raw_<source>.<entity>` shape (contracts.md section 4).

Column names and types follow what cxw.loader copies in (vendor names, `__`-flattened objects, HubSpot properties
as strings, GA4 INT64 as strings, nested event_params) plus `_load_id`, `_extracted_at`, `_record_seq`.
Every KPI value the tests assert is computed by hand from the rows below (see test_dbt_fixture.py).

Boundary rows (issue 22; `build(db, boundary_rows=True)`, as test_dbt_fixture.py builds it): every KPI rule's
threshold is held by rows on both sides of it, on days of their own (first load, L1) so the other days'
hand-computed values stay as they were:
    NPS 0/6 | 7/8 | 9/10 (2025-03-09), a response at 23:59:59.999 and one at 00:00:00 the next day (day boundary);
    CSAT 1..5 (03-10: 2/3 | 4/5); CES 1/4 | 5/7 (03-11); out-of-scale answers at each scale's edge (NPS -1, CSAT 0
    and 6, CES 0 and 8: quarantined); reviews rated 1/2 | 3 | 4 (03-12) and review replies exactly at the alert's
    48 h due time (not a closed loop) and 1 h before it (closed); GA4 (export day 20250304) a session exactly 10 s
    long (not engaged) and one 10.5 s long (engaged), 1 vs 2 page views, session_engaged '0', a session with two
    purchases (converts once); 30 and 29 sessions on 03-05 / 03-06 (low-sample threshold 30); deliveries done exactly
    at the scheduled time (on time) and 1 s after it (late) on 03-06; a 'sent' quotation (not an order).

    python tests/dbt/raw_fixture.py /tmp/fixture.duckdb
"""
from __future__ import annotations

import sys
from pathlib import Path

L1 = "{src}-20250310T000000-aaaaaaaa"
L2 = "{src}-20250320T000000-bbbbbbbb"
EXTRACTED = {L1: "2025-03-10 00:00:00", L2: "2025-03-20 00:00:00"}


def _q(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _table(con, name: str, cols: list[tuple[str, str]], rows: list[tuple], src: str) -> None:
    """rows: (load, *values); _record_seq counts per load."""
    schema = name.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    coldefs = ", ".join(f'"{c}" {t}' for c, t in cols)
    con.execute(f"create or replace table {name} ({coldefs}, _load_id varchar, _extracted_at timestamp, _record_seq bigint)")
    seq: dict[str, int] = {}
    for load, *vals in rows:
        lid = load.format(src=src)
        s = seq.get(lid, 0)
        seq[lid] = s + 1
        values = ", ".join(v if isinstance(v, _Raw) else _q(v) for v in vals)
        con.execute(f"insert into {name} values ({values}, {_q(lid)}, {_q(EXTRACTED[load])}, {s})")


class _Raw(str):
    """A SQL expression inserted verbatim (nested GA4 values)."""


def _param(key: str, s: str | None = None, i: str | None = None) -> str:
    return ("{'key': %s, 'value': {'string_value': %s, 'int_value': %s, 'float_value': NULL, 'double_value': NULL}}"
            % (_q(key), _q(s), _q(i)))


def build(db_path: str | Path, boundary_rows: bool = False) -> None:
    """Write the fixture; `boundary_rows` adds the KPI boundary rows (test_dbt_fixture.py builds with them)."""
    import duckdb

    con = duckdb.connect(str(db_path))
    try:
        _odoo(con, boundary_rows)
        _hubspot(con, boundary_rows)
        _reviews(con, boundary_rows)
        _ga4(con, boundary_rows)
        _declared_but_empty(con)
    finally:
        con.close()


def _declared_but_empty(con) -> None:
    """Every raw table of cxw/raw_contract.yml this fixture has no rows for (an optional source such as review_files)
    exists empty with the contract's columns, as the loader creates it before a source's first row."""
    from cxw.loader import raw_contract

    have = {(s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()}
    for source, entities in raw_contract().items():
        for entity, cols in entities.items():
            if (f"raw_{source}", entity) not in have:
                _table(con, f"raw_{source}.{entity}", list(cols.items()), [], source)


def _odoo(con, b: bool = False) -> None:
    V = "varchar"
    _table(con, "raw_odoo.res_country", [("id", "bigint"), ("code", V), ("name", V)],
           [(L1, 1, "VN", '{"en_US": "Vietnam"}'), (L1, 2, "FR", '{"en_US": "France"}')], "odoo")
    _table(con, "raw_odoo.res_currency", [("id", "bigint"), ("name", V), ("symbol", V)], [(L1, 1, "USD", "$")], "odoo")
    _table(con, "raw_odoo.crm_team", [("id", "bigint"), ("name", V), ("active", "boolean")],
           [(L1, 1, '{"en_US": "Website"}', True), (L1, 2, '{"en_US": "Store"}', True)], "odoo")
    pcols = [("id", "bigint"), ("name", V), ("complete_name", V), ("email", V), ("phone", V), ("is_company", "boolean"),
             ("customer_rank", "bigint"), ("supplier_rank", "bigint"), ("city", V), ("country_id", "bigint"), ("type", V),
             ("active", "boolean"), ("create_date", V), ("write_date", V)]
    _table(con, "raw_odoo.res_partner", pcols, [
        (L1, 1, "Anna Nguyen", "Anna Nguyen", "Anna@Example.com ", "+84 90 123 4567", False, 1, 0, "Hanoi", 1, "contact", True,
         "2025-01-05 10:00:00", "2025-01-05 10:00:00"),
        (L1, 2, "Bob Martin", "Bob Martin", "bob@example.com", "+33 6 11 22 33 44", False, 1, 0, "Paris", 2, "contact", True,
         "2025-01-06 10:00:00", "2025-01-06 10:00:00"),
        (L1, 3, "Carol Tran", "Carol Tran", "carol.groß@example.com", None, False, 0, 0, "Hue", 1, "contact", True,
         "2025-01-07 10:00:00", "2025-01-07 10:00:00"),
        # Anna's second ERP record (a new account at checkout): the same e-mail in other case / spaces -> the same
        # person; her April order S00004 is placed under it
        (L1, 6, "Anna Nguyen", "Anna Nguyen", " anna@EXAMPLE.com", "+84 90 123 4567", False, 1, 0, "Hanoi", 1, "contact",
         True, "2025-02-01 10:00:00", "2025-02-01 10:00:00"),
        # a later version of Bob (phone changed): the L1 row becomes a duplicate
        (L2, 2, "Bob Martin", "Bob Martin", "bob@example.com", "+33 6 99 88 77 66", False, 1, 0, "Paris", 2, "contact", True,
         "2025-01-06 10:00:00", "2025-03-15 08:00:00"),
        # unparseable write_date -> bad_timestamp
        (L2, 4, "Broken Row", "Broken Row", "broken@example.com", None, False, 0, 0, None, None, "contact", True,
         "2025-01-08 10:00:00", "2025-13-45 99:00:00"),
    ], "odoo")
    _table(con, "raw_odoo.product_category", [("id", "bigint"), ("name", V), ("complete_name", V), ("parent_id", "bigint"),
                                              ("create_date", V), ("write_date", V)],
           [(L1, 1, "Coffee", "All / Coffee", None, "2024-01-01 00:00:00", "2024-01-01 00:00:00")], "odoo")
    _table(con, "raw_odoo.product_template", [("id", "bigint"), ("name", V), ("detailed_type", V), ("type", V),
                                              ("list_price", "double"), ("categ_id", "bigint"), ("sale_ok", "boolean"),
                                              ("active", "boolean"), ("create_date", V), ("write_date", V)],
           [(L1, 1, '{"en_US": "Arabica Beans"}', "product", "product", 12.5, 1, True, True,
             "2024-01-01 00:00:00", "2024-01-01 00:00:00")], "odoo")
    _table(con, "raw_odoo.product_product", [("id", "bigint"), ("product_tmpl_id", "bigint"), ("default_code", V),
                                             ("active", "boolean"), ("create_date", V), ("write_date", V)],
           [(L1, 1, 1, "ARA-250", True, "2024-01-01 00:00:00", "2024-01-01 00:00:00")], "odoo")
    ocols = [("id", "bigint"), ("name", V), ("partner_id", "bigint"), ("partner_invoice_id", "bigint"),
             ("partner_shipping_id", "bigint"), ("date_order", V), ("state", V), ("locked", "boolean"),
             ("commitment_date", V), ("amount_untaxed", "double"), ("amount_tax", "double"), ("amount_total", "double"),
             ("currency_id", "bigint"), ("team_id", "bigint"), ("user_id", "bigint"), ("company_id", "bigint"),
             ("create_date", V), ("write_date", V)]
    _table(con, "raw_odoo.sale_order", ocols, [
        (L1, 1, "S00001", 1, 1, 1, "2025-03-01 09:00:00", "sale", False, None, 100.0, 21.0, 121.0, 1, 1, 2, 1,
         "2025-03-01 08:00:00", "2025-03-01 09:00:00"),
        (L1, 2, "S00002", 2, 2, 2, "2025-03-02 10:00:00", "sale", False, None, 200.0, 42.0, 242.0, 1, 1, 2, 1,
         "2025-03-02 09:00:00", "2025-03-02 10:00:00"),
        (L1, 3, "S00003", 3, 3, 3, "2025-03-03 10:00:00", "draft", False, None, 80.0, 16.8, 96.8, 1, 2, 2, 1,
         "2025-03-03 10:00:00", "2025-03-03 10:00:00"),
        # boundary: a quotation sent to the customer is not a confirmed order (only state 'sale' is)
        *[(L1, 6, "S00006", 2, 2, 2, "2025-03-02 15:00:00", "sent", False, None, 70.0, 14.7, 84.7, 1, 1, 2, 1,
         "2025-03-02 14:00:00", "2025-03-02 15:00:00")][:b],
        (L2, 4, "S00004", 6, 6, 6, "2025-04-10 12:00:00", "sale", False, None, 50.0, 10.5, 60.5, 1, 1, 2, 1,
         "2025-04-10 11:00:00", "2025-04-10 12:00:00"),
        (L2, 5, "S00005", 2, 2, 2, "2025-04-11 12:00:00", "cancel", False, None, 30.0, 6.3, 36.3, 1, 1, 2, 1,
         "2025-04-11 11:00:00", "2025-04-12 12:00:00"),
    ], "odoo")
    lcols = [("id", "bigint"), ("order_id", "bigint"), ("product_id", "bigint"), ("name", V), ("product_uom_qty", "double"),
             ("price_unit", "double"), ("discount", "double"), ("price_subtotal", "double"), ("price_tax", "double"),
             ("price_total", "double"), ("state", V), ("create_date", V), ("display_type", V), ("write_date", V)]
    _table(con, "raw_odoo.sale_order_line", lcols, [
        (L1, 1, 1, 1, "[ARA-250] Arabica", 8, 12.5, 0, 100.0, 21.0, 121.0, "sale", "2025-03-01 08:00:00", None, "2025-03-01 09:00:00"),
        (L1, 2, 1, None, "Coffee", 0, 0, 0, 0, 0, 0, "sale", "2025-03-01 08:00:00", "line_section", "2025-03-01 09:00:00"),
        (L1, 3, 2, 1, "[ARA-250] Arabica", 16, 12.5, 0, 200.0, 42.0, 242.0, "sale", "2025-03-02 09:00:00", None, "2025-03-02 10:00:00"),
        (L1, 4, 3, 1, "[ARA-250] Arabica", 8, 10.0, 0, 80.0, 16.8, 96.8, "draft", "2025-03-03 10:00:00", None, "2025-03-03 10:00:00"),
        *[(L1, 7, 6, 1, "[ARA-250] Arabica", 7, 10.0, 0, 70.0, 14.7, 84.7, "sent", "2025-03-02 14:00:00", None,
            "2025-03-02 15:00:00")][:b],
        (L2, 5, 4, 1, "[ARA-250] Arabica", 4, 12.5, 0, 50.0, 10.5, 60.5, "sale", "2025-04-10 11:00:00", None, "2025-04-10 12:00:00"),
        (L2, 6, 5, 1, "[ARA-250] Arabica", 3, 10.0, 0, 30.0, 6.3, 36.3, "cancel", "2025-04-11 11:00:00", None, "2025-04-12 12:00:00"),
    ], "odoo")
    _table(con, "raw_odoo.stock_picking_type", [("id", "bigint"), ("name", V), ("code", V), ("sequence_code", V)],
           [(L1, 1, '{"en_US": "Receipts"}', "incoming", "IN"), (L1, 2, '{"en_US": "Delivery Orders"}', "outgoing", "OUT")],
           "odoo")
    kcols = [("id", "bigint"), ("name", V), ("origin", V), ("sale_id", "bigint"), ("partner_id", "bigint"),
             ("picking_type_id", "bigint"), ("scheduled_date", V), ("date_deadline", V), ("date_done", V), ("state", V),
             ("create_date", V), ("write_date", V)]
    _table(con, "raw_odoo.stock_picking", kcols, [
        # on time (done before scheduled)
        (L1, 1, "WH/OUT/00001", "S00001", 1, 1, 2, "2025-03-03 17:00:00", "2025-03-04 17:00:00", "2025-03-03 12:00:00",
         "done", "2025-03-01 09:01:00", "2025-03-03 12:00:00"),
        # late
        (L1, 2, "WH/OUT/00002", "S00002", 2, 2, 2, "2025-03-03 17:00:00", "2025-03-04 17:00:00", "2025-03-03 20:00:00",
         "done", "2025-03-02 10:01:00", "2025-03-03 20:00:00"),
        # incoming: not a delivery
        (L1, 3, "WH/IN/00001", None, None, 2, 1, "2025-03-03 10:00:00", None, "2025-03-03 09:00:00",
         "done", "2025-03-01 09:01:00", "2025-03-03 09:00:00"),
        # boundary: done exactly at the scheduled time -> on time; 1 s after it -> late
        *[(L1, 5, "WH/OUT/00004", "S00001", 1, 1, 2, "2025-03-06 12:00:00", "2025-03-07 12:00:00", "2025-03-06 12:00:00",
         "done", "2025-03-05 09:00:00", "2025-03-06 12:00:00"),
        (L1, 6, "WH/OUT/00005", "S00002", 2, 2, 2, "2025-03-06 12:00:00", "2025-03-07 12:00:00", "2025-03-06 12:00:01",
         "done", "2025-03-05 09:00:00", "2025-03-06 12:00:01")][:2 * b],
        # not done yet
        (L2, 4, "WH/OUT/00003", "S00004", 4, 6, 2, "2025-04-12 17:00:00", "2025-04-13 17:00:00", None,
         "assigned", "2025-04-10 12:01:00", "2025-04-10 12:01:00"),
    ], "odoo")


def _hubspot(con, b: bool = False) -> None:
    V = "varchar"
    ccols = [("id", V), ("createdAt", V), ("updatedAt", V), ("archived", "boolean"), ("properties__email", V),
             ("properties__firstname", V), ("properties__lastname", V), ("properties__phone", V),
             ("properties__lifecyclestage", V), ("properties__createdate", V), ("properties__lastmodifieddate", V),
             ("properties__hs_object_id", V)]
    _table(con, "raw_hubspot.contacts", ccols, [
        (L1, "100001", "2025-01-05T10:00:00.000Z", "2025-01-05T10:00:00.000Z", False, "ANNA@EXAMPLE.COM  ", "Anna", "Nguyen",
         "+84 901234567", "customer", "2025-01-05T10:00:00.000Z", "2025-01-05T10:00:00.000Z", "100001"),
        (L1, "100002", "2025-01-09T10:00:00.000Z", "2025-01-09T10:00:00.000Z", False, "dave@example.com", "Dave", "Smith",
         None, "lead", "2025-01-09T10:00:00.000Z", "2025-01-09T10:00:00.000Z", "100002"),
        # Carol typed in capitals: 'groß'.upper() == 'GROSS' -> must still match the ERP's 'carol.groß@...'
        (L1, "100003", "2025-01-10T10:00:00.000Z", "2025-01-10T10:00:00.000Z", False, "CAROL.GROSS@EXAMPLE.COM", "Carol",
         "Tran", None, "customer", "2025-01-10T10:00:00.000Z", "2025-01-10T10:00:00.000Z", "100003"),
    ], "hubspot")
    _table(con, "raw_hubspot.companies", [("id", V), ("createdAt", V), ("updatedAt", V), ("archived", "boolean"),
                                          ("properties__name", V), ("properties__domain", V)],
           [(L1, "200001", "2024-06-01T00:00:00Z", "2024-06-01T00:00:00Z", False, "Bean Co", "beanco.example.net")], "hubspot")
    _table(con, "raw_hubspot.deals", [("id", V), ("createdAt", V), ("updatedAt", V), ("archived", "boolean"),
                                      ("properties__dealname", V), ("properties__amount", V), ("properties__dealstage", V),
                                      ("properties__pipeline", V), ("properties__closedate", V)],
           [(L1, "300001", "2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z", False, "B2B order", "1500.00", "closedwon",
             "default", "2025-02-10T00:00:00Z")], "hubspot")
    tcols = [("id", V), ("createdAt", V), ("updatedAt", V), ("archived", "boolean"), ("properties__subject", V),
             ("properties__hs_pipeline_stage", V), ("properties__hs_ticket_priority", V),
             ("properties__hs_ticket_category", V), ("properties__createdate", V), ("properties__closed_date", V),
             ("properties__first_agent_reply_date", V)]
    _table(con, "raw_hubspot.tickets", tcols, [
        # created 03-04 10:00, first reply +2h, closed +10h
        (L1, "400001", "2025-03-04T10:00:00.000Z", "2025-03-04T20:00:00.000Z", False, "Where is my order?", "4", "HIGH",
         "DELIVERY", "2025-03-04T10:00:00.000Z", "2025-03-04T20:00:00.000Z", "2025-03-04T12:00:00.000Z"),
        # created 03-05 08:00, first reply +6h, still open
        (L1, "400002", "2025-03-05T08:00:00.000Z", "2025-03-05T14:00:00.000Z", False, "Refund", "2", "LOW",
         "BILLING", "2025-03-05T08:00:00.000Z", None, "2025-03-05T14:00:00.000Z"),
    ], "hubspot")
    fcols = [("id", V), ("createdAt", V), ("updatedAt", V), ("archived", "boolean"), ("properties__hs_survey_type", V),
             ("properties__hs_value", V), ("properties__hs_content", V), ("properties__hs_submission_timestamp", V),
             ("properties__hs_contact_id", V), ("properties__hs_survey_channel", V)]
    f = []
    nps = [("500001", "10"), ("500002", "9"), ("500003", "7"), ("500004", "3")]
    for i, (fid, v) in enumerate(nps):
        ts = f"2025-03-05T0{i}:00:00.000Z"
        f.append((L1, fid, ts, ts, False, "NPS", v, "ok", ts, "100001", "WEB"))
    # 500005: an older version (score 4) in L1 and its edit (score 9) in L2: the L2 version wins
    f.append((L1, "500005", "2025-03-05T05:00:00.000Z", "2025-03-05T05:00:00.000Z", False, "NPS", "4", None,
              "2025-03-05T05:00:00.000Z", "100002", "EMAIL"))
    f.append((L2, "500005", "2025-03-05T05:00:00.000Z", "2025-03-12T05:00:00.000Z", False, "NPS", "9", None,
              "2025-03-05T05:00:00.000Z", "100002", "EMAIL"))
    for i, (fid, v) in enumerate([("500011", "5"), ("500012", "4"), ("500013", "2")]):
        ts = f"2025-03-06T0{i}:00:00.000Z"
        f.append((L1, fid, ts, ts, False, "CSAT", v, None, ts, "100001", "EMAIL"))
    for i, (fid, v) in enumerate([("500021", "6"), ("500022", "3")]):
        ts = f"2025-03-07T0{i}:00:00.000Z"
        f.append((L1, fid, ts, ts, False, "CES", v, None, ts, "100002", "CHAT"))
    # boundary rows (Carol, contact 100003): NPS 0/6 detractors, 7/8 passives, 9/10 promoters on 03-09 - the 10 at
    # 23:59:59.999 still 03-09 - and a 9 at 00:00:00.000 on 03-10; CSAT 1..5 on 03-10; CES 1, 4, 5, 7 on 03-11
    bnd = [("500101", "NPS", "0", "2025-03-09T01:00:00.000Z"), ("500102", "NPS", "6", "2025-03-09T02:00:00.000Z"),
           ("500103", "NPS", "7", "2025-03-09T03:00:00.000Z"), ("500104", "NPS", "8", "2025-03-09T04:00:00.000Z"),
           ("500105", "NPS", "9", "2025-03-09T05:00:00.000Z"), ("500106", "NPS", "9", "2025-03-09T06:00:00.000Z"),
           ("500107", "NPS", "10", "2025-03-09T23:59:59.999Z"), ("500108", "NPS", "9", "2025-03-10T00:00:00.000Z"),
           ("500111", "CSAT", "1", "2025-03-10T01:00:00.000Z"), ("500112", "CSAT", "2", "2025-03-10T02:00:00.000Z"),
           ("500113", "CSAT", "3", "2025-03-10T03:00:00.000Z"), ("500114", "CSAT", "4", "2025-03-10T04:00:00.000Z"),
           ("500115", "CSAT", "5", "2025-03-10T05:00:00.000Z"),
           ("500121", "CES", "1", "2025-03-11T01:00:00.000Z"), ("500122", "CES", "4", "2025-03-11T02:00:00.000Z"),
           ("500123", "CES", "5", "2025-03-11T03:00:00.000Z"), ("500124", "CES", "7", "2025-03-11T04:00:00.000Z"),
           # one past each scale's edge: quarantined (score_out_of_range), never clamped
           ("500131", "NPS", "-1", "2025-03-11T05:00:00.000Z"), ("500132", "CSAT", "0", "2025-03-11T06:00:00.000Z"),
           ("500133", "CSAT", "6", "2025-03-11T07:00:00.000Z"), ("500134", "CES", "0", "2025-03-11T08:00:00.000Z"),
           ("500135", "CES", "8", "2025-03-11T09:00:00.000Z")]
    for fid, typ, v, ts in bnd[:len(bnd) * b]:
        f.append((L1, fid, ts, ts, False, typ, v, None, ts, "100003", "WEB"))
    # the bad ones
    f.append((L2, "500031", "2025-03-08T00:00:00.000Z", "2025-03-08T00:00:00.000Z", False, "NPS", "11", None,
              "2025-03-08T00:00:00.000Z", "100001", "WEB"))
    f.append((L2, "500032", "2025-03-08T01:00:00.000Z", "2025-03-08T01:00:00.000Z", False, "CSAT", "five", None,
              "2025-03-08T01:00:00.000Z", "100001", "WEB"))
    f.append((L2, "500033", "2025-03-01T13:03:43.457Z", "2025-03-01T13:03:43.457Z", False, "CES", "7", None,
              "2025-02-30T25:61:00Z", "100002", "CHAT"))
    _table(con, "raw_hubspot.feedback_submissions", fcols, f, "hubspot")
    _table(con, "raw_hubspot.associations", [("from_type", V), ("from_id", V), ("to_type", V), ("to_id", V),
                                             ("type_id", "bigint"), ("label", V), ("category", V)],
           [(L1, "tickets", "400001", "contacts", "100001", 16, None, "HUBSPOT_DEFINED"),
            (L1, "tickets", "400002", "contacts", "100002", 16, None, "HUBSPOT_DEFINED")], "hubspot")
    ecols = [("id", V), ("created", "bigint"), ("type", V), ("recipient", V), ("emailCampaignId", "bigint"),
             ("filteredEvent", "boolean"), ("subscriptions", V), ("portalSubscriptionStatus", V), ("sentBy", V)]
    t0 = 1741078800000  # 2025-03-04T09:00:00Z
    e = []
    n = 0

    def ev(dt_s, typ, rcpt, filtered=None, subs=None, status=None):
        nonlocal n
        n += 1
        e.append((L1, f"ev{n:04d}", t0 + dt_s * 1000, typ, rcpt, 31000000, filtered, subs, status, '{"id": "sb"}'))
    ev(0, "SENT", "anna@example.com")
    ev(3, "DELIVERED", "anna@example.com")
    ev(600, "OPEN", "anna@example.com", False)
    ev(700, "OPEN", "anna@example.com", False)
    ev(900, "CLICK", "anna@example.com", False)
    ev(10, "SENT", "Bob@Example.com")
    ev(13, "DELIVERED", "bob@example.com")
    ev(60, "OPEN", "bob@example.com", True)           # machine open: not an open
    ev(2000, "STATUSCHANGE", "bob@example.com", None, '[{"id": 1, "status": "UNSUBSCRIBED"}]', "UNSUBSCRIBED")
    ev(20, "SENT", "carol@example.com")
    ev(25, "BOUNCE", "carol@example.com")
    _table(con, "raw_hubspot.email_events", ecols, e, "hubspot")


def _reviews(con, b: bool = False) -> None:
    V = "varchar"
    gcols = [("name", V), ("reviewId", V), ("reviewer__displayName", V), ("reviewer__isAnonymous", "boolean"),
             ("starRating", V), ("comment", V), ("createTime", V), ("updateTime", V), ("reviewReply__comment", V),
             ("reviewReply__updateTime", V), ("_location_name", V)]
    loc = "accounts/1/locations/10"
    _table(con, "raw_google_reviews.reviews", gcols, [
        (L1, f"{loc}/reviews/g1", "g1", "Anna N.", False, "FIVE", "Great", "2025-03-05T10:00:00Z", "2025-03-05T20:00:00Z",
         "Thanks!", "2025-03-05T20:00:00Z", loc),
        (L1, f"{loc}/reviews/g2", "g2", "Eve K.", False, "TWO", "Slow", "2025-03-05T11:00:00Z", "2025-03-05T11:00:00Z",
         None, None, loc),
        (L1, f"{loc}/reviews/g3", "g3", "Zed", False, "STAR_RATING_UNSPECIFIED", None, "2025-03-05T12:00:00Z",
         "2025-03-05T12:00:00Z", None, None, loc),
        *[(L1, f"{loc}/reviews/g4", "g4", "Yan", False, "THREE", "Okay", "2025-03-12T08:00:00Z",
           "2025-03-12T08:00:00Z", None, None, loc)][:b],
    ], "google_reviews")
    tcols = [("id", V), ("stars", "bigint"), ("title", V), ("text", V), ("language", V), ("createdAt", V), ("updatedAt", V),
             ("experiencedAt", V), ("referenceId", V), ("referralEmail", V), ("consumer__id", V),
             ("consumer__displayName", V), ("businessUnit__id", V), ("companyReply__text", V),
             ("companyReply__createdAt", V)]
    _table(con, "raw_trustpilot.reviews", tcols, [
        # created 2025-03-05T14:00:00+02:00 = 12:00Z, reply 4 h later
        (L1, "t1", 4, "Good", "Nice beans", "en", "2025-03-05T14:00:00+02:00", None, "2025-03-04T10:00:00Z", "S00001",
         "anna@example.com", "c1", "Anna Nguyen", "bu1", "Thank you", "2025-03-05T16:00:00Z"),
        (L1, "t2", 1, "Bad", "Late", "en", "2025-03-05T13:00:00Z", None, "2025-03-04T10:00:00Z", "S00002",
         None, "c2", "Bob Martin", "bu1", None, None),
        (L1, None, 5, "No id", "?", "en", "2025-03-05T15:00:00Z", None, None, None, None, "c3", "X", "bu1", None, None),
        # boundary rows on 03-12: 3 stars (neither negative nor positive), 2 stars replied exactly at the alert's due
        # time (created + 48 h: the loop is not closed), 1 star replied 47 h later (closed), 4 stars (positive)
        *[(L1, "t4", 3, "Ok", "Fine", "en", "2025-03-12T09:00:00Z", None, None, None, None, "c4", "Y", "bu1", None, None),
        (L1, "t5", 2, "Meh", "Cold", "en", "2025-03-12T10:00:00Z", None, None, None, None, "c5", "Z", "bu1", "Sorry",
         "2025-03-14T10:00:00Z"),
        (L1, "t6", 4, "Good", "Tasty", "en", "2025-03-12T11:00:00Z", None, None, None, None, "c6", "W", "bu1", None, None),
        (L1, "t7", 1, "Bad", "Broken", "en", "2025-03-12T12:00:00Z", None, None, None, None, "c7", "V", "bu1", "Sorry",
         "2025-03-14T11:00:00Z")][:4 * b],
    ], "trustpilot")


def _ga4(con, b: bool = False) -> None:
    con.execute("create schema if not exists raw_ga4")
    con.execute("""
        create or replace table raw_ga4.events (
            event_date varchar, event_timestamp varchar, event_name varchar,
            event_params struct(key varchar, value struct(string_value varchar, int_value varchar,
                                                          float_value double, double_value double))[],
            event_bundle_sequence_id varchar, user_id varchar, user_pseudo_id varchar, user_first_touch_timestamp varchar,
            device struct(category varchar, operating_system varchar), geo struct(country varchar, city varchar),
            traffic_source struct(name varchar, medium varchar, source varchar), stream_id varchar, platform varchar,
            items struct(item_id varchar, quantity varchar)[],
            _export_date varchar, _load_id varchar, _extracted_at timestamp, _record_seq bigint)""")
    base_us = 1740823200 * 1_000_000   # 2025-03-01T10:00:00Z
    rows = []

    def row(load, export_date, offset_s, name, upid, sid, params=(), user_id=None, bundle=None):
        ts = base_us + int(offset_s * 1_000_000)
        plist = []
        if sid is not None:
            plist.append(_param("ga_session_id", i=str(sid)))
            plist.append(_param("ga_session_number", i="1"))
        plist.extend(params)
        rows.append((load, export_date, str(ts), name, "[" + ", ".join(plist) + "]", bundle or str(len(rows) + 1),
                     user_id, upid))

    pv = lambda url: _param("page_location", s=url)  # noqa: E731
    d1 = "20250301"
    # first delivery of 2025-03-01 (superseded by the re-delivery below: all 3 rows become duplicates)
    row(L1, d1, 0, "session_start", "u1", 100)
    row(L1, d1, 1, "page_view", "u1", 100, [pv("https://x/a")])
    row(L1, d1, 5, "page_view", "u2", 200, [pv("https://x/b")])
    # the re-delivery of 2025-03-01
    # u1/100: 2 page views + add_to_cart + purchase, 3 s long -> engaged (page views, key event); logged in as partner 1
    row(L2, d1, 0, "session_start", "u1", 100, user_id="1")
    row(L2, d1, 1, "page_view", "u1", 100, [pv("https://x/a")], user_id="1")
    row(L2, d1, 2, "page_view", "u1", 100, [pv("https://x/b"), _param("engagement_time_msec", i="1500")], user_id="1")
    row(L2, d1, 2.5, "add_to_cart", "u1", 100, user_id="1")
    row(L2, d1, 3, "purchase", "u1", 100, user_id="1")
    # u2/200: one page view, 1 s engagement -> not engaged (a bounce); one exact duplicate row
    row(L2, d1, 5, "page_view", "u2", 200, [pv("https://x/b"), _param("engagement_time_msec", i="1000")], bundle="b200")
    row(L2, d1, 5, "page_view", "u2", 200, [pv("https://x/b"), _param("engagement_time_msec", i="1000")], bundle="b200")
    # u4/400: add_to_cart without purchase, session_engaged as int_value '1'
    row(L2, d1, 7, "add_to_cart", "u4", 400, [_param("session_engaged", i="1"), _param("engagement_time_msec", i="500")])
    # consent-mode ping: no user_pseudo_id -> excluded from sessions
    row(L2, d1, 8, "page_view", None, None, [pv("https://x/c")])
    # u3/300: starts 2025-03-01 23:59:50, crosses midnight; one session dated 03-01; session_engaged string '1'
    row(L2, d1, 50390, "session_start", "u3", 300)
    row(L1, "20250302", 50420, "user_engagement", "u3", 300,
        [_param("session_engaged", s="1"), _param("engagement_time_msec", i="2000")])
    if b:
        # boundary sessions, export day 2025-03-04 (first load only; offsets from 2025-03-01T10:00:00Z)
        d4, t4 = "20250304", 3 * 86400
        eng = lambda ms: _param("engagement_time_msec", i=str(ms))  # noqa: E731
        row(L1, d4, t4 + 0, "session_start", "u10", 1000)                       # exactly 10 s long: not engaged
        row(L1, d4, t4 + 10, "user_engagement", "u10", 1000, [eng(4000)])
        row(L1, d4, t4 + 20, "session_start", "u11", 1100)                      # 10.5 s long: engaged
        row(L1, d4, t4 + 30.5, "user_engagement", "u11", 1100, [eng(6000)])
        row(L1, d4, t4 + 40, "page_view", "u12", 1200, [pv("https://x/a")])     # 1 page view + cart: not engaged,
        row(L1, d4, t4 + 41, "add_to_cart", "u12", 1200)                        # an abandoned cart
        row(L1, d4, t4 + 50, "page_view", "u13", 1300, [pv("https://x/a")])     # 2 page views in 0.5 s: engaged
        row(L1, d4, t4 + 50.5, "page_view", "u13", 1300, [pv("https://x/b")])
        row(L1, d4, t4 + 60, "page_view", "u14", 1400, [pv("https://x/a"), _param("session_engaged", s="0")])  # '0': no
        row(L1, d4, t4 + 70, "add_to_cart", "u15", 1500)                        # two purchases: converts once; engaged
        row(L1, d4, t4 + 71, "purchase", "u15", 1500)                           # by the key event
        row(L1, d4, t4 + 72, "purchase", "u15", 1500)
        # low-sample threshold (30): 30 one-page sessions on 03-05, 29 on 03-06
        for day, n_sessions in (("20250305", 30), ("20250306", 29)):
            offset = (int(day[-2:]) - 1) * 86400
            for k in range(n_sessions):
                row(L1, day, offset + k, "page_view", f"lo{day[-1]}-{k}", 9000 + k, [pv("https://x/a")])
    seq: dict[str, int] = {}
    for load, export_date, ts, name, params, bundle, user_id, upid in rows:
        lid = load.format(src="ga4")
        s = seq.get(lid, 0)
        seq[lid] = s + 1
        con.execute(
            f"insert into raw_ga4.events values ({_q(export_date)}, {_q(ts)}, {_q(name)}, {params}, {_q(bundle)}, "
            f"{_q(user_id)}, {_q(upid)}, NULL, {{'category': 'desktop', 'operating_system': 'Windows'}}, "
            f"{{'country': 'Vietnam', 'city': 'Hanoi'}}, {{'name': '(direct)', 'medium': '(none)', 'source': '(direct)'}}, "
            f"'1', 'WEB', [], {_q(export_date)}, {_q(lid)}, {_q(EXTRACTED[load])}, {s})")


def hold_back_second_loads(con) -> dict[str, str]:
    """Move every raw table's second load (load ids ending `-bbbbbbbb`) into `main.held_<schema>__<table>`, so a
    test can build the first load, then re-insert the held rows as new data. Returns {raw table: held table}."""
    held = {}
    tables = [f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema like 'raw\\_%' escape '\\' and table_type = 'BASE TABLE'").fetchall()]
    for table in tables:
        cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        if "_load_id" not in cols:
            continue
        held[table] = f"main.held_{table.replace('.', '__')}"
        con.execute(f"create table {held[table]} as select * from {table} where _load_id like '%-bbbbbbbb'")
        con.execute(f"delete from {table} where _load_id like '%-bbbbbbbb'")
    return held


def restore_held_loads(con, held: dict[str, str]) -> None:
    """Put the rows `hold_back_second_loads` held back into their raw tables again (new data for the next build)."""
    for table, copy in held.items():
        con.execute(f"insert into {table} select * from {copy}")
        con.execute(f"drop table {copy}")


if __name__ == "__main__":
    build(sys.argv[1])
    print("fixture written to", sys.argv[1])
