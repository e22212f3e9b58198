"""The audit suites that gate publication.

Each suite is a function of the table's columns returning `Check`s. A check has a severity: `error` blocks publish,
`warn` publishes and reports. Full-table integrity (unique keys, relationships) lives in dbt tests, which run in SQL
on the whole table; these suites check what BI must never see: impossible KPI values, empty or missing marts, and
plaintext personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Plaintext PII patterns: an e-mail address, or a phone number written with a + and 8+ digits.
EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_REGEX = r"\+\d[\d \-]{7,}\d"


@dataclass(frozen=True)
class Check:
    expectation: str  # a great_expectations.expectations class name
    kwargs: dict = field(default_factory=dict)
    severity: str = "error"  # error blocks publish; warn reports only
    why: str = ""


def _ranges_for_kpis() -> list[Check]:
    checks = []
    groups = {
        "nps": (-100, 100),
        "csat_pct": (0, 100), "ces_easy_pct": (0, 100), "retention_rate": (0, 100),
        "csat_mean": (1, 5), "ces_mean": (1, 7), "review_rating_avg": (1, 5),
    }
    for kpi, (lo, hi) in groups.items():
        checks.append(Check("ExpectColumnValuesToBeBetween",
                            {"column": "value", "min_value": lo, "max_value": hi,
                             "row_condition": f'kpi=="{kpi}"', "condition_parser": "pandas"},
                            why=f"{kpi} outside [{lo}, {hi}]"))
    checks.append(Check("ExpectColumnValuesToBeBetween",
                        {"column": "value", "min_value": 0, "max_value": 1,
                         "row_condition": '(kpi.str.endswith("_rate") | kpi.str.endswith("_share")) & (kpi != "retention_rate")',
                         "condition_parser": "pandas"},
                        why="a rate or share outside [0, 1]"))
    return checks


def kpi_suite(columns: list[str]) -> list[Check]:
    return [
        Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, why="KPI mart is empty"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "kpi"}),
        Check("ExpectColumnValuesToNotBeNull", {"column": "n"}),
        Check("ExpectColumnValuesToBeBetween", {"column": "n", "min_value": 0}, why="negative sample size"),
        *_ranges_for_kpis(),
    ]


def fact_suite(key: str) -> callable:
    def suite(columns: list[str]) -> list[Check]:
        checks = [Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, why="fact is empty")]
        if key in columns:
            checks.append(Check("ExpectColumnValuesToNotBeNull", {"column": key}, why=f"null {key}"))
        return checks
    return suite


def pii_checks(string_columns: list[str]) -> list[Check]:
    """No plaintext e-mail or phone in any text column of a published table."""
    out = []
    for col in string_columns:
        out.append(Check("ExpectColumnValuesToNotMatchRegex", {"column": col, "regex": EMAIL_REGEX},
                         why=f"plaintext e-mail in {col}"))
        out.append(Check("ExpectColumnValuesToNotMatchRegex", {"column": col, "regex": PHONE_REGEX},
                         severity="error", why=f"plaintext phone number in {col}"))
    return out


# Suites by `<schema>.<table>`; tables of the published schemas not listed here still get the PII checks.
SUITES: dict[str, callable] = {
    "kpi.kpi_daily": kpi_suite,
    "kpi.kpi_period": kpi_suite,
    "core.fct_orders": fact_suite("order_id"),
    "core.fct_survey_responses": fact_suite("survey_response_id"),
    "core.fct_reviews": fact_suite("review_id"),
    "core.fct_web_sessions": fact_suite("session_key"),
}

# Columns whose free text is customer-written (comments, review text): an address typed into a comment is the
# customer's own words, reported as a warning rather than blocking the whole publication.
FREE_TEXT_COLUMNS = {"comment", "review_text", "review_title", "reply_text", "subject", "content", "title", "text"}
