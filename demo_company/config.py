"""Scales, dirt rates and the default window of the demo company."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .texts import COMPANY_NAME, DOMAIN  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Scale:
    name: str
    persons: int          # resolved people (customers and prospects)
    ga4_events: int       # target number of GA4 rows over the default window
    anon_visitors: int    # cookie ids that never log in


SCALES = {
    "XS": Scale("XS", 300, 20_000, 1_500),
    "S": Scale("S", 10_000, 1_000_000, 60_000),
    "M": Scale("M", 100_000, 10_000_000, 600_000),
    "L": Scale("L", 500_000, 50_000_000, 3_000_000),
}

DEFAULT_START = dt.date(2025, 1, 1)
DEFAULT_DAYS = 181

# Rates of deliberate dirt. `--dirt-scale` multiplies every rate (0 turns all of it off).
DEFAULT_DIRT = {
    "record_update_rate": 0.10,          # records edited after creation (write_date > create_date)
    "ga4_late_rate": 0.03,               # GA4 rows arriving 3..72 h after the event
    "ga4_duplicate_rate": 0.004,         # exact duplicate GA4 rows
    "ga4_consent_ping_rate": 0.02,       # cookieless pings (no user_pseudo_id) per session
    "ga4_session_engaged_int_rate": 0.05,  # session_engaged as int_value instead of string_value
    "ga4_midnight_session_rate": 0.01,   # extra sessions forced to cross midnight
    "ga4_redelivery_day_rate": 0.03,     # export days BigQuery re-exports 8..45 days later (late hits, backfill)
    "ga4_redelivery_session_rate": 0.05,  # ... share of such a day's sessions missing until then (at least one)
    # export days whose first delivery is an empty (0-byte) file, re-exported with all their rows 1-3 days later
    "ga4_empty_first_delivery_rate": 0.0,
    # export days with one line holding a byte that is not UTF-8 (a Latin-1 city name): the extractor
    # dead-letters that line, the answer key leaves that one event out
    "ga4_non_utf8_day_rate": 0.0,
    # export days with one event whose typed value is present but does not parse in full (issue 15.2): an int param
    # with a fraction (engagement_time_msec '5312.5') or event_timestamp as epoch seconds with a fraction, alternately;
    # staging quarantines the event (unparsable_value: <field>), the answer key leaves it out of every session
    "ga4_unparsable_value_day_rate": 0.0,
    # export days with one event whose boolean-like session_engaged is GA4's placeholder '(not set)' instead of '1'/'0'
    # (unparsable_value: session_engaged)
    "ga4_bad_session_engaged_day_rate": 0.0,
    "feedback_out_of_scale_rate": 0.005,
    "feedback_non_numeric_rate": 0.004,
    "feedback_bad_timestamp_rate": 0.004,
    "trustpilot_missing_id_rate": 0.01,
    "trustpilot_offset_timestamp_rate": 0.10,
    "google_unspecified_rating_rate": 0.01,
    "review_late_edit_rate": 0.04,       # reviews whose stars change 3-12 weeks or 100-400 days after creation
    "review_late_reply_rate": 0.05,      # company reply added 3-26 weeks later, or an existing reply rewritten
    "review_deletion_rate": 0.02,        # reviews removed from the site 1-300 days after creation
    "email_case_mismatch_rate": 0.06,    # Odoo vs HubSpot email differs by case / trailing blanks
    "hubspot_duplicate_contact_rate": 0.01,
    # people with >= 2 orders who got a second Odoo partner (e-mail differs in case / spaces), with orders on both
    "erp_duplicate_partner_rate": 0.03,
    # type drift: from ERP_AMOUNT_TEXT_DRIFT_DAYS before the window end sale_order.amount_total is a text column and
    # this share of the orders created since (at least one) carries a locale amount ('327,80 EUR', '1.234,56'):
    # the extractor lands it NULL, staging quarantines the order (unparsable_value: amount_total)
    "erp_amount_text_rate": 0.0,
    # res_partner.customer_rank is a float column in the source and this share of the company partners (at least two)
    # carries a rank that is no 32-bit integer: 2.5, or an overflowing yyyymmddHHMMSS stamp (20241103101500);
    # quarantined (unparsable_value: customer_rank), no KPI changes (a company partner names no customer)
    "erp_bad_integer_rate": 0.0,
    # HubSpot tickets whose createdAt is not a timestamp (properties.createdate stays good): bad_timestamp; the answer
    # key leaves them out of response / resolution times, the backlog and loop closing
    "hubspot_bad_created_at_rate": 0.0,
    # Trustpilot reviews whose experiencedAt is not a timestamp: bad_timestamp, in no review KPI
    "trustpilot_bad_experienced_at_rate": 0.0,
    "hostile_text_rate": 0.01,           # HTML/script or SQL-looking comments (stored verbatim)
    # entities that never deliver a row (> 0 = on): a portal without deals, a business unit without reviews yet
    "hubspot_no_deals": 0.0,
    "trustpilot_no_reviews": 0.0,
    # a quiet day: this share of the tickets opened and feedback submitted / edited on the window's last day never
    # happens (1.0: none at all) — the catch-up day of the multi-extraction test
    "quiet_day_rate": 0.0,
}


def scaled_dirt(dirt: dict | None = None, dirt_scale: float = 1.0) -> dict:
    out = dict(DEFAULT_DIRT)
    if dirt:
        unknown = sorted(set(dirt) - set(DEFAULT_DIRT))
        if unknown:
            raise ValueError(f"unknown dirt keys: {unknown}")
        out.update(dirt)
    return {k: float(v) * float(dirt_scale) for k, v in sorted(out.items())}
