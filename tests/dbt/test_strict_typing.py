"""Every typed value from a source parses in full or its record goes to the quarantine with a reason (issue 15.2),
on both targets.

The hand-made raw fixture (tests/dbt/raw_fixture.py) plus one dirty load per source (2025-03-22, new records only,
so the fixture's own rows keep their versions) is landed as real raw loads (Parquet + _load.json) and brought in by
the real loader (DuckDB, PostgreSQL); `dbt run --select staging`, then the quarantine's and the GA4 models' tests.
- GA4 (a new export day 20250307): a value that is PRESENT but does not parse in full is quarantined with the field
  named - never coalesced to 0 (engagement_time_msec), never NULL (event_timestamp, event_date) and never turned
  into a cookieless consent ping (ga_session_id); an ABSENT value keeps its meaning (no engagement = 0, no
  ga_session_id = a consent ping); an exact duplicate of a bad event is a duplicate in the ledger; a double the
  extractor's line path could not type (named in _type_error_fields) is quarantined with the field named.
- safe_cast_int: '4.5' is not rounded (NULL, so quarantined); '7.0' is 7.
- booleans: a present but unparsable `archived` is quarantined, not read as false; absent, it is false.
- timestamps: Trustpilot experiencedAt, HubSpot companies / deals createdAt and the tickets / feedback createdAt
  fallback, present but unparsable: bad_timestamp; an epoch timestamp outside years 0001-9999 (HubSpot email events'
  created: bad_timestamp; GA4 event_timestamp: out_of_range) no longer fails the build.
- Odoo money that does not fit decimal(18, 2): 'out_of_range: <fields>' on both targets (was NULL on DuckDB, a failed
  build on PostgreSQL).
- a GA4 int param delivered in another value field (string_value, float / double_value) is read, not absent.
The ledger balances for every load: extracted = staged + quarantined + duplicates.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from raw_fixture import _param  # noqa: E402
from test_hard_deletes import _Target  # noqa: E402

from tests.conftest import require_service  # noqa: E402

DIRTY = "20250322T000000-ffffffff"
DIRTY_AT = "2025-03-22 00:00:00"
GA4_DAY = "20250307"
GA4_LOAD = f"ga4-{DIRTY}"
BASE_US = 1741341600 * 1_000_000      # 2025-03-07T10:00:00Z

# (event_name, user_pseudo_id, event_timestamp, event_date, params) of the dirty GA4 export day, in file order
_P = {
    "sid": lambda v: _param("ga_session_id", i=v),
    "snum": lambda v: _param("ga_session_number", i=v),
    "eng": lambda v: _param("engagement_time_msec", i=v),
}
GA4_EVENTS = [
    # 0 good
    ("page_view", "d0", str(BASE_US), GA4_DAY, [_P["sid"]("900"), _P["snum"]("1"), _P["eng"]("1200")]),
    # 1 engagement_time_msec not an integer: used to be staged as 0
    ("page_view", "d1", str(BASE_US + 1), GA4_DAY, [_P["sid"]("901"), _P["eng"]("12.5")]),
    # 2 engagement_time_msec absent: 0, staged
    ("page_view", "d2", str(BASE_US + 2), GA4_DAY, [_P["sid"]("902")]),
    # 3 ga_session_id unparsable: used to be staged as a cookieless consent ping (NULL session)
    ("page_view", "d3", str(BASE_US + 3), GA4_DAY, [_P["sid"]("abc")]),
    # 4 ga_session_id absent: a consent ping, staged
    ("page_view", "d4", str(BASE_US + 4), GA4_DAY, []),
    # 5 ga_session_id non-integral: safe_cast_int rounded it to 5 on both targets
    ("page_view", "d5", str(BASE_US + 5), GA4_DAY, [_P["sid"]("4.5")]),
    # 6 event_timestamp with a fraction: event_at NULL (or rounded)
    ("page_view", "d6", str(BASE_US) + ".5", GA4_DAY, [_P["sid"]("906")]),
    # 7 event_date not a calendar date
    ("page_view", "d7", str(BASE_US + 7), "20250230", [_P["sid"]("907")]),
    # 8 session_engaged neither '0' nor '1': used to be read as not engaged
    ("page_view", "d8", str(BASE_US + 8), GA4_DAY, [_P["sid"]("908"), _param("session_engaged", s="yes")]),
    # 9 ga_session_number '7.0': an integer with a zero fraction, staged as 7
    ("page_view", "d9", str(BASE_US + 9), GA4_DAY, [_P["sid"]("909"), _P["snum"]("7.0")]),
    # 10 an exact duplicate of event 1 (one quarantine row, the copy a duplicate in the ledger)
    ("page_view", "d1", str(BASE_US + 1), GA4_DAY, [_P["sid"]("901"), _P["eng"]("12.5")]),
    # 11 a double the extractor's line path could not type: landed NULL, named in _type_error_fields
    ("purchase", "d11", str(BASE_US + 11), GA4_DAY, [_P["sid"]("911")]),
    # 12 an integer event_timestamp past any timestamp (year 294247+): failed the whole build on both targets
    ("page_view", "d12", "9223372036854775807", GA4_DAY, [_P["sid"]("912")]),
    # 13 the last microsecond of year 9999: still an instant, staged
    ("page_view", "d13", "253402300799999999", GA4_DAY, [_P["sid"]("913")]),
    # 14 ga_session_id delivered as string_value: was read as absent (a consent ping); it is the session id
    ("page_view", "d14", str(BASE_US + 14), GA4_DAY, [_param("ga_session_id", s="914")]),
    # 15 engagement_time_msec delivered as double_value 1500.0 (and ga_session_id as float_value): was 0
    ("user_engagement", "d15", str(BASE_US + 15), GA4_DAY,
     ["{'key': 'ga_session_id', 'value': {'string_value': NULL, 'int_value': NULL, 'float_value': 915.0, "
      "'double_value': NULL}}",
      "{'key': 'engagement_time_msec', 'value': {'string_value': NULL, 'int_value': '', 'float_value': NULL, "
      "'double_value': 1500.0}}"]),
    # 16 ga_session_id as string_value that is no integer: quarantined, not a consent ping
    ("page_view", "d16", str(BASE_US + 16), GA4_DAY, [_param("ga_session_id", s="abc")]),
]
GA4_REASONS = {
    1: "unparsable_value: engagement_time_msec",
    3: "unparsable_value: ga_session_id",
    5: "unparsable_value: ga_session_id",
    6: "unparsable_value: event_timestamp",
    7: "unparsable_value: event_date",
    8: "unparsable_value: session_engaged",
    11: "unparsable_value: event_value_in_usd",
    12: "out_of_range: event_timestamp",
    16: "unparsable_value: ga_session_id",
}


def _dirty(con) -> None:
    """The dirty load of every source, added to the fixture database before it is landed as raw loads."""
    lid = lambda src: f"{src}-{DIRTY}"  # noqa: E731
    at = f"timestamp '{DIRTY_AT}'"
    # GA4: the fixture's column layout, one new export day
    for seq, (name, upid, ts, day, params) in enumerate(GA4_EVENTS):
        con.execute(f"""
            insert into raw_ga4.events by name
            select * replace ('{day}' as event_date, '{ts}' as event_timestamp, '{name}' as event_name,
                              [{', '.join(params)}]::{_ga4_params_type(con)} as event_params,
                              'b{seq}' as event_bundle_sequence_id, null as user_id, '{upid}' as user_pseudo_id,
                              '{GA4_DAY}' as _export_date, '{lid('ga4')}' as _load_id, {at} as _extracted_at,
                              {seq} as _record_seq)
            from raw_ga4.events where _record_seq = 0 limit 1""")
    if GA4_EVENTS[10][1:] != GA4_EVENTS[1][1:]:
        raise AssertionError("event 10 must copy event 1")
    con.execute(f"update raw_ga4.events set event_bundle_sequence_id = 'b1' "
                f"where _load_id = '{lid('ga4')}' and _record_seq = 10")
    # the columns the extractor adds to a day with such a value (the loader widens the raw table)
    con.execute("alter table raw_ga4.events add column _type_error_fields varchar")
    con.execute("alter table raw_ga4.events add column _type_error_values varchar")
    con.execute(f"update raw_ga4.events set _type_error_fields = 'event_value_in_usd', "
                f"_type_error_values = '{{\"event_value_in_usd\": \"1,5\"}}' "
                f"where _load_id = '{lid('ga4')}' and _record_seq = 11")

    def copy(table: str, src: str, where: str, changes: dict[str, str]) -> None:
        n = con.execute(f"select count(*) from {table} where _load_id = '{lid(src)}'").fetchone()[0]
        repl = ", ".join(f"{v} as {k}" for k, v in {**changes, "_load_id": f"'{lid(src)}'", "_extracted_at": at,
                                                       "_record_seq": str(n)}.items())
        con.execute(f"insert into {table} by name select * replace ({repl}) from {table} where {where} limit 1")

    # Trustpilot experiencedAt present but unparsable / absent
    copy("raw_trustpilot.reviews", "trustpilot", "id = 't2'",
         {"id": "'tpx1'", "consumer__id": "'cx1'", "experiencedAt": "'last spring'"})
    copy("raw_trustpilot.reviews", "trustpilot", "id = 't2'", {"id": "'tpx2'", "consumer__id": "'cx2'",
                                                                  "experiencedAt": "null"})
    # HubSpot companies / deals createdAt present but unparsable
    copy("raw_hubspot.companies", "hubspot", "id = '200001'", {"id": "'200901'", "createdAt": "'not a date'"})
    copy("raw_hubspot.deals", "hubspot", "id = '300001'", {"id": "'300901'", "createdAt": "'2025-02-30T00:00:00Z'"})
    # a HubSpot number beyond a double's range ('1e999') or not finite ('NaN'): was +-inf / nan on DuckDB and failed
    # the build on PostgreSQL; one below the smallest double ('1e-999') is 0 on both
    copy("raw_hubspot.deals", "hubspot", "id = '300001'", {"id": "'300902'", "properties__amount": "'1e999'"})
    copy("raw_hubspot.deals", "hubspot", "id = '300001'", {"id": "'300903'", "properties__amount": "'NaN'"})
    copy("raw_hubspot.deals", "hubspot", "id = '300001'", {"id": "'300904'", "properties__amount": "'1e-999'"})
    copy("raw_hubspot.deals", "hubspot", "id = '300001'", {"id": "'300905'", "properties__amount": "'-2.5e3'"})
    # tickets / feedback: createdAt is the fallback of createdate / hs_submission_timestamp
    copy("raw_hubspot.tickets", "hubspot", "true", {"id": "'400901'", "properties__createdate": "null",
                                                     "createdAt": "'yesterday'"})
    copy("raw_hubspot.feedback_submissions", "hubspot", "id = '500005'",
         {"id": "'500901'", "properties__hs_submission_timestamp": "null", "createdAt": "'yesterday'"})
    # Odoo money that does not fit decimal(18, 2): was NULL on DuckDB (silently) and failed the build on PostgreSQL
    copy("raw_odoo.sale_order", "odoo", "id = 1", {"id": "901", "name": "'S00901'", "amount_total": "1e20"})
    copy("raw_odoo.sale_order", "odoo", "id = 1", {"id": "902", "name": "'S00902'", "amount_total": "-1e16"})
    copy("raw_odoo.sale_order", "odoo", "id = 1", {"id": "903", "name": "'S00903'",
                                                   "amount_total": "999999999999.99"})  # fits: staged
    copy("raw_odoo.sale_order_line", "odoo", "id = 1", {"id": "901", "price_unit": "1e20", "price_total": "1e20"})
    copy("raw_odoo.product_template", "odoo", "id = 1", {"id": "901", "list_price": "1e18"})
    # an epoch-millisecond `created` past any timestamp: failed the DuckDB build (multiplication overflow)
    copy("raw_hubspot.email_events", "hubspot", "id = 'ev0001'", {"id": "'ev0901'", "created": "9223372036854775807"})
    # archived: present but unparsable (the load brings it as text) / absent
    con.execute("alter table raw_hubspot.contacts alter archived type varchar")
    copy("raw_hubspot.contacts", "hubspot", "id = '100002'", {"id": "'100901'", "archived": "'maybe'"})
    copy("raw_hubspot.contacts", "hubspot", "id = '100002'", {"id": "'100902'", "archived": "null"})


def _ga4_params_type(con) -> str:
    return con.execute("select data_type from information_schema.columns where table_schema = 'raw_ga4' "
                       "and table_name = 'events' and column_name = 'event_params'").fetchone()[0]


def _land(raw: Path, tmp: Path) -> None:
    """test_hard_deletes._land_fixture with the dirty loads."""
    db = tmp / "fixture.duckdb"
    raw_fixture.build(db)
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    try:
        _dirty(con)
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_schema like 'raw\\_%' escape '\\'").fetchall()
        for schema, table in tables:
            source = schema[len("raw_"):]
            for load_id, extracted_at, n in con.execute(
                    f"select _load_id, min(_extracted_at), count(*) from {schema}.{table} group by 1").fetchall():
                out = raw / source / table / load_id
                out.mkdir(parents=True)
                con.execute(f"copy (select * replace (timezone('UTC', _extracted_at) as _extracted_at) "
                            f"from {schema}.{table} where _load_id = '{load_id}' order by _record_seq) "
                            f"to '{out / 'part-00000.parquet'}' (format parquet)")
                (out / "_load.json").write_text(json.dumps({
                    "load_id": load_id, "source": source, "entity": table, "extracted_at": str(extracted_at),
                    "rows": n}))
    finally:
        con.close()


# the PostgreSQL build is in the heavy stage (tests/conftest.py: `./cx test --heavy`, or name this file)
@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.heavy)])
def built(request, tmp_path_factory):
    if request.param == "postgres":
        require_service("postgres")
    tmp = tmp_path_factory.mktemp(f"strict_typing_{request.param}")
    t = _Target(request.param, tmp)
    _land(t.raw, tmp)
    t.create()
    try:
        t.load()
        t.dbt("run", "--select", "staging")
        yield t
    finally:
        t.drop()


def test_a_present_ga4_value_that_does_not_parse_is_quarantined_and_an_absent_one_keeps_its_meaning(built):
    t = built
    q = t.rows(f"select record_seq, reason from staging.quarantine where source = 'ga4' and load_id = '{GA4_LOAD}' "
               "order by record_seq")
    assert q == sorted(GA4_REASONS.items())
    staged = {r[0]: r[1:] for r in t.rows(
        "select user_pseudo_id, ga_session_id, ga_session_number, engagement_time_msec from staging.stg_ga4__events "
        f"where _load_id = '{GA4_LOAD}'")}
    assert staged == {"d0": (900, 1, 1200), "d2": (902, None, 0), "d4": (None, None, 0), "d9": (909, 7, 0),
                      "d13": (913, None, 0), "d14": (914, None, 0), "d15": (915, None, 1500)}
    assert t.rows("select cast(event_at as varchar) from staging.stg_ga4__events where user_pseudo_id = 'd13'") == [
        ("9999-12-31 23:59:59.999999",)]
    # extracted = staged + quarantined + duplicates for the dirty day (the copy of event 1 is the duplicate)
    assert t.rows("select extracted, staged, quarantined, duplicates from staging.load_ledger "
                  f"where load_id = '{GA4_LOAD}'") == [(17, 7, 9, 1)]


def test_unparsable_timestamps_and_booleans_are_quarantined_absent_ones_keep_their_default(built):
    t = built
    q = t.rows(f"select entity, record_id, reason from staging.quarantine where load_id like '%{DIRTY}' "
               "and source not in ('ga4', 'odoo') order by 1, 2")
    assert q == [("companies", "200901", "bad_timestamp"),
                 ("contacts", "100901", "unparsable_value: archived"),
                 ("deals", "300901", "bad_timestamp"),
                 ("deals", "300902", "unparsable_value: amount"),
                 ("deals", "300903", "unparsable_value: amount"),
                 ("email_events", "ev0901", "bad_timestamp"),
                 ("feedback_submissions", "500901", "bad_timestamp"),
                 ("reviews", "tpx1", "bad_timestamp"),
                 ("tickets", "400901", "bad_timestamp")]
    assert t.rows("select contact_id, is_archived from staging.stg_hubspot__contacts "
                  "where contact_id in ('100901', '100902')") == [("100902", False)]
    assert t.rows("select review_id, experienced_at from staging.stg_trustpilot__reviews "
                  "where review_id in ('tpx1', 'tpx2')") == [("tpx2", None)]


def test_an_odoo_amount_that_does_not_fit_decimal_18_2_is_quarantined_out_of_range(built):
    """1e20 in amount_total used to become NULL on DuckDB (an order without revenue, no quarantine) and fail the whole
    build on PostgreSQL ('numeric field overflow'); the largest amount that fits is staged as delivered."""
    t = built
    q = t.rows(f"select entity, record_id, reason from staging.quarantine where load_id like '%{DIRTY}' "
               "and source = 'odoo' order by 1, 2")
    assert q == [("product_template", "901", "out_of_range: list_price"),
                 ("sale_order", "901", "out_of_range: amount_total"),
                 ("sale_order", "902", "out_of_range: amount_total"),
                 ("sale_order_line", "901", "out_of_range: price_unit,price_total")]
    assert t.rows("select order_id, cast(amount_total as varchar) from staging.stg_odoo__sale_orders "
                  "where order_id > 900 order by 1") == [(903, "999999999999.99")]
    assert t.rows("select count(*) from staging.stg_odoo__sale_order_lines where order_line_id = 901") == [(0,)]


def test_every_load_balances_and_the_quarantine_tests_pass(built):
    t = built
    assert t.rows("select source, entity, load_id from staging.load_ledger "
                  "where extracted <> staged + quarantined + duplicates or duplicates < 0") == []
    raw_ga4 = t.rows("select count(*) from raw_ga4.events")[0][0]
    assert t.rows("select sum(extracted) from staging.load_ledger where source = 'ga4'")[0][0] == raw_ga4
    t.dbt("test", "--indirect-selection", "cautious", "--select", "quarantine", "stg_ga4__events", "load_ledger",
          "assert_load_ledger_balances")


def test_a_number_beyond_a_doubles_range_is_quarantined_on_both_targets_never_inf_or_a_failed_build(built):
    """HubSpot's amount is text: '1e999' was +inf on DuckDB (a deal worth infinity) and failed the whole PostgreSQL
    build ('out of range for type double precision'); 'NaN' was nan on DuckDB. Both are quarantined as unparsable
    (the quarantine test above); '1e-999' is 0 and '-2.5e3' is -2500 on both targets."""
    t = built
    assert t.rows("select deal_id, amount from staging.stg_hubspot__deals where deal_id in "
                  "('300902', '300903', '300904', '300905') order by 1") == [("300904", 0.0), ("300905", -2500.0)]

