"""Every check of the marts gate's suites (cxw/gate/marts_suites.py), table-driven, through the real gate code
(`cxw.gate.Gate`, GX pandas engine) on small frames.

`MARTS_CHECKS` below lists every check of every suite with its bound written out literally. Two kinds of test:
* the suites hold exactly the checks of the table (`test_marts_suites_hold_exactly_the_checks_of_the_table`): a
  deleted, added or widened check (e.g. the NPS range widened to ±1000) changes the set and fails;
* each check (of the KPI ranges, which the suites read from the seed kpi_definitions: those of BROKEN_KPIS) is
  broken by one row just outside its bound (a value past the range, a duplicated or null key, an
  empty table, a missing key column): the suite fails on exactly that check, named by its expectation, column and
  condition (`test_marts_check_fails_just_outside_its_bound[...]`). A widened bound lets the row through and fails.
The base frame of each suite passes every check (`test_marts_suite_passes_its_valid_frame`), so each failure is the
planted row's. The checks `cxw.gate.validate_marts` adds around the suites (row-count drop vs the published
generation, KPI freshness from the data interval end, PII in free text downgraded to a warning) are run through
`validate` itself on small DuckDB files, at their bounds. The raw gate's suites have the same kind of table in
test_raw_gate_checks.py.
"""
from __future__ import annotations

import itertools

import pandas as pd
import pytest

from cxw.gate.marts_suites import EMAIL_REGEX, PHONE_REGEX, PII_REGEX, SUITES, pii_checks

EPS = 1e-6  # "just outside" a real-valued bound


def _key_checks(table: str, key: str) -> list[tuple]:
    return [
        (table, "ExpectTableRowCountToBeBetween", None, None, {"min_value": 1}, ("empty",)),
        (table, "ExpectColumnToExist", key, None, {}, ("drop", key)),
        (table, "ExpectColumnValuesToNotBeNull", key, None, {}, ("null", key)),
        (table, "ExpectColumnValuesToBeUnique", key, None, {}, ("dup", key)),
    ]


# the seeds customer_segments and channels, in their order
SEGMENTS = ["support_heavy", "prospect", "new", "champions", "loyal", "occasional", "at_risk", "hibernating",
            "unresolved"]
CHANNELS = ["web", "email", "online_store", "store", "sales_team", "phone_chat", "delivery", "review_site", "survey"]
BROKEN_KPIS = ("nps", "csat_pct", "ces_easy_pct", "retention_rate", "csat_mean", "ces_mean", "review_rating_avg",
               "engagement_rate", "review_negative_share")


def _kpi_checks(table: str, fresh: bool) -> list[tuple]:
    rows = [
        (table, "ExpectTableRowCountToBeBetween", None, None, {"min_value": 1}, ("empty",)),
        (table, "ExpectColumnValuesToNotBeNull", "kpi", None, {}, ("null", "kpi")),
        (table, "ExpectColumnValuesToNotBeNull", "n", None, {}, ("null", "n")),
        (table, "ExpectColumnValuesToBeBetween", "n", None, {"min_value": 0}, ("set", "kpi", "nps", "n", -1)),
    ]
    # every KPI range of the seed kpi_definitions (the gate reads them from there), written out; the KPIs of
    # BROKEN_KPIS are also broken just outside each bound (a run of the gate each), the others only listed
    pct, frac, hours = (0, 100), (0, 1), (0, None)
    ranges = [("nps", -100, 100), ("nps_customer_level", -100, 100), ("csat_pct", *pct), ("csat_mean", 1, 5),
              ("ces_mean", 1, 7), ("ces_easy_pct", *pct), ("review_rating_avg", 1, 5),
              ("review_negative_share", *frac), ("review_positive_share", *frac), ("review_reply_rate", *frac),
              ("review_reply_time_median_h", *hours), ("review_reply_time_p90_h", *hours), ("sessions", 0, None),
              ("engagement_rate", *frac), ("bounce_rate", *frac), ("conversion_rate", *frac),
              ("cart_abandonment_rate", *frac), ("avg_engagement_time_msec", 0, None), ("orders", 0, None),
              ("purchase_frequency", 1, None), ("repeat_customer_rate", *frac), ("retention_rate", 0, None),
              ("on_time_delivery_rate", *frac), ("email_open_rate", *frac), ("email_click_rate", *frac),
              ("email_click_to_open_rate", *frac), ("email_unsubscribe_rate", *frac),
              ("first_response_median_h", *hours), ("first_response_p90_h", *hours), ("resolution_median_h", *hours),
              ("resolution_p90_h", *hours), ("open_backlog", 0, None), ("loop_closed_rate", *frac)]
    for kpi, lo, hi in ranges:
        cond = f'kpi=="{kpi}"'
        bounds = {"min_value": lo, "max_value": hi}
        broken = kpi in BROKEN_KPIS
        rows.append((table, "ExpectColumnValuesToBeBetween", "value", cond, bounds,
                     ("set", "kpi", kpi, "value", lo - EPS) if broken else None))
        if hi is not None and broken:
            rows.append((table, "ExpectColumnValuesToBeBetween", "value", cond, bounds,
                         ("set", "kpi", kpi, "value", hi + EPS)))
    # segment / channel of a row: 'all' or a code of the seeds customer_segments / channels (issue 19 point 1)
    rows += [(table, "ExpectColumnValuesToBeInSet", "segment", None, {"value_set": ["all", *SEGMENTS]},
              ("set", "kpi", "nps", "segment", "vip")),
             (table, "ExpectColumnValuesToBeInSet", "channel", None, {"value_set": ["all", "unknown", *CHANNELS]},
              ("set", "kpi", "nps", "channel", "fax"))]
    if fresh:
        b = {"min_value": 1, "max_value": 3}
        rows += [(table, "ExpectColumnMinToBeBetween", "_days_before_interval_end", None, b,
                  ("all", "_days_before_interval_end", 4)),                      # newest day 4 days old: stale
                 (table, "ExpectColumnMinToBeBetween", "_days_before_interval_end", None, b,
                  ("set", "kpi", "nps", "_days_before_interval_end", 0))]        # a day at the interval end: future
    return rows


def _range(table, column, cond, lo, hi, lo_case, hi_case, mostly=None):
    b = {"min_value": lo, "max_value": hi, **({"mostly": mostly} if mostly is not None else {})}
    out = [(table, "ExpectColumnValuesToBeBetween", column, cond, b, lo_case)]
    if hi_case:
        out.append((table, "ExpectColumnValuesToBeBetween", column, cond, b, hi_case))
    return out


S, A = "core.fct_survey_responses", "cx.cx_detractor_alerts"
VT = "kpi.kpi_vs_target"
CP, CC = "cx.cx_customer_clv_predicted", "cx.cx_clv_calibration"
KD = "cx.cx_key_drivers"
LT, FT, LP = "cx.cx_learned_topics", "cx.cx_feedback_topics", "cx.cx_learned_topic_pareto"
IL, IC, IX = "cx.cx_identity_link_audit", "cx.cx_identity_coverage", "cx.cx_identity_conflict_audit"
MARTS_CHECKS: list[tuple] = [
    *_kpi_checks("kpi.kpi_daily", fresh=True),
    *_kpi_checks("kpi.kpi_period", fresh=False),
    *_key_checks("core.dim_customers", "person_sk"),
    ("core.dim_customers", "ExpectColumnValuesToBeInSet", "segment", None, {"value_set": SEGMENTS},
     ("set", "person_sk", "k1", "segment", "vip")),
    *_key_checks("core.dim_customer_segments", "segment_version_sk"),
    ("core.dim_customer_segments", "ExpectColumnValuesToNotBeNull", "person_sk", None, {}, ("null", "person_sk")),
    ("core.dim_customer_segments", "ExpectColumnValuesToBeInSet", "segment", None, {"value_set": SEGMENTS[:-1]},
     ("set", "segment_version_sk", "p1:2025-02-01", "segment", "unresolved")),
    *_range("core.dim_customer_segments", "months_in_segment", None, 1, None,
            ("set", "segment_version_sk", "p1:2025-02-01", "months_in_segment", 0), None),
    ("core.dim_customer_segments", "ExpectColumnValuesToNotBeNull", "valid_from", None, {}, ("null", "valid_from")),
    *_key_checks("core.dim_products", "product_sk"),
    *_key_checks("core.fct_orders", "order_id"),
    ("core.fct_orders", "ExpectColumnValuesToBeBetween", "amount_total", None, {"min_value": 0, "mostly": 0.99},
     ("set", "order_id", "o1", "amount_total", -0.01)),
    *_key_checks("core.fct_order_lines", "order_line_id"),
    *_key_checks("core.fct_deliveries", "picking_id"),
    *_key_checks("core.fct_support_tickets", "ticket_id"),
    *_key_checks("core.fct_email_events", "campaign_recipient_key"),
    *_key_checks(S, "feedback_id"),
    *_range(S, "score", 'survey_type=="NPS"', 0, 10, ("set", "survey_type", "NPS", "score", -1),
            ("set", "survey_type", "NPS", "score", 11)),
    *_range(S, "score", 'survey_type=="CSAT"', 1, 5, ("set", "survey_type", "CSAT", "score", 0),
            ("set", "survey_type", "CSAT", "score", 6)),
    *_range(S, "score_normalised", 'survey_type=="CES"', 1, 7, ("set", "survey_type", "CES", "score_normalised", 0),
            ("set", "survey_type", "CES", "score_normalised", 8)),
    *_key_checks("core.fct_reviews", "review_key"),
    *_range("core.fct_reviews", "rating", None, 1, 5, ("set", "review_key", "r1", "rating", 0),
            ("set", "review_key", "r1", "rating", 6)),
    *_key_checks("core.fct_web_sessions", "session_key"),
    *_key_checks("cx.cx_customer_360", "person_sk"),
    *_key_checks(A, "alert_id"),
    (A, "ExpectColumnValuesToBeInSet", "alert_type", None,
     {"value_set": ["nps_detractor", "csat_low", "review_low"]}, ("set", "alert_id", "a3", "alert_type", "ces_low")),
    *_range(A, "score", 'alert_type=="nps_detractor"', 0, 6, ("set", "alert_id", "a1", "score", -1),
            ("set", "alert_id", "a1", "score", 7)),
    (A, "ExpectColumnValuesToNotBeNull", "created_at", None, {}, ("null", "created_at")),
    *_key_checks(IL, "link_key"),
    (IL, "ExpectColumnValuesToNotBeNull", "person_sk", None, {}, ("null", "person_sk")),
    (IL, "ExpectColumnValuesToBeInSet", "source", None,
     {"value_set": ["odoo", "hubspot", "ga4", "ga4_pseudo", "trustpilot", "email_recipient"]},
     ("set", "link_key", "odoo:1", "source", "google_reviews")),
    *_key_checks(IC, "coverage_key"),
    *_range(IC, "share_of_source", None, 0, 1, ("set", "coverage_key", "odoo:email_hash", "share_of_source", -EPS),
            ("set", "coverage_key", "odoo:email_hash", "share_of_source", 1 + EPS)),
    *_range(IC, "source_linked_share", None, 0, 1,
            ("set", "coverage_key", "ga4:no_matching_evidence", "source_linked_share", -EPS),
            ("set", "coverage_key", "ga4:no_matching_evidence", "source_linked_share", 1 + EPS)),
    *_key_checks(IX, "conflict_key"),
    (IX, "ExpectColumnValuesToNotBeNull", "losing_rule", None, {}, ("null", "losing_rule")),
    # key drivers (issue 19 point 2): may be empty (no score with enough responses), so no row-count check
    (KD, "ExpectColumnValuesToNotBeNull", "driver_key", None, {}, ("null", "driver_key")),
    (KD, "ExpectColumnValuesToBeUnique", "driver_key", None, {}, ("dup", "driver_key")),
    (KD, "ExpectColumnValuesToBeInSet", "score", None, {"value_set": ["nps", "csat", "review_rating"]},
     ("set", "driver_key", "d1", "score", "ces")),
    (KD, "ExpectColumnValuesToBeInSet", "period_grain", None, {"value_set": ["quarter", "window"]},
     ("set", "driver_key", "d1", "period_grain", "year")),
    *_range(KD, "importance_share", None, -0.05, 1.05, ("set", "driver_key", "d1", "importance_share", -0.06),
            ("set", "driver_key", "d1", "importance_share", 1.06)),
    *_range(KD, "ci_low", None, -0.05, 1.05, ("set", "driver_key", "d1", "ci_low", -0.06), None),
    *_range(KD, "ci_high", None, -0.05, 1.05, None, ("set", "driver_key", "d1", "ci_high", 1.06)),
    *_range(KD, "r_squared", None, 0, 1, ("set", "driver_key", "d1", "r_squared", -0.01),
            ("set", "driver_key", "d1", "r_squared", 1.01)),
    *_range(KD, "n_responses", None, 100, None, ("set", "driver_key", "d1", "n_responses", 99), None),
    (KD, "ExpectColumnPairValuesAToBeGreaterThanB", None, None, {}, None),
    # predictive CLV (issue 19 point 4): may be empty (too few customers, history too short), so no row-count check
    (CP, "ExpectColumnValuesToNotBeNull", "person_sk", None, {}, ("null", "person_sk")),
    (CP, "ExpectColumnValuesToBeUnique", "person_sk", None, {}, ("dup", "person_sk")),
    (CP, "ExpectColumnValuesToNotBeNull", "p_alive", None, {}, ("null", "p_alive")),
    *_range(CP, "p_alive", None, 0, 1, ("set", "person_sk", "p1", "p_alive", -EPS),
            ("set", "person_sk", "p1", "p_alive", 1 + EPS)),
    *[r for col in ("frequency", "recency_weeks", "t_weeks", "monetary", "expected_purchases_12m",
                    "expected_value_12m")
      for r in _range(CP, col, None, 0, None, ("set", "person_sk", "p1", col, -EPS if col != "frequency" else -1),
                      None)],
    (CP, "ExpectColumnValuesToNotBeNull", "expected_value_12m", None, {}, ("null", "expected_value_12m")),
    (CC, "ExpectColumnValuesToNotBeNull", "frequency_bucket", None, {}, ("null", "frequency_bucket")),
    (CC, "ExpectColumnValuesToBeUnique", "frequency_bucket", None, {}, ("dup", "frequency_bucket")),
    (CC, "ExpectColumnValuesToBeInSet", "frequency_bucket", None,
     {"value_set": ["0", "1", "2", "3", "4", "5", "6", "7+", "all"]},
     ("set", "frequency_bucket", "1", "frequency_bucket", "8")),
    *_range(CC, "n_customers", None, 1, None, ("set", "frequency_bucket", "1", "n_customers", 0), None),
    *_range(CC, "predicted_purchases", None, 0, None,
            ("set", "frequency_bucket", "1", "predicted_purchases", -EPS), None),
    *_range(CC, "actual_purchases", None, 0, None, ("set", "frequency_bucket", "1", "actual_purchases", -1), None),
    *_range(CC, "mean_absolute_error", None, 0, None,
            ("set", "frequency_bucket", "1", "mean_absolute_error", -EPS), None),
    # learned topics (issue 19 point 6): may be empty (too few texts to fit), so no row-count check
    (LT, "ExpectColumnValuesToNotBeNull", "topic_key", None, {}, ("null", "topic_key")),
    (LT, "ExpectColumnValuesToBeUnique", "topic_key", None, {}, ("dup", "topic_key")),
    (LT, "ExpectColumnValuesToBeUnique", "topic_label", None, {}, ("dup", "topic_label")),
    *_range(LT, "n_feedback", None, 0, None, ("set", "topic_key", "t1", "n_feedback", -1), None),
    *_range(LT, "share_of_feedback", None, 0, 1, ("set", "topic_key", "t1", "share_of_feedback", -EPS),
            ("set", "topic_key", "t1", "share_of_feedback", 1 + EPS)),
    *_range(LT, "seed_match_share", None, 0, 1, ("set", "topic_key", "t1", "seed_match_share", -EPS),
            ("set", "topic_key", "t1", "seed_match_share", 1 + EPS)),
    (FT, "ExpectColumnValuesToNotBeNull", "feedback_key", None, {}, ("null", "feedback_key")),
    (FT, "ExpectColumnValuesToBeUnique", "feedback_key", None, {}, ("dup", "feedback_key")),
    (FT, "ExpectColumnValuesToBeInSet", "feedback_kind", None, {"value_set": ["review", "survey_response", "ticket"]},
     ("set", "feedback_key", "f1", "feedback_kind", "email")),
    (FT, "ExpectColumnValuesToNotBeNull", "topic_key", None, {}, ("null", "topic_key")),
    *_range(FT, "topic_weight", None, 0, 1, ("set", "feedback_key", "f1", "topic_weight", -EPS),
            ("set", "feedback_key", "f1", "topic_weight", 1 + EPS)),
    (LP, "ExpectColumnValuesToNotBeNull", "pareto_key", None, {}, ("null", "pareto_key")),
    (LP, "ExpectColumnValuesToBeUnique", "pareto_key", None, {}, ("dup", "pareto_key")),
    (LP, "ExpectColumnValuesToBeInSet", "source", None,
     {"value_set": ["review", "survey_response", "ticket", "all"]}, ("set", "pareto_key", "p1", "source", "email")),
    *_range(LP, "occurrences", None, 1, None, ("set", "pareto_key", "p1", "occurrences", 0), None),
    *_range(LP, "share_of_source", None, 0, 1, ("set", "pareto_key", "p1", "share_of_source", -EPS),
            ("set", "pareto_key", "p1", "share_of_source", 1 + EPS)),
    *_range(LP, "cumulative_share", None, 0, 1, ("set", "pareto_key", "p1", "cumulative_share", -EPS),
            ("set", "pareto_key", "p1", "cumulative_share", 1 + EPS)),
    # kpi_vs_target (issue 19 point 3): may be empty (no targets set), so no row-count check
    (VT, "ExpectColumnValuesToNotBeNull", "target_key", None, {}, ("null", "target_key")),
    (VT, "ExpectColumnValuesToBeUnique", "target_key", None, {}, ("dup", "target_key")),
    (VT, "ExpectColumnValuesToBeInSet", "direction_of_good", None, {"value_set": ["higher", "lower"]},
     ("set", "target_key", "k2", "direction_of_good", "up")),
    (VT, "ExpectColumnValuesToBeInSet", "is_period_closed", "is_breach==True", {"value_set": [True]},
     ("set", "target_key", "k1", "is_period_closed", False)),   # a breach of the month in progress
]


def _base(table: str) -> pd.DataFrame:
    """A small frame of `table` that passes every check of its suite."""
    if table == VT:  # k1 a breach of a closed month, k2 met, k3 a missed month still in progress (no breach)
        return pd.DataFrame({"target_key": ["k1", "k2", "k3"], "direction_of_good": ["higher", "lower", "higher"],
                             "is_period_closed": [True, True, False], "is_breach": [True, False, False]})
    if table.startswith("kpi."):
        kpis = [("nps", -100.0), ("nps", 100.0), ("csat_pct", 0.0), ("csat_pct", 100.0), ("ces_easy_pct", 50.0),
                ("retention_rate", 0.0), ("retention_rate", 250.0), ("csat_mean", 1.0), ("csat_mean", 5.0),
                ("ces_mean", 7.0), ("review_rating_avg", 3.0), ("engagement_rate", 1.0),
                ("review_negative_share", 0.0), ("sessions", 5000.0), ("net_revenue", 1e6)]
        df = pd.DataFrame({"kpi": [k for k, _ in kpis], "value": [v for _, v in kpis], "n": [40] * len(kpis)})
        df["segment"] = ["all", "champions", "unresolved"] * (len(kpis) // 3)
        df["channel"] = ["all", "unknown", "all"] * (len(kpis) // 3)
        if table == "kpi.kpi_daily":
            df["_days_before_interval_end"] = [1, 2, 3] * (len(kpis) // 3)
        return df
    if table == S:
        return pd.DataFrame({"feedback_id": ["f1", "f2", "f3", "f4", "f5", "f6"],
                             "survey_type": ["NPS", "NPS", "CSAT", "CSAT", "CES", "CES"],
                             "score": [0, 10, 1, 5, 7, 1], "score_normalised": [0, 10, 1, 5, 1, 7]})
    if table == "core.fct_reviews":
        return pd.DataFrame({"review_key": ["r1", "r2", "r3"], "rating": [1, 5, 3]})
    if table == A:
        return pd.DataFrame({"alert_id": ["a1", "a2", "a3"], "alert_type": ["nps_detractor", "nps_detractor",
                                                                            "review_low"],
                             "score": [0, 6, 1], "created_at": pd.to_datetime(["2025-03-01"] * 3)})
    if table == IL:
        return pd.DataFrame({"link_key": ["odoo:1", "hubspot:c1", "ga4_pseudo:b1"],
                             "source": ["odoo", "hubspot", "ga4_pseudo"], "person_sk": ["p_1", "p_1", "p_1"]})
    if table == IC:
        return pd.DataFrame({"coverage_key": ["odoo:email_hash", "ga4:ga4_user_id_is_odoo_partner_id",
                                              "ga4:no_matching_evidence"],
                             "share_of_source": [1.0, 0.0, 1.0], "source_linked_share": [1.0, 0.0, 0.0]})
    if table == IX:
        return pd.DataFrame({"conflict_key": ["a:odoo:1", "a:odoo:2", "b:ga4_pseudo:x"],
                             "losing_rule": ["erp_partner_is_person", "erp_partner_is_person",
                                             "ga4_pseudo_id_after_login"]})
    if table == KD:
        return pd.DataFrame({"driver_key": ["d1", "d2", "d3"], "score": ["nps", "csat", "review_rating"],
                             "period_grain": ["quarter", "window", "window"], "importance_share": [0.5, 0.3, 0.2],
                             "ci_low": [0.4, 0.2, 0.1], "ci_high": [0.6, 0.4, 0.3], "r_squared": [0.3, 0.2, 0.1],
                             "n_responses": [100, 150, 200]})
    if table == CP:  # p1 at the bounds (alive 0, nothing expected), p2 a first-time buyer (p_alive 1)
        return pd.DataFrame({"person_sk": ["p1", "p2", "p3"], "p_alive": [0.0, 1.0, 0.4],
                             "frequency": [3, 0, 1], "recency_weeks": [0.0, 0.0, 5.5], "t_weeks": [0.0, 12.0, 40.0],
                             "monetary": [0.0, 0.0, 12.5], "expected_purchases_12m": [0.0, 0.9, 0.3],
                             "expected_value_12m": [0.0, 20.0, 4.0]})
    if table == CC:
        return pd.DataFrame({"frequency_bucket": ["0", "1", "7+", "all"], "n_customers": [1, 5, 2, 8],
                             "predicted_purchases": [0.0, 2.5, 1.0, 3.5], "actual_purchases": [0, 3, 1, 4],
                             "mean_absolute_error": [0.0, 0.4, 0.1, 0.3]})
    if table == LT:  # t1 at the bounds, t3 the texts no topic explains
        return pd.DataFrame({"topic_key": ["t1", "t2", "unassigned"], "topic_label": ["delivery", "a / b", "unassigned"],
                             "n_feedback": [0, 3, 1], "share_of_feedback": [0.0, 0.75, 0.25],
                             "seed_match_share": [1.0, 0.0, 0.0]})
    if table == FT:
        return pd.DataFrame({"feedback_key": ["f1", "f2", "f3"], "feedback_kind": ["review", "survey_response", "ticket"],
                             "topic_key": ["t1", "t2", "unassigned"], "topic_weight": [1.0, 0.4, 0.0]})
    if table == LP:
        return pd.DataFrame({"pareto_key": ["p1", "p2", "p3"], "source": ["review", "ticket", "all"],
                             "occurrences": [1, 2, 3], "share_of_source": [1.0, 0.5, 0.0001],
                             "cumulative_share": [1.0, 0.5, 0.0]})
    if table == "core.dim_customers":
        return pd.DataFrame({"person_sk": ["k1", "k2", "-1"], "segment": ["champions", "prospect", "unresolved"]})
    if table == "core.dim_customer_segments":
        return pd.DataFrame({"segment_version_sk": ["p1:2025-02-01", "p1:2025-04-01", "p2:2025-02-01"],
                             "person_sk": ["p1", "p1", "p2"], "segment": ["new", "at_risk", "prospect"],
                             "months_in_segment": [2, 1, 3],
                             "valid_from": pd.to_datetime(["2025-02-01", "2025-04-01", "2025-02-01"])})
    if table == "core.fct_orders":
        return pd.DataFrame({"order_id": ["o1", "o2", "o3"], "amount_total": [0.0, 10.0, 20.0]})
    key = next(c for t, e, c, *_ in MARTS_CHECKS if t == table and e == "ExpectColumnToExist")
    return pd.DataFrame({key: ["k1", "k2", "k3"]})


def _break(df: pd.DataFrame, case: tuple) -> pd.DataFrame:
    df = df.copy()
    kind = case[0]
    if kind == "empty":  # cxw.gate.marts derives _days_before_interval_end only for a non-empty kpi_daily
        return df.iloc[0:0].drop(columns=["_days_before_interval_end"], errors="ignore")
    if kind == "drop":
        return df.drop(columns=[case[1]])
    if kind == "null":
        df[case[1]] = df[case[1]].astype(object)
        df.loc[df.index[0], case[1]] = None
        return df
    if kind == "dup":
        df.loc[df.index[1], case[1]] = df.loc[df.index[0], case[1]]
        return df
    if kind == "all":
        df[case[1]] = case[2]
        return df
    _, where_col, where_val, col, value = case
    rows = df.index[df[where_col] == where_val]
    assert len(rows), case
    df.loc[rows[0], col] = value
    return df


def _ident(expectation, column, cond, bounds) -> tuple:
    return (expectation, column, cond, tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                    for k, v in bounds.items())))


def _check_ident(c) -> tuple:
    kw = c.kwargs
    bounds = {k: kw[k] for k in ("min_value", "max_value", "mostly", "value_set", "regex", "type_") if k in kw}
    return _ident(c.expectation, kw.get("column"), kw.get("row_condition"), bounds)


def _suite_checks(table: str):
    return SUITES[table](list(_base(table).columns))


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    from cxw.gate import Gate

    return Gate(tmp_path_factory.mktemp("gate_checks"), "marts")


_counter = itertools.count()


def _failed(gate, table: str, df: pd.DataFrame) -> list[dict]:
    checks = SUITES[table](list(df.columns))
    results = gate.run(f"{table}#{next(_counter)}", table, df, checks, "test")
    return [r for r in results if not r["success"]]


def test_marts_suites_hold_exactly_the_checks_of_the_table():
    assert set(SUITES) == {t for t, *_ in MARTS_CHECKS}
    for table in SUITES:
        want = {_ident(e, c, cond, b) for t, e, c, cond, b, _ in MARTS_CHECKS if t == table}
        got = [_check_ident(c) for c in _suite_checks(table)]
        assert len(got) == len(set(got)), f"{table}: a check is listed twice"
        assert set(got) == want, (f"{table}: checks missing from the suite {sorted(want - set(got), key=str)}; "
                                  f"checks not in the test's table (new or changed bound) {sorted(set(got) - want, key=str)}")
        assert all(c.severity == "error" for c in _suite_checks(table)), f"{table}: a check was downgraded to warn"


@pytest.mark.parametrize("table", sorted(SUITES))
def test_marts_suite_passes_its_valid_frame(gate, table):
    assert _failed(gate, table, _base(table)) == []


def _case_id(row) -> str:
    t, e, c, cond, b, case = row
    return f"{t}:{e.removeprefix('Expect')}:{c}:{cond or ''}:{case}"


MARTS_CASES = [r for r in MARTS_CHECKS if r[5] is not None]  # the checks broken by a row (KPI ranges: BROKEN_KPIS)


@pytest.mark.parametrize("row", MARTS_CASES, ids=[_case_id(r) for r in MARTS_CASES])
def test_marts_check_fails_just_outside_its_bound(gate, row):
    table, expectation, column, cond, bounds, case = row
    failed = _failed(gate, table, _break(_base(table), case))
    named = {(f["expectation"], f["column"], f["row_condition"]) for f in failed}
    want = (_snake(expectation), column, cond)
    assert named == {want}, f"{case} should fail exactly {want}, failed: {named}"
    assert all(f["severity"] == "error" for f in failed)


def test_kpi_vs_target_passes_empty_when_no_target_or_benchmark_is_set(gate):
    assert _failed(gate, VT, _base(VT).iloc[0:0]) == []


@pytest.mark.parametrize("table", [CP, CC, KD, LT, FT, LP])
def test_clv_tables_pass_empty_when_too_few_customers_to_fit(gate, table):
    assert _failed(gate, table, _base(table).iloc[0:0]) == []


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# ---------------------------------------------------------------------------------------------------- PII

PII_CASES = [("email", "jane.doe@example.com"), ("email", "Contact: a.b+c@mail.example.org today"),
             ("phone", "+84 90 123 4567"), ("phone", "call +33-6-11-22-33-44")]


def test_pii_patterns_are_the_documented_ones():
    assert EMAIL_REGEX == r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    assert PHONE_REGEX == r"\+\d[\d \-]{7,}\d"
    assert PII_REGEX == f"(?:{EMAIL_REGEX})|(?:{PHONE_REGEX})"
    checks = pii_checks(["city", "comment"])
    assert [(_check_ident(c), c.severity) for c in checks] == [
        (_ident("ExpectColumnValuesToNotMatchRegex", col, None, {"regex": PII_REGEX}), "error")
        for col in ("city", "comment")]


@pytest.mark.parametrize("kind,value", PII_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PII_CASES)])
def test_planted_pii_fails_the_check_of_its_column(gate, kind, value):
    df = pd.DataFrame({"person_sk": ["p1", "p2", "p3"], "city": ["Hanoi", "Paris", "Hue"],
                       "segment": ["a", "b", "+84 12"]})  # '+84 12' is too short to be a phone number
    checks = pii_checks(list(df.columns))
    clean = gate.run(f"pii#{next(_counter)}", "core.dim_customers", df, checks, "test")
    assert all(r["success"] for r in clean)
    df.loc[1, "city"] = value
    results = gate.run(f"pii#{next(_counter)}", "core.dim_customers", df, checks, "test")
    failed = [(r["expectation"], r["column"], r["unexpected_count"]) for r in results if not r["success"]]
    assert failed == [("expect_column_values_to_not_match_regex", "city", 1)], (kind, failed)


# ------------------------------------------------------- checks cxw.gate.marts adds around the suites (real validate)

def _build(tmp_path, name: str, sql: list[str], published: dict[str, int] | None = None) -> dict:
    import duckdb

    d = tmp_path / name
    d.mkdir()
    con = duckdb.connect(str(d / "build.duckdb"))
    for stmt in sql:
        con.execute(stmt)
    con.close()
    pub = d / "published.duckdb"
    if published:
        con = duckdb.connect(str(pub))
        con.execute("create table publication_tables (table_name varchar, row_count bigint, fingerprint varchar)")
        con.executemany("insert into publication_tables values (?, ?, 'x')", [[t, n] for t, n in published.items()])
        con.close()
    return dict(build_db=d / "build.duckdb", published_db=pub, out_dir=d / "run")


def _verdict(run: str, **kw) -> tuple[str, list[str], list[str]]:
    from cxw.gate import ValidationFailed, validate_marts as validate

    try:
        rep = validate(run, **kw)
    except ValidationFailed as exc:
        import json

        rep = json.loads((kw["out_dir"] / "validation.json").read_text())
        assert rep["status"] == "failed", exc
    return rep["status"], rep["failed_checks"], rep["warned_checks"]


def test_bounds_of_the_checks_validate_adds_are_the_documented_ones():
    from cxw.gate.marts_suites import FREE_TEXT_COLUMNS, FRESHNESS_DAYS, MAX_ROW_DROP_VS_PUBLISHED, ROW_COUNT_UNCHECKED

    assert (FRESHNESS_DAYS, MAX_ROW_DROP_VS_PUBLISHED, ROW_COUNT_UNCHECKED) == (3, 0.5, ("core.dim_dates",))
    assert FREE_TEXT_COLUMNS == {"comment", "review_text", "review_title", "reply_text", "subject", "content", "title",
                                 "text"}


@pytest.mark.parametrize("rows,status", [(50, "passed"), (49, "failed")])
def test_row_count_drop_vs_the_published_generation_blocks_just_past_half(tmp_path, rows, status):
    kw = _build(tmp_path, f"drop{rows}", ["create schema core",
                                          f"create table core.fct_orders as select range::varchar as order_id "
                                          f"from range({rows})"], published={"core.fct_orders": 100})
    got, failed, _ = _verdict(f"drop-{rows}", **kw)
    assert got == status, failed
    if status == "failed":
        assert len(failed) == 1 and "expect_table_row_count_to_be_between on table core.fct_orders" in failed[0] \
            and "row count dropped more than 50%" in failed[0], failed


@pytest.mark.parametrize("newest,status", [("2025-03-11", "passed"), ("2025-03-09", "passed"),
                                           ("2025-03-08", "failed"), ("2025-03-12", "failed")])
def test_kpi_freshness_is_derived_from_the_data_interval_end(tmp_path, newest, status):
    # interval end 2025-03-12: the newest KPI day must lie 1-3 days before it (03-09 .. 03-11); 03-08 is stale, a
    # day at the interval end itself is in the future of the interval
    kw = _build(tmp_path, f"fresh{newest}", [
        "create schema kpi",
        f"create table kpi.kpi_daily as select * from (values ('nps', 10.0, 40, date '2025-03-01'), "
        f"('nps', 20.0, 40, date '{newest}')) as t(kpi, value, n, kpi_date)"])
    from cxw.gate import ValidationFailed, validate_marts as validate

    try:
        validate(f"fresh-{newest}", None, "2025-03-12", **kw)
        got, failed = "passed", ""
    except ValidationFailed as exc:
        got, failed = "failed", str(exc)
    assert got == status, failed
    if status == "failed":
        assert "expect_column_min_to_be_between on table kpi.kpi_daily column _days_before_interval_end" in failed, failed


def test_pii_in_free_text_warns_and_elsewhere_blocks_through_validate(tmp_path):
    kw = _build(tmp_path, "pii", [
        "create schema cx",
        "create table cx.cx_detractor_alerts as select * from (values ('a1', 'nps_detractor', 3, "
        "timestamp '2025-03-01 10:00:00', 'mail me at jane.doe@example.com', 'Hanoi')) "
        "as t(alert_id, alert_type, score, created_at, comment, city)"])
    got, failed, warned = _verdict("pii-free-text", **kw)
    assert got == "passed" and failed == []
    assert len(warned) == 1 and "column comment" in warned[0] and "(free text)" in warned[0], warned
    kw = _build(tmp_path, "pii2", [
        "create schema cx",
        "create table cx.cx_detractor_alerts as select * from (values ('a1', 'nps_detractor', 3, "
        "timestamp '2025-03-01 10:00:00', 'fine', '+84 90 123 4567')) "
        "as t(alert_id, alert_type, score, created_at, comment, city)"])
    got, failed, _ = _verdict("pii-column", **kw)
    assert got == "failed" and len(failed) == 1 and "column city" in failed[0], failed
