"""Suites for newly landed RAW batches, checked before dbt runs (`cxw.gate.raw.validate_raw`).

One suite per source/entity, named `raw.<source>__<entity>` (contracts.md §1), run on the rows of the new loads of
that entity (read from their Parquet files with pyarrow → pandas, never through the warehouse):

* schema — the columns staging relies on exist and carry the vendor's type (`Check`s built from `REQUIRED`);
* ranges — where a raw value has a meaningful domain (star ratings, survey types, GA4 export day). Raw data is
  dirty by design (staging quarantines single bad rows), so these use `mostly`: a few bad rows pass to quarantine,
  a feed where many rows are out of range is broken and blocks.

The suite `raw.load_log` (`volume.py`, beside its rule) runs on the log of the new loads (one row per load, every
entity): the rows of each new load against the median of comparable previous loads of the same entity (same kind;
same weekday for daily loads with enough history: `volume.volume_baseline`). It blocks only on a full baseline, else
it warns.
"""

from __future__ import annotations

from .marts_suites import Check

# Arrow type family → the type name GE's pandas engine reports for such a column (int64 is read as pandas Int64
# so that nulls keep it integer; Odoo timestamps are naive UTC).
GE_TYPE = {"string": "str", "int64": "int64", "double": "float64", "bool": "bool", "timestamp": "datetime64",
           "date": "date"}

_HUBSPOT_OBJECT = {"id": "string", "createdAt": "string", "updatedAt": "string", "archived": "bool"}

# Required columns (name → Arrow type family) per `<source>__<entity>`.
REQUIRED: dict[str, dict[str, str]] = {
    "odoo__res_country": {"id": "int64", "code": "string"},
    "odoo__res_currency": {"id": "int64", "name": "string"},
    "odoo__crm_team": {"id": "int64", "name": "string"},
    "odoo__res_partner": {"id": "int64", "email": "string", "write_date": "timestamp"},
    "odoo__product_category": {"id": "int64", "name": "string", "write_date": "timestamp"},
    "odoo__product_template": {"id": "int64", "name": "string", "list_price": "double", "write_date": "timestamp"},
    "odoo__product_product": {"id": "int64", "product_tmpl_id": "int64", "write_date": "timestamp"},
    "odoo__sale_order": {"id": "int64", "partner_id": "int64", "date_order": "timestamp", "state": "string",
                         "amount_untaxed": "double", "amount_total": "double", "write_date": "timestamp"},
    "odoo__sale_order_line": {"id": "int64", "order_id": "int64", "product_id": "int64",
                              "price_subtotal": "double", "write_date": "timestamp"},
    "odoo__stock_picking_type": {"id": "int64", "code": "string"},
    "odoo__stock_picking": {"id": "int64", "sale_id": "int64", "state": "string", "scheduled_date": "timestamp",
                            "write_date": "timestamp"},
    "hubspot__contacts": {**_HUBSPOT_OBJECT, "properties__email": "string"},
    "hubspot__companies": dict(_HUBSPOT_OBJECT),
    "hubspot__deals": dict(_HUBSPOT_OBJECT),
    "hubspot__tickets": {**_HUBSPOT_OBJECT, "properties__createdate": "string"},
    "hubspot__feedback_submissions": {**_HUBSPOT_OBJECT, "properties__hs_survey_type": "string",
                                      "properties__hs_value": "string",
                                      "properties__hs_submission_timestamp": "string"},
    "hubspot__associations": {"from_type": "string", "from_id": "string", "to_type": "string", "to_id": "string"},
    "hubspot__email_events": {"id": "string", "created": "int64", "type": "string", "recipient": "string"},
    "ga4__events": {"event_date": "string", "event_timestamp": "string", "event_name": "string",
                    "user_pseudo_id": "string", "_export_date": "date"},
    "google_reviews__reviews": {"reviewId": "string", "starRating": "string", "createTime": "string",
                                "updateTime": "string"},
    "trustpilot__reviews": {"id": "string", "stars": "int64", "createdAt": "string"},
    "review_files__reviews": {"site": "string", "review_id": "string", "rating": "string", "created_at": "string",
                              "rating_min": "double", "rating_max": "double"},
}
# Archived HubSpot objects come from the same endpoint with archived=true: same required fields.
for _obj in ("contacts", "companies", "deals", "tickets", "feedback_submissions"):
    REQUIRED[f"hubspot__{_obj}_archived"] = {k: v for k, v in _HUBSPOT_OBJECT.items()}

# Keys of the landed rows: staging quarantines single rows without one, a feed mostly without keys is broken.
KEYS = {"odoo": "id", "hubspot__associations": "from_id", "ga4__events": "event_name",
        "google_reviews__reviews": "reviewId", "trustpilot__reviews": "id",
        "review_files__reviews": "review_id"}


def _key_for(name: str) -> str | None:
    return KEYS.get(name) or KEYS.get(name.split("__")[0]) or ("id" if "id" in REQUIRED.get(name, {}) else None)


def raw_suite(name: str, columns: list[str], export_dates: list[str] | None = None) -> list[Check]:
    """Checks for the new rows of `<source>__<entity>` whose DataFrame has `columns`."""
    req = REQUIRED.get(name, {})
    checks: list[Check] = []
    for col, family in req.items():
        checks.append(Check("ExpectColumnToExist", {"column": col},
                            why=f"required column {col} missing (source schema changed)"))
        if col in columns:
            checks.append(Check("ExpectColumnValuesToBeOfType", {"column": col, "type_": GE_TYPE[family]},
                                why=f"{col} is no longer {family}"))
    key = _key_for(name)
    if key and key in columns:
        checks.append(Check("ExpectColumnValuesToNotBeNull", {"column": key, "mostly": 0.95},
                            why=f"more than 5% of rows without {key}"))
    if name == "trustpilot__reviews" and "stars" in columns:
        checks.append(Check("ExpectColumnValuesToBeBetween", {"column": "stars", "min_value": 1, "max_value": 5,
                                                              "mostly": 0.95}, why="stars outside 1–5"))
    if name == "review_files__reviews" and "created_at" in columns:
        # the extractor writes created_at as ISO-8601 UTC after parsing it with the site mapping's format
        checks.append(Check("ExpectColumnValuesToMatchRegex", {"column": "created_at",
                                                               "regex": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",
                                                               "mostly": 1.0},
                            why="created_at not in the extractor's ISO-8601 form"))
    if name == "google_reviews__reviews" and "starRating" in columns:
        checks.append(Check("ExpectColumnValuesToBeInSet", {
            "column": "starRating", "value_set": ["ONE", "TWO", "THREE", "FOUR", "FIVE", "STAR_RATING_UNSPECIFIED"],
            "mostly": 0.95}, why="starRating outside the API's enum"))
    if name.startswith("hubspot__feedback_submissions") and "properties__hs_survey_type" in columns:
        checks.append(Check("ExpectColumnValuesToBeInSet", {"column": "properties__hs_survey_type",
                                                            "value_set": ["NPS", "CSAT", "CES"], "mostly": 0.99},
                            why="unknown survey type"))
        if "properties__hs_value" in columns:
            checks.append(Check("ExpectColumnValuesToMatchRegex", {"column": "properties__hs_value",
                                                                   "regex": r"^\s*\d{1,2}(?:\.0+)?\s*$",
                                                                   "mostly": 0.95},
                                why="more than 5% of survey scores are not numbers"))
    if name == "ga4__events" and export_dates and "event_date" in columns:
        checks.append(Check("ExpectColumnValuesToBeInSet", {"column": "event_date", "value_set": export_dates,
                                                            "mostly": 0.99},
                            why="events dated outside their export day"))
    return checks
