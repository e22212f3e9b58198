"""How fresh the published data is, per source (issue 20): the latest event time staged and the latest extraction.

With `CXW_SCHEDULE=hourly` a generation holds the current day so far (GA4 from its intraday table, CRM and ERP deltas
of the hours loaded): its KPIs of that day are partial. `cxw.publish` writes `publication_freshness` into every
generation (and `cxw.access` into every audience's file; `cxw.publish_postgres` into `bi_meta` on PostgreSQL,
whose serving schemas every audience reads): one row per source with

- `max_event_at`: the latest event / change time of the source's staged records (GA4 event_at, CRM and ERP
  updated_at, reviews created/updated) - the data's "as of" for that source;
- `loaded_at`: the latest `_extracted_at` of its staged records (when it was last read);
- `as_of`: the generation's data interval end (the same for every row), and `is_partial_day`: the interval ends
  inside a day, so the KPIs of that day cover the hours loaded so far.

The dashboard shows the generation's "as of" and each source's freshness (cxw_dashboard). Only the staged tables the
build database has are read: a source not configured has no row.
"""

from __future__ import annotations

from datetime import datetime

# source -> [(staging table, event / change time column)]: the latest value over them is the source's freshness
EVENT_TIME = {
    "ga4": [("stg_ga4__events", "event_at")],
    "hubspot": [("stg_hubspot__tickets", "updated_at"), ("stg_hubspot__contacts", "updated_at"),
                ("stg_hubspot__deals", "updated_at"), ("stg_hubspot__feedback_submissions", "updated_at"),
                ("stg_hubspot__email_events", "occurred_at")],
    "odoo": [("stg_odoo__sale_orders", "updated_at"), ("stg_odoo__sale_order_lines", "updated_at"),
             ("stg_odoo__res_partners", "updated_at"), ("stg_odoo__stock_pickings", "updated_at")],
    # reviews: the latest new or edited review (updated_at is set on edited reviews only)
    "google_reviews": [("stg_google_reviews__reviews", "created_at"), ("stg_google_reviews__reviews", "updated_at")],
    "trustpilot": [("stg_trustpilot__reviews", "created_at"), ("stg_trustpilot__reviews", "updated_at")],
    "review_files": [("stg_review_files__reviews", "created_at")],
}
STAGING_SCHEMA = "staging"

COLUMNS = "source varchar, max_event_at timestamp, loaded_at timestamp, as_of varchar, is_partial_day boolean"

DOCS = ("How fresh each source's data in this generation is (cxw/freshness.py): with CXW_SCHEDULE=hourly the KPIs "
        "of the as-of day cover the hours loaded so far.", {
            "source": "Source system (ga4, hubspot, odoo, google_reviews, trustpilot, review_files).",
            "max_event_at": "Latest event or change time (UTC) of the source's staged records: the source's data "
                            "is complete up to about this time.",
            "loaded_at": "Latest extraction time (UTC) of the source's staged records when this generation was "
                         "built (a later run that re-reads the same records without a change keeps this "
                         "generation, and this time).",
            "as_of": "End of the data interval this generation covers (ISO 8601, UTC; exclusive).",
            "is_partial_day": "True when as_of falls inside a day (an hourly run): that day's KPIs are partial.",
        })


def is_partial_day(as_of: datetime | None) -> bool:
    return as_of is not None and (as_of.hour, as_of.minute, as_of.second, as_of.microsecond) != (0, 0, 0, 0)


def source_freshness(con, catalog: str, as_of: str | None) -> list[tuple]:
    """[(source, max_event_at, loaded_at, as_of, is_partial_day)] from the staged tables of ``catalog`` (a DuckDB
    connection to the build database)."""
    from .publish import parse_interval_end

    types = {(t, c): typ for t, c, typ in con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ?", [catalog, STAGING_SCHEMA]).fetchall()}

    def utc(table: str, col: str) -> str:   # naive UTC, as the marts hold timestamps
        typ = types[(table, col)].upper()
        return f'("{col}" at time zone \'UTC\')' if "TIME ZONE" in typ else f'cast("{col}" as timestamp)'

    partial = is_partial_day(parse_interval_end(as_of))
    rows = []
    for source, parts in EVENT_TIME.items():
        selects = [f"select max({utc(table, col)}) as e, max({utc(table, '_extracted_at')}) as l "
                   f'from "{catalog}"."{STAGING_SCHEMA}"."{table}"' for table, col in parts
                   if (table, col) in types and (table, "_extracted_at") in types]
        if not selects:
            continue
        event_at, loaded_at = con.execute(f"select max(e), max(l) from ({' union all '.join(selects)}) as f").fetchone()
        if event_at is None and loaded_at is None:
            continue
        rows.append((source, event_at, loaded_at, as_of, partial))
    return rows
