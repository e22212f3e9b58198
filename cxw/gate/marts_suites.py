"""The audit suites of the marts gate (`cxw.gate.marts.validate_marts`), one per table, named `<schema>.<table>`.

Each suite is a function of the table's columns returning `Check`s. A check has a severity: `error` blocks publish,
`warn` publishes and reports. They check what BI must never see: missing, null or duplicate keys, impossible KPI
values and survey scores, stale data, a collapse of a table against the published generation (added by
`cxw.gate.marts` from `publication_tables`), and plaintext personal data. Relationships and reconciliation across
tables stay in dbt tests (SQL over whole tables). Raw-batch suites are in `raw_suites.py`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

# Plaintext PII patterns: an e-mail address, or a phone number written with a + and 8+ digits.
EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_REGEX = r"\+\d[\d \-]{7,}\d"
PII_REGEX = f"(?:{EMAIL_REGEX})|(?:{PHONE_REGEX})"
# Characters of which every match of PII_REGEX holds one (its literal '@' and '+'): the marts gate reads a text
# value for the PII checks only where it holds one (cxw/gate/marts_delta.py); change both together.
PII_REQUIRED_CHARACTERS = ("@", "+")

# Freshness: the newest KPI day must be at most this many days before the run's data interval end.
FRESHNESS_DAYS = 3
# Row-count change vs the currently published generation: a drop of more than this share blocks publish.
MAX_ROW_DROP_VS_PUBLISHED = 0.5
# Tables whose size follows the years the data spans, not its volume: no row-count check against the published
# generation (the calendar shrinks from a fixed 2024-2026 to the data's years, or when the oldest data is removed;
# its coverage is a dbt relationships test).
ROW_COUNT_UNCHECKED = ("core.dim_dates",)


@dataclass(frozen=True)
class Check:
    expectation: str  # a great_expectations.expectations class name
    kwargs: dict = field(default_factory=dict)
    severity: str = "error"  # error blocks publish; warn reports only
    why: str = ""


# Each KPI's valid range is defined once, in the dbt seed kpi_definitions (range_min / range_max; published as
# kpi.kpi_dictionary); the gate reads it from there (issue 16 point 3).
KPI_DEFINITIONS_CSV = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "kpi_definitions.csv"


def kpi_ranges(path: Path = KPI_DEFINITIONS_CSV) -> dict[str, tuple[float | None, float | None]]:
    """{kpi: (range_min, range_max)} of the KPI definitions seed, for every KPI with at least one bound (an empty
    bound is open: retention_rate is above 100 when more customers come back than bought the month before)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    def bound(text: str) -> float | int | None:
        if not text.strip():
            return None
        v = float(text)
        return int(v) if v.is_integer() else v
    return {r["kpi"]: (bound(r["range_min"]), bound(r["range_max"])) for r in rows
            if r["range_min"].strip() or r["range_max"].strip()}


# Segment codes (seed customer_segments, docs/segments.md) and channel codes (seed channels): the values the KPI
# marts' segment / channel columns and the segment marts may hold, read from the seeds like the KPI ranges.
SEEDS_DIR = KPI_DEFINITIONS_CSV.parent


def seed_codes(name: str, column: str) -> list[str]:
    with (SEEDS_DIR / f"{name}.csv").open(newline="", encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f)]


def _in_set(column: str, values: list[str], why: str) -> Check:
    return Check("ExpectColumnValuesToBeInSet", {"column": column, "value_set": values}, why=why)


def kpi_dimension_checks(columns: list[str]) -> list[Check]:
    """segment / channel of a KPI row: 'all' or a known code (a per-segment row is never also per-channel: the
    re-aggregation to the 'all' row is a dbt test, assert_segment_and_channel_rows_reaggregate_to_all)."""
    checks = []
    if "segment" in columns:
        checks.append(_in_set("segment", ["all", *seed_codes("customer_segments", "segment")],
                              "KPI row of an unknown segment"))
    if "channel" in columns:
        checks.append(_in_set("channel", ["all", "unknown", *seed_codes("channels", "channel_code")],
                              "KPI row of an unknown channel"))
    return checks


def customer_segments_suite(columns: list[str]) -> list[Check]:
    """core.dim_customer_segments (issue 19.1): one row per person and run (key unique), a known persona (never
    'unresolved': that is the KPI rows' label for facts without a person), a run of at least one month end."""
    persons = [c for c in seed_codes("customer_segments", "segment") if c != "unresolved"]
    return [*fact_suite("segment_version_sk")(columns),
            Check("ExpectColumnValuesToNotBeNull", {"column": "person_sk"}, why="segment row without a person"),
            _in_set("segment", persons, "unknown segment"),
            _between("months_in_segment", 1, None, why="segment run without a month end"),
            Check("ExpectColumnValuesToNotBeNull", {"column": "valid_from"}, why="segment row without valid_from")]


def _ranges_for_kpis() -> list[Check]:
    checks = []
    for kpi, (lo, hi) in kpi_ranges().items():
        checks.append(Check("ExpectColumnValuesToBeBetween",
                            {"column": "value", "min_value": lo, "max_value": hi,
                             "row_condition": f'kpi=="{kpi}"', "condition_parser": "pandas"},
                            why=f"{kpi} outside [{lo}, {hi}]" if hi is not None and lo is not None
                            else f"{kpi} below {lo}" if hi is None else f"{kpi} above {hi}"))
    return checks


def kpi_suite(columns: list[str]) -> list[Check]:
    checks = [
        Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, why="KPI mart is empty"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "kpi"}),
        Check("ExpectColumnValuesToNotBeNull", {"column": "n"}),
        Check("ExpectColumnValuesToBeBetween", {"column": "n", "min_value": 0}, why="negative sample size"),
        *_ranges_for_kpis(),
        *kpi_dimension_checks(columns),
    ]
    if "_days_before_interval_end" in columns:  # derived by cxw.gate.marts from the run's data interval
        checks.append(Check("ExpectColumnMinToBeBetween",
                            {"column": "_days_before_interval_end", "min_value": 1, "max_value": FRESHNESS_DAYS},
                            why=f"stale or future data: the newest KPI day must lie 1–{FRESHNESS_DAYS} days before "
                                "the data interval end"))
    return checks


def fact_suite(key: str, *extra: Check) -> callable:
    """Non-empty, key present, not null and unique (cheap on the pandas batch), plus table-specific ranges."""
    def suite(columns: list[str]) -> list[Check]:
        checks = [Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, why="table is empty"),
                  Check("ExpectColumnToExist", {"column": key}, why=f"key column {key} missing")]
        if key in columns:
            checks.append(Check("ExpectColumnValuesToNotBeNull", {"column": key}, why=f"null key {key}"))
            checks.append(Check("ExpectColumnValuesToBeUnique", {"column": key}, why=f"duplicate key {key}"))
        checks.extend(c for c in extra if c.kwargs.get("column") in (None, *columns))
        return checks
    return suite


def kpi_vs_target_suite(columns: list[str]) -> list[Check]:
    """kpi.kpi_vs_target (issue 19 point 3): may be empty (no targets or benchmarks set), but a row has its key,
    once, a known direction of good, and a breach is a closed period."""
    return [
        Check("ExpectColumnValuesToNotBeNull", {"column": "target_key"}, why="null key target_key"),
        Check("ExpectColumnValuesToBeUnique", {"column": "target_key"},
              why="duplicate key target_key (two targets valid for one period?)"),
        Check("ExpectColumnValuesToBeInSet", {"column": "direction_of_good", "value_set": ["higher", "lower"]},
              why="unknown direction of good"),
        Check("ExpectColumnValuesToBeInSet",
              {"column": "is_period_closed", "value_set": [True], "row_condition": "is_breach==True",
               "condition_parser": "pandas"}, why="a breach of a period still in progress"),
    ]


def _between(column: str, lo, hi, condition: str | None = None, why: str = "") -> Check:
    kw = {"column": column, "min_value": lo, "max_value": hi}
    if condition:
        kw.update(row_condition=condition, condition_parser="pandas")
    return Check("ExpectColumnValuesToBeBetween", kw, why=why or f"{column} outside [{lo}, {hi}]")


def pii_checks(string_columns: list[str]) -> list[Check]:
    """No plaintext e-mail or phone in any text column of a published table (one regex per column: e-mail or
    phone; the message names the column and the count, never a value)."""
    return [Check("ExpectColumnValuesToNotMatchRegex", {"column": col, "regex": PII_REGEX},
                  why=f"plaintext e-mail or phone number in {col}") for col in string_columns]


CLV_NON_NEGATIVE = ("frequency", "recency_weeks", "t_weeks", "monetary", "expected_purchases_12m",
                    "expected_value_12m")
CLV_FREQUENCY_BUCKETS = ["0", "1", "2", "3", "4", "5", "6", "7+", "all"]


def clv_predicted_suite(columns: list[str]) -> list[Check]:
    """cx.cx_customer_clv_predicted (issue 19 point 4, cxw/analytics/clv.py): may be empty (too few customers to
    fit: no row-count check; a collapse against the published generation is the row-drop check); one row per
    person, a probability alive in [0, 1], no negative frequency, recency, age, spend, expected purchases or value."""
    return [Check("ExpectColumnValuesToNotBeNull", {"column": "person_sk"}, why="null key person_sk"),
            Check("ExpectColumnValuesToBeUnique", {"column": "person_sk"}, why="duplicate key person_sk"),
            Check("ExpectColumnValuesToNotBeNull", {"column": "p_alive"}, why="null probability alive"),
            _between("p_alive", 0, 1, why="probability alive outside [0, 1]"),
            *(_between(col, 0, None, why=f"negative {col}") for col in CLV_NON_NEGATIVE),
            Check("ExpectColumnValuesToNotBeNull", {"column": "expected_value_12m"}, why="null expected value")]


def clv_calibration_suite(columns: list[str]) -> list[Check]:
    """cx.cx_clv_calibration: one row per frequency bucket of the fit ('all' included); may be empty (history too
    short for a holdout); counts, predictions and errors are not negative."""
    return [Check("ExpectColumnValuesToNotBeNull", {"column": "frequency_bucket"}, why="null key frequency_bucket"),
            Check("ExpectColumnValuesToBeUnique", {"column": "frequency_bucket"}, why="duplicate key frequency_bucket"),
            Check("ExpectColumnValuesToBeInSet", {"column": "frequency_bucket", "value_set": CLV_FREQUENCY_BUCKETS},
                  why="unknown frequency bucket"),
            _between("n_customers", 1, None, why="calibration bucket without customers"),
            _between("predicted_purchases", 0, None, why="negative predicted purchases"),
            _between("actual_purchases", 0, None, why="negative actual purchases"),
            _between("mean_absolute_error", 0, None, why="negative mean absolute error")]


# Sources of the identity graph (int_identity_links.source)
IDENTITY_SOURCES = ["odoo", "hubspot", "ga4", "ga4_pseudo", "trustpilot", "email_recipient"]


def key_drivers_suite(columns: list[str]) -> list[Check]:
    """cx.cx_key_drivers (issue 19.2, docs/analytics.md): one row per score, period and driver; shares and their
    intervals are shares; n at least the analysis' minimum. Empty when no score has enough responses: too little
    data is a valid result, like the CLV tables and kpi_vs_target, so no row-count check (every marts check is an
    error; tests/gate/test_gate_checks.py)."""
    from ..analytics.key_drivers import MIN_RESPONSES, SCORES

    return [
        Check("ExpectColumnValuesToNotBeNull", {"column": "driver_key"}, why="null key driver_key"),
        Check("ExpectColumnValuesToBeUnique", {"column": "driver_key"},
              why="duplicate key driver_key (score x period x driver)"),
        Check("ExpectColumnValuesToBeInSet", {"column": "score", "value_set": list(SCORES)}, why="unknown score"),
        Check("ExpectColumnValuesToBeInSet", {"column": "period_grain", "value_set": ["quarter", "window"]},
              why="unknown period grain"),
        _between("importance_share", -0.05, 1.05, why="importance share outside [0, 1]"),
        _between("ci_low", -0.05, 1.05, why="interval bound outside [0, 1]"),
        _between("ci_high", -0.05, 1.05, why="interval bound outside [0, 1]"),
        _between("r_squared", 0, 1, why="R² outside [0, 1]"),
        _between("n_responses", MIN_RESPONSES, None, why=f"a period with fewer than {MIN_RESPONSES} responses"),
        Check("ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "ci_high", "column_B": "ci_low", "or_equal": True}, why="interval upper bound below lower"),
    ]


def learned_topics_suite(columns: list[str]) -> list[Check]:
    """cx.cx_learned_topics (issue 19.6, cxw/analytics/topics.py): one row per topic; may be empty (too few texts
    to fit), so no row-count check; shares are shares, counts not negative."""
    return [Check("ExpectColumnValuesToNotBeNull", {"column": "topic_key"}, why="null key topic_key"),
            Check("ExpectColumnValuesToBeUnique", {"column": "topic_key"}, why="duplicate key topic_key"),
            Check("ExpectColumnValuesToBeUnique", {"column": "topic_label"}, why="two topics with one name"),
            _between("n_feedback", 0, None, why="negative n_feedback"),
            _between("share_of_feedback", 0, 1, why="topic share outside [0, 1]"),
            _between("seed_match_share", 0, 1, why="seed match share outside [0, 1]")]


def feedback_topics_suite(columns: list[str]) -> list[Check]:
    """cx.cx_feedback_topics: one row per complaint text, a known kind, a topic, a weight that is a share."""
    return [Check("ExpectColumnValuesToNotBeNull", {"column": "feedback_key"}, why="null key feedback_key"),
            Check("ExpectColumnValuesToBeUnique", {"column": "feedback_key"}, why="duplicate key feedback_key"),
            Check("ExpectColumnValuesToBeInSet", {"column": "feedback_kind", "value_set": FEEDBACK_KINDS},
                  why="unknown feedback kind"),
            Check("ExpectColumnValuesToNotBeNull", {"column": "topic_key"}, why="text without a topic"),
            _between("topic_weight", 0, 1, why="topic weight outside [0, 1]")]


def learned_topic_pareto_suite(columns: list[str]) -> list[Check]:
    """cx.cx_learned_topic_pareto: one row per source and topic; shares and cumulative shares are shares."""
    return [Check("ExpectColumnValuesToNotBeNull", {"column": "pareto_key"}, why="null key pareto_key"),
            Check("ExpectColumnValuesToBeUnique", {"column": "pareto_key"}, why="duplicate key pareto_key"),
            Check("ExpectColumnValuesToBeInSet", {"column": "source", "value_set": [*FEEDBACK_KINDS, "all"]},
                  why="unknown source"),
            _between("occurrences", 1, None, why="a Pareto row without texts"),
            _between("share_of_source", 0, 1, why="share of source outside [0, 1]"),
            _between("cumulative_share", 0, 1, why="cumulative share outside [0, 1]")]


# the kinds of complaint text the learned topics read (dbt model int_feedback_texts)
FEEDBACK_KINDS = ["review", "survey_response", "ticket"]


# Suites by `<schema>.<table>`; tables of the published schemas not listed here still get the PII checks.
SUITES: dict[str, callable] = {
    "kpi.kpi_daily": kpi_suite,
    "kpi.kpi_period": kpi_suite,
    "kpi.kpi_vs_target": kpi_vs_target_suite,
    "core.dim_customers": fact_suite(
        "person_sk", Check("ExpectColumnValuesToBeInSet",
                           {"column": "segment", "value_set": seed_codes("customer_segments", "segment")},
                           why="customer of an unknown segment")),
    "core.dim_customer_segments": customer_segments_suite,
    "core.dim_products": fact_suite("product_sk"),
    "core.fct_orders": fact_suite("order_id", Check("ExpectColumnValuesToBeBetween",
                                                    {"column": "amount_total", "min_value": 0, "mostly": 0.99},
                                                    why="negative order totals")),
    "core.fct_order_lines": fact_suite("order_line_id"),
    "core.fct_deliveries": fact_suite("picking_id"),
    "core.fct_support_tickets": fact_suite("ticket_id"),
    "core.fct_email_events": fact_suite("campaign_recipient_key"),
    "core.fct_survey_responses": fact_suite(
        "feedback_id",
        _between("score", 0, 10, 'survey_type=="NPS"', "NPS score outside 0–10"),
        _between("score", 1, 5, 'survey_type=="CSAT"', "CSAT score outside 1–5"),
        _between("score_normalised", 1, 7, 'survey_type=="CES"', "CES score outside 1–7")),
    "core.fct_reviews": fact_suite("review_key", _between("rating", 1, 5, why="review rating outside 1–5")),
    "core.fct_web_sessions": fact_suite("session_key"),
    "cx.cx_customer_360": fact_suite("person_sk"),
    "cx.cx_detractor_alerts": fact_suite(
        "alert_id",
        Check("ExpectColumnValuesToBeInSet", {"column": "alert_type",
                                              "value_set": ["nps_detractor", "csat_low", "review_low"]},
              why="unknown alert type"),
        _between("score", 0, 6, 'alert_type=="nps_detractor"', "NPS detractor alert with a score above 6"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "created_at"}, why="alert without created_at")),
    # identity audit (issue 19 point 7): every link names its person; coverage shares are shares
    "cx.cx_identity_link_audit": fact_suite(
        "link_key",
        Check("ExpectColumnValuesToNotBeNull", {"column": "person_sk"}, why="identity link without a person"),
        Check("ExpectColumnValuesToBeInSet", {"column": "source", "value_set": IDENTITY_SOURCES},
              why="identity link of an unknown source")),
    "cx.cx_identity_coverage": fact_suite(
        "coverage_key",
        _between("share_of_source", 0, 1, why="coverage share outside [0, 1]"),
        _between("source_linked_share", 0, 1, why="linked share outside [0, 1]")),
    "cx.cx_key_drivers": key_drivers_suite,
    # predictive CLV (issue 19 point 4): written by the analyze task (cxw/analytics/clv.py)
    "cx.cx_customer_clv_predicted": clv_predicted_suite,
    "cx.cx_clv_calibration": clv_calibration_suite,
    # learned topics (issue 19 point 6): written by the analyze task (cxw/analytics/topics.py)
    "cx.cx_learned_topics": learned_topics_suite,
    "cx.cx_feedback_topics": feedback_topics_suite,
    "cx.cx_learned_topic_pareto": learned_topic_pareto_suite,
    "cx.cx_identity_conflict_audit": fact_suite(
        "conflict_key",
        Check("ExpectColumnValuesToNotBeNull", {"column": "losing_rule"}, why="identity conflict without a losing rule")),
}

# Columns whose free text is customer-written (comments, review text): an address typed into a comment is the
# customer's own words, reported as a warning rather than blocking the whole publication.
FREE_TEXT_COLUMNS = {"comment", "review_text", "review_title", "reply_text", "subject", "content", "title", "text"}
