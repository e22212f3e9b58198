"""dbt build over a small hand-made raw fixture (tests/dbt/raw_fixture.py): the build passes, and KPIs, quarantine
reasons, ledger conservation and identity resolution equal values computed by hand from the fixture rows."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_fixture")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({
        "CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
    })
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt) if dbt.exists() else "dbt", "build", "--project-dir", str(PROJECT),
                           "--profiles-dir", str(PROJECT)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    yield con
    con.close()


def _day(con, kpi, day):
    return con.execute("select numerator, denominator, value, n from kpi.kpi_daily where kpi = ? and kpi_date = ? "
                       "and channel = 'all' and segment = 'all'", [kpi, day]).fetchone()


def _period(con, kpi, grain, start):
    return con.execute("select numerator, denominator, value, n from kpi.kpi_period where kpi = ? and grain = ? "
                       "and period_start = ?", [kpi, grain, start]).fetchone()


def _eq(row, expected):
    assert row is not None, "row missing"
    for got, want in zip(row, expected):
        if want is None:
            assert got is None
        else:
            assert math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9), (row, expected)


def test_survey_kpis(built):
    # NPS 03-05: 10, 9, 7, 3 and 500005 whose latest version (L2) is 9 (its L1 version, 4, is a duplicate)
    # -> promoters 3, detractors 1, responses 5 -> 100 * 2 / 5 = 40; the out-of-range '11' is quarantined
    _eq(_day(built, "nps", "2025-03-05"), (2, 5, 40.0, 5))
    # CSAT 03-06: 5, 4, 2 -> 2 of 3 satisfied, mean 11 / 3; 'five' is quarantined
    _eq(_day(built, "csat_pct", "2025-03-06"), (2, 3, 200 / 3, 3))
    _eq(_day(built, "csat_mean", "2025-03-06"), (11, 3, 11 / 3, 3))
    # CES 03-07: 6, 3 -> mean 4.5, easy 1 of 2
    _eq(_day(built, "ces_mean", "2025-03-07"), (9, 2, 4.5, 2))
    _eq(_day(built, "ces_easy_pct", "2025-03-07"), (1, 2, 50.0, 2))
    assert built.execute("select count(*) from kpi.kpi_daily where kpi = 'nps' and kpi_date = '2025-03-08'"
                         ).fetchone()[0] == 0


def test_web_kpis(built):
    # 2025-03-01, re-delivered day: u1 (2 page views + purchase), u2 (one page view, duplicate collapsed), u4
    # (session_engaged int '1', add_to_cart), u3 (string '1', crosses midnight, dated 03-01); the ping is excluded
    _eq(_day(built, "sessions", "2025-03-01"), (4, None, 4, 4))
    _eq(_day(built, "engagement_rate", "2025-03-01"), (3, 4, 0.75, 4))
    _eq(_day(built, "bounce_rate", "2025-03-01"), (1, 4, 0.25, 4))
    _eq(_day(built, "conversion_rate", "2025-03-01"), (1, 4, 0.25, 4))
    _eq(_day(built, "cart_abandonment_rate", "2025-03-01"), (1, 2, 0.5, 2))
    _eq(_day(built, "avg_engagement_time_msec", "2025-03-01"), (5000, 4, 1250, 4))
    assert _day(built, "sessions", "2025-03-02") is None
    assert built.execute("select sum(events) from core.fct_web_unsessioned_events").fetchone()[0] == 1


def test_commerce_delivery_email_review_kpis(built):
    _eq(_day(built, "orders", "2025-03-01"), (1, None, 1, 1))
    _eq(_period(built, "net_revenue", "window", "2025-03-01"), (350, None, 350, 3))
    _eq(_period(built, "gross_revenue", "window", "2025-03-01"), (423.5, None, 423.5, 3))
    _eq(_period(built, "aov", "month", "2025-03-01"), (300, 2, 150, 2))
    # Anna: March (partner 1) + April (partner 6, her second ERP record: one person, one customer); Bob: March only
    _eq(_period(built, "purchase_frequency", "window", "2025-03-01"), (3, 2, 1.5, 2))
    _eq(_period(built, "repeat_customer_rate", "window", "2025-03-01"), (1, 2, 0.5, 2))
    _eq(_period(built, "retention_rate", "month", "2025-04-01"), (1, 2, 50.0, 2))
    _eq(_day(built, "on_time_delivery_rate", "2025-03-03"), (1, 2, 0.5, 2))
    # campaign sent 03-04: anna delivered+open+click, bob delivered + machine open + unsubscribe, carol bounced
    _eq(_day(built, "email_open_rate", "2025-03-04"), (1, 2, 0.5, 2))
    _eq(_day(built, "email_click_rate", "2025-03-04"), (1, 2, 0.5, 2))
    _eq(_day(built, "email_unsubscribe_rate", "2025-03-04"), (1, 2, 0.5, 2))
    _eq(_day(built, "email_click_to_open_rate", "2025-03-04"), (1, 1, 1.0, 1))
    # reviews 03-05: google 5 (reply +10 h), 2; trustpilot 4 (+02:00 offset, reply +4 h), 1
    _eq(_day(built, "review_rating_avg", "2025-03-05"), (12, 4, 3.0, 4))
    _eq(_day(built, "review_negative_share", "2025-03-05"), (2, 4, 0.5, 4))
    _eq(_day(built, "review_reply_rate", "2025-03-05"), (2, 4, 0.5, 4))
    _eq(_period(built, "review_reply_time_median_h", "month", "2025-03-01"), (None, None, 7.0, 2))
    _eq(_period(built, "review_reply_time_p90_h", "window", "2025-03-01"), (None, None, 9.4, 2))
    _eq(_period(built, "first_response_median_h", "month", "2025-03-01"), (None, None, 4.0, 2))
    _eq(_period(built, "resolution_median_h", "month", "2025-03-01"), (None, None, 10.0, 1))


def test_quarantine_reasons(built):
    got = set(built.execute("select source, entity, record_id, reason from staging.quarantine").fetchall())
    assert got == {
        ("odoo", "res_partner", "4", "bad_timestamp"),
        ("hubspot", "feedback_submissions", "500031", "score_out_of_range"),
        ("hubspot", "feedback_submissions", "500032", "score_not_numeric"),
        ("hubspot", "feedback_submissions", "500033", "bad_timestamp"),
        ("google_reviews", "reviews", "g3", "rating_invalid"),
        ("trustpilot", "reviews", None, "missing_id"),
    }


def test_ledger_conserves_rows(built):
    rows = built.execute("select source, entity, load_id, extracted, staged, quarantined, duplicates "
                         "from staging.load_ledger").fetchall()
    assert rows and all(x == s + q + d for _, _, _, x, s, q, d in rows)
    by = {(r[0], r[1], r[2][-8:]): r[3:] for r in rows}
    assert by[("ga4", "events", "aaaaaaaa")] == (4, 1, 0, 3)        # 03-01 first delivery superseded
    assert by[("ga4", "events", "bbbbbbbb")] == (10, 9, 0, 1)       # one exact duplicate
    assert by[("hubspot", "feedback_submissions", "aaaaaaaa")] == (10, 9, 0, 1)
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
