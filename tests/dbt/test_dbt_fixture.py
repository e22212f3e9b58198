"""dbt build over a small hand-made raw fixture (tests/dbt/raw_fixture.py): the build passes, and KPIs, quarantine
reasons, ledger conservation and identity resolution equal values computed by hand from the fixture rows.

KPI values: one test per KPI (`test_kpi_equals_hand_computed_value[<kpi>]`, over `KPI_EXPECTED`) on one shared
dbt build, so a failure names the KPI and does not hide the others; the fixture's boundary rows (raw_fixture.py
docstring) sit on both sides of every KPI threshold, and the classification of each boundary row is asserted too."""
from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path

import duckdb
import pytest

import dbt_cli

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    """The fixture's database after `dbt build`: of the whole project, or of the union of the collected tests'
    `dbt_select` markers when every collected test declares one (dbt_cli.session_selection; `./cx mutate --only`
    runs one or two node ids, so it builds only their upstream). Tests only on models of the selection run
    (`--indirect-selection cautious`)."""
    selection = dbt_cli.session_selection(request, "built")
    tmp = tmp_path_factory.mktemp("dbt_fixture")
    db = tmp / "build.duckdb"
    raw_fixture.build(db, boundary_rows=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({
        "CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
    })
    select = ("--select", *selection, "--indirect-selection", "cautious") if selection else ()
    proc = dbt_cli.run(env, "build", *select, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    yield con
    con.close()


def _day(con, kpi, day):
    return con.execute("select numerator, denominator, value, n from kpi.kpi_daily where kpi = ? and kpi_date = ? "
                       "and channel = 'all' and segment = 'all'", [kpi, day]).fetchone()


def _period(con, kpi, grain, start):
    return con.execute("select numerator, denominator, value, n from kpi.kpi_period where kpi = ? and grain = ? "
                       "and period_start = ? and channel = 'all' and segment = 'all'", [kpi, grain, start]).fetchone()


def _eq(row, expected, what=""):
    assert row is not None, f"{what}: row missing"
    for field, got, want in zip(("numerator", "denominator", "value", "n"), row, expected):
        if want is None:
            assert got is None, f"{what}: {field} {got}, expected none"
        else:
            assert got is not None and math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9), \
                f"{what}: {field} {got}, expected {want} (row {row}, expected {expected})"


# Every KPI's expected rows, computed by hand from the fixture rows (raw_fixture.py), boundary rows included.
# (period kind, grain or None, date, (numerator, denominator, value, n)). One test per KPI (parametrized over this
# table on one shared dbt build), so a failure names the KPI.
DAY, PERIOD = "day", "period"
KPI_EXPECTED: dict[str, list[tuple]] = {
    # NPS 03-05: 10, 9, 7, 3 and 500005 whose latest version (L2) is 9 (its L1 version, 4, is a duplicate)
    # -> promoters 3, detractors 1, responses 5 -> 100 * 2 / 5 = 40; the out-of-range '11' is quarantined.
    # 03-09 (boundaries): 0, 6 detractors; 7, 8 passives; 9, 9, 10 promoters (the 10 at 23:59:59.999) -> 100 * 1 / 7.
    # 03-10: the 9 submitted at 00:00:00.000 -> 100. (promoter >= 8 would make 03-09 2/7; detractor <= 7, -1/7)
    "nps": [(DAY, None, "2025-03-05", (2, 5, 40.0, 5)), (DAY, None, "2025-03-09", (1, 7, 100 / 7, 7)),
            (DAY, None, "2025-03-10", (1, 1, 100.0, 1)), (PERIOD, "month", "2025-03-01", (4, 13, 400 / 13, 13))],
    # customer level (each customer's latest response of the period): 03-05 Anna's latest is the 3 (03:00), Dave's
    # the 9 -> 0 / 2; 03-09 Carol's latest is the 10 at 23:59:59.999 -> 1 / 1; March: Anna -1, Dave +1, Carol's
    # latest is the 9 of 03-10 00:00 -> 1 / 3
    "nps_customer_level": [(DAY, None, "2025-03-05", (0, 2, 0.0, 2)), (DAY, None, "2025-03-09", (1, 1, 100.0, 1)),
                           (PERIOD, "month", "2025-03-01", (1, 3, 100 / 3, 3))],
    # CSAT 03-06: 5, 4, 2 -> 2 of 3 satisfied, mean 11 / 3 ('five' is quarantined); 03-10: 1..5 -> 4, 5 satisfied
    "csat_pct": [(DAY, None, "2025-03-06", (2, 3, 200 / 3, 3)), (DAY, None, "2025-03-10", (2, 5, 40.0, 5))],
    "csat_mean": [(DAY, None, "2025-03-06", (11, 3, 11 / 3, 3)), (DAY, None, "2025-03-10", (15, 5, 3.0, 5))],
    # CES 03-07: 6, 3 -> mean 4.5, easy 1 of 2; 03-11: 1, 4, 5, 7 -> mean 17 / 4, easy (>= 5) 2 of 4
    "ces_mean": [(DAY, None, "2025-03-07", (9, 2, 4.5, 2)), (DAY, None, "2025-03-11", (17, 4, 4.25, 4))],
    "ces_easy_pct": [(DAY, None, "2025-03-07", (1, 2, 50.0, 2)), (DAY, None, "2025-03-11", (2, 4, 50.0, 4))],
    # 2025-03-01, re-delivered day: u1 (2 page views + purchase), u2 (one page view, duplicate collapsed), u4
    # (session_engaged int '1', add_to_cart), u3 (string '1', crosses midnight, dated 03-01); the ping is excluded.
    # 03-04 (boundaries): u10 exactly 10 s (not engaged), u11 10.5 s (engaged), u12 1 page view + cart, u13 2 page
    # views (engaged), u14 session_engaged '0', u15 cart + 2 purchases (engaged by the key event, converts once).
    # 03-05: 30 one-page sessions, 03-06: 29.
    "sessions": [(DAY, None, "2025-03-01", (4, None, 4, 4)), (DAY, None, "2025-03-04", (6, None, 6, 6)),
                 (DAY, None, "2025-03-05", (30, None, 30, 30)), (DAY, None, "2025-03-06", (29, None, 29, 29))],
    "engagement_rate": [(DAY, None, "2025-03-01", (3, 4, 0.75, 4)), (DAY, None, "2025-03-04", (3, 6, 0.5, 6)),
                        (DAY, None, "2025-03-05", (0, 30, 0.0, 30))],
    "bounce_rate": [(DAY, None, "2025-03-01", (1, 4, 0.25, 4)), (DAY, None, "2025-03-04", (3, 6, 0.5, 6))],
    "conversion_rate": [(DAY, None, "2025-03-01", (1, 4, 0.25, 4)), (DAY, None, "2025-03-04", (1, 6, 1 / 6, 6))],
    "cart_abandonment_rate": [(DAY, None, "2025-03-01", (1, 2, 0.5, 2)), (DAY, None, "2025-03-04", (1, 2, 0.5, 2))],
    "avg_engagement_time_msec": [(DAY, None, "2025-03-01", (5000, 4, 1250, 4)),
                                 (DAY, None, "2025-03-04", (10000, 6, 10000 / 6, 6))],
    # orders: S00001 03-01, S00002 03-02 confirmed; S00003 draft, S00006 sent (03-02), S00005 cancelled: excluded
    "orders": [(DAY, None, "2025-03-01", (1, None, 1, 1)), (DAY, None, "2025-03-02", (1, None, 1, 1))],
    "net_revenue": [(PERIOD, "window", "2025-03-01", (350, None, 350, 3))],
    "gross_revenue": [(PERIOD, "window", "2025-03-01", (423.5, None, 423.5, 3))],
    "aov": [(PERIOD, "month", "2025-03-01", (300, 2, 150, 2))],
    # Anna: March (partner 1) + April (partner 6, her second ERP record: one person, one customer); Bob: March only
    "purchase_frequency": [(PERIOD, "window", "2025-03-01", (3, 2, 1.5, 2))],
    "repeat_customer_rate": [(PERIOD, "window", "2025-03-01", (1, 2, 0.5, 2))],
    "retention_rate": [(PERIOD, "month", "2025-04-01", (1, 2, 50.0, 2))],
    # 03-03: one before its schedule, one late; 03-06: done exactly at the scheduled time (on time), 1 s after (late)
    "on_time_delivery_rate": [(DAY, None, "2025-03-03", (1, 2, 0.5, 2)), (DAY, None, "2025-03-06", (1, 2, 0.5, 2))],
    # campaign sent 03-04: anna delivered+open+click, bob delivered + machine open + unsubscribe, carol bounced
    "email_open_rate": [(DAY, None, "2025-03-04", (1, 2, 0.5, 2))],
    "email_click_rate": [(DAY, None, "2025-03-04", (1, 2, 0.5, 2))],
    "email_unsubscribe_rate": [(DAY, None, "2025-03-04", (1, 2, 0.5, 2))],
    "email_click_to_open_rate": [(DAY, None, "2025-03-04", (1, 1, 1.0, 1))],
    # reviews 03-05: google 5 (reply +10 h), 2; trustpilot 4 (+02:00 offset, reply +4 h), 1.
    # 03-12: google 3; trustpilot 3, 2 (reply +48 h), 4, 1 (reply +47 h) -> negative (<= 2) 2, positive (>= 4) 1
    "review_rating_avg": [(DAY, None, "2025-03-05", (12, 4, 3.0, 4)), (DAY, None, "2025-03-12", (13, 5, 2.6, 5))],
    "review_negative_share": [(DAY, None, "2025-03-05", (2, 4, 0.5, 4)), (DAY, None, "2025-03-12", (2, 5, 0.4, 5))],
    "review_positive_share": [(DAY, None, "2025-03-05", (2, 4, 0.5, 4)), (DAY, None, "2025-03-12", (1, 5, 0.2, 5))],
    "review_reply_rate": [(DAY, None, "2025-03-05", (2, 4, 0.5, 4)), (DAY, None, "2025-03-12", (2, 5, 0.4, 5))],
    # reply hours in March: 10, 4, 48, 47 -> median (10 + 47) / 2; p90 = 47 + 0.7 * (48 - 47) (linear interpolation)
    "review_reply_time_median_h": [(PERIOD, "month", "2025-03-01", (None, None, 28.5, 4))],
    "review_reply_time_p90_h": [(PERIOD, "window", "2025-03-01", (None, None, 47.7, 4))],
    # tickets: 400001 first reply +2 h, closed +10 h; 400002 first reply +6 h, open
    "first_response_median_h": [(PERIOD, "month", "2025-03-01", (None, None, 4.0, 2))],
    "resolution_median_h": [(PERIOD, "month", "2025-03-01", (None, None, 10.0, 1))],
    # open backlog, a stock at the end of each day: 400001 opened and closed on 03-04 (0 open: no row, kpi_daily
    # publishes n > 0), 400002 opened 03-05 and still open at the window's last day and March's end
    "open_backlog": [(DAY, None, "2025-03-05", (1, None, 1, 1)), (DAY, None, "2025-04-10", (1, None, 1, 1)),
                     (PERIOD, "month", "2025-03-01", (1, None, 1, 1))],
    # alerts by creation day: 03-05 NPS 3, google 2, trustpilot 1; 03-06 CSAT 2; 03-09 NPS 0 and 6; 03-10 CSAT 1
    # and 2; 03-12 trustpilot 2 (replied exactly at the due time: open) and 1 (replied 1 h before it: closed).
    # No agent contact follows any survey alert (Anna's ticket is before hers, Carol has none).
    "loop_closed_rate": [(DAY, None, "2025-03-05", (0, 3, 0.0, 3)), (DAY, None, "2025-03-06", (0, 1, 0.0, 1)),
                         (DAY, None, "2025-03-09", (0, 2, 0.0, 2)), (DAY, None, "2025-03-10", (0, 2, 0.0, 2)),
                         (DAY, None, "2025-03-12", (1, 2, 0.5, 2))],
}


@pytest.mark.dbt_select("+kpi_daily", "+kpi_period")
@pytest.mark.parametrize("kpi", sorted(KPI_EXPECTED))
def test_kpi_equals_hand_computed_value(built, kpi):
    for kind, grain, start, expected in KPI_EXPECTED[kpi]:
        row = _day(built, kpi, start) if kind == DAY else _period(built, kpi, grain, start)
        assert row is not None, f"{kpi}: no {grain or 'day'} row for {start}"
        _eq(row, expected, f"{kpi} {grain or 'day'} {start}")


def test_every_daily_kpi_has_a_hand_computed_value(built):
    daily = {k for k, in built.execute("select distinct kpi from kpi.kpi_daily").fetchall()}
    assert daily <= set(KPI_EXPECTED), f"daily KPIs without a hand-computed value: {sorted(daily - set(KPI_EXPECTED))}"


@pytest.mark.dbt_select("+dim_dates")
def test_dim_dates_iso_day_of_week_is_monday_1_to_sunday_7(built):
    """dim_dates' weekday comes from the dispatched iso_day_of_week (DuckDB / PostgreSQL isodow, Spark
    dayofweek_iso): ISO numbering, weekend = Saturday and Sunday."""
    rows = built.execute("select date_day, iso_day_of_week, is_weekend from core.dim_dates").fetchall()
    assert len(rows) >= 365
    wrong = [r for r in rows if (r[1], r[2]) != (r[0].isoweekday(), r[0].isoweekday() >= 6)]
    assert not wrong, wrong[:5]


def test_no_kpi_row_for_days_without_valid_records(built):
    # 03-08: only quarantined answers ('11', 'five'); 03-02: the crossing session's second day belongs to 03-01
    assert _day(built, "nps", "2025-03-08") is None and _day(built, "csat_pct", "2025-03-08") is None
    assert _day(built, "sessions", "2025-03-02") is None
    assert _day(built, "open_backlog", "2025-03-04") is None       # 400001 closed the day it was opened
    assert built.execute("select sum(events) from core.fct_web_unsessioned_events").fetchone()[0] == 1


def test_survey_boundary_scores_are_classified_by_the_kpi_rules(built):
    rows = built.execute("select feedback_id, is_promoter, is_passive, is_detractor, is_csat_satisfied, is_ces_easy "
                         "from core.fct_survey_responses where feedback_id between '500101' and '500124'").fetchall()
    got = {r[0]: r[1:] for r in rows}
    # (promoter, passive, detractor, csat satisfied, ces easy)
    F, T = False, True
    assert got == {
        "500101": (F, F, T, F, F), "500102": (F, F, T, F, F),            # NPS 0, 6
        "500103": (F, T, F, F, F), "500104": (F, T, F, F, F),            # NPS 7, 8
        "500105": (T, F, F, F, F), "500106": (T, F, F, F, F), "500107": (T, F, F, F, F), "500108": (T, F, F, F, F),
        "500111": (F, F, F, F, F), "500112": (F, F, F, F, F), "500113": (F, F, F, F, F),   # CSAT 1, 2, 3
        "500114": (F, F, F, T, F), "500115": (F, F, F, T, F),                              # CSAT 4, 5
        "500121": (F, F, F, F, F), "500122": (F, F, F, F, F),                              # CES 1, 4
        "500123": (F, F, F, F, T), "500124": (F, F, F, F, T),                              # CES 5, 7
    }


def test_web_session_boundaries(built):
    rows = dict(built.execute("select user_pseudo_id, (duration_s, page_views, is_engaged, has_purchase) "
                              "from core.fct_web_sessions where user_pseudo_id in "
                              "('u10', 'u11', 'u12', 'u13', 'u14', 'u15')").fetchall())
    got = {k: (float(v["duration_s"]) if isinstance(v, dict) else float(v[0]),) + tuple(
        (v.values() if isinstance(v, dict) else v))[1:] for k, v in rows.items()}
    assert got == {"u10": (10.0, 0, False, False), "u11": (10.5, 0, True, False), "u12": (1.0, 1, False, False),
                   "u13": (0.5, 2, True, False), "u14": (0.0, 1, False, False), "u15": (2.0, 0, True, True)}


def test_delivery_on_time_boundary(built):
    got = dict(built.execute("select picking_id, is_on_time from core.fct_deliveries where picking_id in (5, 6)"
                             ).fetchall())
    assert got == {5: True, 6: False}   # done exactly at the scheduled time / 1 s after it


def test_low_sample_flag_boundary(built):
    # low_sample_min = 30 (dbt_project.yml): n = 30 is enough, n = 29 is low
    flags = dict(built.execute("select kpi_date::varchar, is_low_sample from kpi.kpi_daily where kpi = 'sessions' "
                               "and channel = 'all' and segment = 'all' and kpi_date in ('2025-03-05', '2025-03-06')"
                               ).fetchall())
    assert flags == {"2025-03-05": False, "2025-03-06": True}


def test_detractor_alert_boundaries(built):
    got = set(built.execute("select alert_type, source_record_id from cx.cx_detractor_alerts").fetchall())
    boundary = {r for r in got if r[1] in {"500101", "500102", "500103", "500104", "500111", "500112", "500113",
                                           "t4", "t5", "t6", "t7", "g4"}}
    # NPS 0, 6 alert (7, 8 do not); CSAT 1, 2 (3 does not); reviews 2, 1 (3, 4 do not)
    assert boundary == {("nps_detractor", "500101"), ("nps_detractor", "500102"), ("csat_low", "500111"),
                        ("csat_low", "500112"), ("review_low", "t5"), ("review_low", "t7")}
    closed = dict(built.execute("select source_record_id, is_loop_closed from cx.cx_detractor_alerts "
                                "where source_record_id in ('t5', 't7')").fetchall())
    assert closed == {"t5": False, "t7": True}   # reply exactly at due_at (created + 48 h) / 1 h before it


def test_quarantine_reasons(built):
    got = set(built.execute("select source, entity, record_id, reason from staging.quarantine").fetchall())
    assert got == {
        ("odoo", "res_partner", "4", "bad_timestamp"),
        ("hubspot", "feedback_submissions", "500031", "score_out_of_range"),
        ("hubspot", "feedback_submissions", "500032", "score_not_numeric"),
        ("hubspot", "feedback_submissions", "500033", "bad_timestamp"),
        # one past each scale's edge (boundary rows)
        ("hubspot", "feedback_submissions", "500131", "score_out_of_range"),     # NPS -1
        ("hubspot", "feedback_submissions", "500132", "score_out_of_range"),     # CSAT 0
        ("hubspot", "feedback_submissions", "500133", "score_out_of_range"),     # CSAT 6
        ("hubspot", "feedback_submissions", "500134", "score_out_of_range"),     # CES 0
        ("hubspot", "feedback_submissions", "500135", "score_out_of_range"),     # CES 8
        ("google_reviews", "reviews", "g3", "rating_invalid"),
        ("trustpilot", "reviews", None, "missing_id"),
    }


def test_ledger_conserves_rows(built):
    rows = built.execute("select source, entity, load_id, extracted, staged, quarantined, duplicates "
                         "from staging.load_ledger").fetchall()
    assert rows and all(x == s + q + d for _, _, _, x, s, q, d in rows)
    by = {(r[0], r[1], r[2][-8:]): r[3:] for r in rows}
    # 03-01 first delivery superseded (3 rows); 12 boundary rows on 03-04, 30 + 29 on 03-05 / 03-06
    assert by[("ga4", "events", "aaaaaaaa")] == (75, 72, 0, 3)
    assert by[("ga4", "events", "bbbbbbbb")] == (10, 9, 0, 1)       # one exact duplicate
    # + 17 boundary answers staged and 5 out-of-scale answers quarantined
    assert by[("hubspot", "feedback_submissions", "aaaaaaaa")] == (32, 26, 5, 1)
    assert by[("hubspot", "feedback_submissions", "bbbbbbbb")] == (4, 1, 3, 0)
    assert by[("odoo", "res_partner", "aaaaaaaa")] == (4, 3, 0, 1)
    raw = built.execute("select count(*) from raw_ga4.events").fetchone()[0]
    assert sum(r[3] for r in rows if r[0] == "ga4") == raw


def test_identity_and_pii(built):
    # Anna: Odoo 'Anna@Example.com ' and HubSpot 'ANNA@EXAMPLE.COM  ' are one person; GA4 user_id '1' and the
    # Trustpilot review with referenceId S00001 resolve to her too
    rows = built.execute("select source, source_id, person_id, rule from intermediate.int_identity_links").fetchall()
    person = {(s, i): p for s, i, p, _ in rows}
    anna = person[("odoo", "1")]
    assert person[("odoo", "6")] == anna        # ' anna@EXAMPLE.com': her second ERP partner, the same person
    assert person[("hubspot", "100001")] == anna
    assert person[("ga4", "1")] == anna
    assert person[("trustpilot", "t1")] == anna
    assert person[("hubspot", "100002")] not in {anna, person[("odoo", "2")]}
    assert person[("hubspot", "100003")] == person[("odoo", "3")]      # 'CAROL.GROSS' = 'carol.groß' (case folding)
    n = built.execute("select count(*) from core.dim_customers where person_sk <> '-1'").fetchone()[0]
    assert n == 4   # Anna, Bob, Carol, Dave
    assert built.execute("select odoo_partner_id, odoo_partners, confirmed_orders, lifetime_net_revenue "
                         "from core.dim_customers where person_sk = ?", [anna]).fetchone() == (1, 2, 2, 150)
    assert built.execute("select confirmed_orders, historical_clv from cx.cx_customer_clv where person_sk = ?",
                         [anna]).fetchone() == (2, 150)
    assert built.execute("select sum(cohort_customers) from kpi.kpi_cohorts_monthly where months_since_first_order = 0"
                         ).fetchone()[0] == 2
    assert built.execute("select resolution from intermediate.int_identity_conflicts "
                         "where source = 'odoo' order by source_id").fetchall() == [("merged_one_person",)] * 2
    email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
    for schema, table, column in built.execute(
            "select table_schema, table_name, column_name from information_schema.columns where data_type = 'VARCHAR' "
            "and table_schema in ('staging', 'intermediate', 'core', 'kpi')").fetchall():
        hits = built.execute(f'select count(*) from "{schema}"."{table}" where regexp_matches("{column}", ?)',
                             [email.pattern]).fetchone()[0]
        assert hits == 0, f"plaintext e-mail in {schema}.{table}.{column}"


def test_every_mart_table_and_column_carries_its_description(built):
    """persist_docs (dbt_project.yml, marts): the YAML descriptions are COMMENT ONs of every mart table and column,
    which publish copies into the published file (issue 18.3)."""
    tables = built.execute("select schema_name || '.' || table_name from duckdb_tables() "
                           "where schema_name in ('core', 'kpi', 'cx') and coalesce(trim(comment), '') = ''").fetchall()
    columns = built.execute("select schema_name || '.' || table_name || '.' || column_name from duckdb_columns() "
                            "where schema_name in ('core', 'kpi', 'cx') and coalesce(trim(comment), '') = ''").fetchall()
    assert tables == [] and columns == []
    assert built.execute("select comment from duckdb_columns() where table_name = 'fct_orders' and column_name = "
                         "'person_sk'").fetchone()[0].startswith("Resolved person")  # a doc block, rendered


def test_kpi_dictionary_defines_every_kpi_the_build_publishes(built):
    defined = {r[0] for r in built.execute("select kpi from kpi.kpi_dictionary").fetchall()}
    published = {r[0] for r in built.execute("select kpi from kpi.kpi_period union select kpi from kpi.kpi_daily")
                 .fetchall()}
    assert published and published <= defined


# ------------------------------------------------ identity audit marts (issue 19 point 7), hand-computed from the rows

# (source, rule or unlinked reason) -> records, from raw_fixture.py:
#   odoo: partners 1, 2, 3, 6 (4 is quarantined: bad write_date), each with an e-mail -> email_hash (1 and 6: Anna)
#   hubspot: contacts 100001-100003 -> email_hash (Dave's 100002 only matches himself, still rule email_hash)
#   ga4: the one user_id '1' = Odoo partner 1
#   ga4_pseudo: 'u1' logged in as '1'; every other browser never logged in (counted from the raw events below)
#   trustpilot: t1 (S00001 -> partner 1) and t2 (S00002 -> partner 2) by reference; t3 has no id (quarantined);
#     t4-t7 carry neither reference nor referral e-mail -> no_matching_evidence
#   email_recipient: anna@, bob@ (and 'Bob@Example.com', the same hash) match; carol@example.com is not
#     carol.groß@ -> 3 hashes, 2 linked
#   google_reviews: g1, g2, g4 staged (g3's STAR_RATING_UNSPECIFIED is quarantined): no identifier at all
IDENTITY_COVERAGE = {
    ("odoo", "email_hash"): 4, ("hubspot", "email_hash"): 3, ("ga4", "ga4_user_id_is_odoo_partner_id"): 1,
    ("ga4_pseudo", "ga4_pseudo_id_after_login"): 1,
    ("trustpilot", "trustpilot_reference_id_is_order_name"): 2, ("trustpilot", "no_matching_evidence"): 4,
    ("email_recipient", "email_recipient_hash"): 2, ("email_recipient", "no_matching_evidence"): 1,
    ("google_reviews", "no_identifier_in_source"): 3,
}


def test_identity_coverage_counts_each_sources_records_by_rule_and_reconciles(built):
    anonymous = built.execute("select count(distinct user_pseudo_id) from raw_ga4.events "
                              "where user_pseudo_id is not null and user_pseudo_id <> 'u1'").fetchone()[0]
    want = {**IDENTITY_COVERAGE, ("ga4_pseudo", "no_matching_evidence"): anonymous}
    rows = built.execute("select source, rule, outcome, records, source_records, source_linked, source_unlinked, "
                         "share_of_source, source_linked_share from cx.cx_identity_coverage").fetchall()
    assert {(s, r): n for s, r, _, n, *_ in rows} == want
    for source in {s for s, _ in want}:
        mine = [r for r in rows if r[0] == source]
        records = sum(n for (s, _), n in want.items() if s == source)
        linked = sum(n for (s, r), n in want.items() if s == source and not r.startswith("no_"))
        for _, rule, outcome, n, total, lk, unl, share, lshare in mine:
            assert outcome == ("unlinked" if rule.startswith("no_") else "linked"), (source, rule)
            assert (total, lk, unl) == (records, linked, records - linked), source
            assert lk + unl == total
            assert math.isclose(share, n / records) and math.isclose(lshare, linked / records)


@pytest.mark.dbt_select("+cx_identity_link_audit", "+int_identity_links", "+dim_customers")
def test_identity_link_audit_names_rule_person_and_the_load_of_the_evidence(built):
    audit = {r[0]: r[1:] for r in built.execute(
        "select link_key, person_sk, rule, same_source_records, person_records, has_conflict, evidence_load_id "
        "from cx.cx_identity_link_audit").fetchall()}
    links = built.execute("select source || ':' || source_id, person_id, rule "
                          "from intermediate.int_identity_links").fetchall()
    assert {k: v[:2] for k, v in audit.items()} == {k: (p, r) for k, p, r in links}
    anna = audit["odoo:1"][0]
    # Anna: 2 ERP partners, her contact, user_id 1, browser u1, review t1 and her recipient hash = 7 records
    assert audit["odoo:6"] [:5] == (anna, "email_hash", 2, 7, True)
    assert audit["hubspot:100001"][:5] == (anna, "email_hash", 1, 7, False)
    assert audit["trustpilot:t1"][:2] == (anna, "trustpilot_reference_id_is_order_name")
    assert audit["hubspot:100002"][2:4] == (1, 1)            # Dave: only his CRM contact
    # the load of the current version: Bob's partner 2 was rewritten in the second load, partner 1 only in the first
    loads = dict(built.execute("select cast(id as varchar), max(_load_id) from raw_odoo.res_partner "
                               "group by 1").fetchall())
    assert audit["odoo:2"][5] == loads["2"] != loads["1"] == audit["odoo:1"][5]
    assert audit["ga4:1"][5] == built.execute("select min(_load_id) from raw_ga4.events where user_id = '1'"
                                              ).fetchone()[0]
    assert built.execute("select count(*) from cx.cx_identity_link_audit l left join core.dim_customers d "
                         "on d.person_sk = l.person_sk where d.person_sk is null").fetchone()[0] == 0


def test_identity_conflict_audit_names_the_winning_and_losing_rule(built):
    rows = built.execute("select source, source_record_id, resolution, person_sk, winning_rule, losing_rule, reason "
                         "from cx.cx_identity_conflict_audit order by source_record_id").fetchall()
    anna = built.execute("select person_id from intermediate.int_identity_links where source = 'odoo' "
                         "and source_id = '1'").fetchone()[0]
    assert [r[:6] for r in rows] == [("odoo", p, "merged_one_person", anna, "email_hash", "erp_partner_is_person")
                                     for p in ("1", "6")]
    assert all("2 Odoo partners" in r[6] for r in rows)


def test_identity_audit_marts_hold_no_plaintext_email_phone_or_name(built):
    from cxw.gate.marts_suites import PII_REGEX

    names = [n for (n,) in built.execute("select distinct name from raw_odoo.res_partner").fetchall()] + \
        ["Anna", "Nguyen", "Dave", "Smith", "Carol", "Tran"]
    for table in ("cx_identity_link_audit", "cx_identity_coverage", "cx_identity_conflict_audit"):
        cols = [c for c, t in built.execute(
            "select column_name, data_type from information_schema.columns where table_schema = 'cx' "
            "and table_name = ?", [table]).fetchall() if t == "VARCHAR"]
        assert cols, table
        for col in cols:
            values = [v for (v,) in built.execute(f'select distinct "{col}" from cx.{table}').fetchall() if v]
            assert not [v for v in values if re.search(PII_REGEX, v)], f"plaintext e-mail / phone in {table}.{col}"
            assert not [v for v in values if any(n.lower() in v.lower() for n in names)], f"a name in {table}.{col}"


# ---------------------------------------------------------------- segments / personas (issue 19.1, docs/segments.md)

_KPI_ROWS = ("select 'day' as grain, kpi_date as period_start, channel, segment, kpi, numerator, denominator, n "
             "from kpi.kpi_daily union all select grain, period_start, channel, segment, kpi, numerator, "
             "denominator, n from kpi.kpi_period")


@pytest.mark.dbt_select("+kpi_daily", "+kpi_period")
@pytest.mark.parametrize("dimension", ["segment", "channel"])
def test_segment_and_channel_rows_sum_to_the_all_row(built, dimension):
    """Per segment (channel 'all') and per channel (segment 'all'), the rows of a KPI and period partition its 'all'
    row: numerators, denominators and n sum to it (sums of counts, never averages of rates)."""
    other = "channel" if dimension == "segment" else "segment"
    parts = {(g, str(p), k): (num, den, n) for g, p, k, num, den, n in built.execute(
        f"select grain, period_start, kpi, sum(numerator), sum(denominator), sum(n) from ({_KPI_ROWS}) "
        f"where {dimension} <> 'all' and {other} = 'all' group by all").fetchall()}
    totals = {(g, str(p), k): (num, den, n) for g, p, k, num, den, n in built.execute(
        f"select grain, period_start, kpi, numerator, denominator, n from ({_KPI_ROWS}) "
        "where segment = 'all' and channel = 'all'").fetchall()}
    split = built.execute(f"select count(distinct {dimension}) from ({_KPI_ROWS}) where {dimension} <> 'all'"
                          ).fetchone()[0]
    assert split >= 2 and len(parts) >= 20, (split, len(parts))  # the fixture splits into several values
    for key, (num, den, n) in parts.items():
        assert key in totals, f"{key}: split by {dimension} but no 'all' row"
        t_num, t_den, t_n = totals[key]
        assert n == t_n, (key, n, t_n)
        assert (den is None) == (t_den is None), key
        for got, want in ((num, t_num), (den, t_den)):
            if want is not None:
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (key, got, want)
    # the ratio of the 'all' row is the ratio of the summed counts, not an average of the parts' ratios
    assert built.execute(f"select count(*) from ({_KPI_ROWS}) where segment <> 'all' and channel <> 'all'"
                         ).fetchone()[0] == 0


@pytest.mark.dbt_select("+int_customer_segments_monthly", "+fct_orders", "+fct_support_tickets",
                         "+dim_customer_segments", "+fct_survey_responses", "+kpi_daily")
def test_no_segment_is_computed_from_data_after_its_as_of_date(built):
    """Every month-end row of int_customer_segments_monthly equals its inputs recomputed from the facts dated on or
    before as_of_date (orders, revenue, tickets, engagement), and a segment is valid only after its month end: the
    row a KPI fact takes (valid_from <= date) was computed before that date."""
    recomputed = built.execute("""
        with m as (select * from intermediate.int_customer_segments_monthly),
        o as (select person_sk, order_date from core.fct_orders where is_confirmed),
        t as (select person_sk, created_date from core.fct_support_tickets)
        select m.person_sk, m.as_of_date,
               m.orders_total, (select count(*) from o where o.person_sk = m.person_sk and o.order_date <= m.as_of_date),
               m.last_order_date, (select max(order_date) from o where o.person_sk = m.person_sk
                                   and o.order_date <= m.as_of_date),
               m.first_order_date, (select min(order_date) from o where o.person_sk = m.person_sk
                                    and o.order_date <= m.as_of_date),
               m.tickets_recent, (select count(*) from t where t.person_sk = m.person_sk
                                  and t.created_date <= m.as_of_date
                                  and t.created_date > m.as_of_date - interval 3 month)
        from m""").fetchall()
    assert len(recomputed) >= 5
    later = built.execute("select max(order_date) from core.fct_orders where is_confirmed").fetchone()[0]
    assert any(r[1] < later for r in recomputed), "no month end before the last order: the check would be void"
    for row in recomputed:
        person, as_of = row[:2]
        for got, want in zip(row[2::2], row[3::2]):
            assert got == want, (person, as_of, row)
    assert built.execute("select count(*) from core.dim_customer_segments where valid_from <= first_as_of_date"
                         ).fetchone()[0] == 0
    # a response's segment: the person's segment as of the response date (the run valid on that day), else 'new'
    for person, day, want in built.execute("""
            select f.person_sk, f.submitted_date,
                   coalesce((select s.segment from core.dim_customer_segments s where s.person_sk = f.person_sk
                             and f.submitted_date >= s.valid_from
                             and (s.valid_to is null or f.submitted_date < s.valid_to)), 'new')
            from core.fct_survey_responses f where f.person_sk <> '-1' and f.survey_type = 'NPS'""").fetchall():
        segs = {s for (s,) in built.execute(
            "select segment from kpi.kpi_daily where kpi = 'nps' and kpi_date = ? and channel = 'all' "
            "and segment <> 'all'", [day]).fetchall()}
        assert want in segs, (person, day, want, segs)


def test_dim_customers_segment_is_the_current_segment(built):
    rows = built.execute("""
        select c.person_sk, c.segment, s.segment
        from core.dim_customers c
        left join core.dim_customer_segments s on s.person_sk = c.person_sk and s.is_current""").fetchall()
    assert rows and all(seg == (cur or ("unresolved" if p == "-1" else "prospect")) for p, seg, cur in rows), rows
    assert built.execute("select count(*) from (select person_sk from core.dim_customer_segments where is_current "
                         "group by 1 having count(*) > 1)").fetchone()[0] == 0
