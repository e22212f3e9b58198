"""HubSpot endpoints, page sizes, properties and defaults (config comes from env, see README)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Dict, List, Optional, Tuple

from extractors.common.http import HttpConfig, HttpSourceSettings, RateLimit, vendor_limits
from extractors.common.settings import ConfigError, Env, env_int, env_str, history_start_from_env

SOURCE = "hubspot"
DEFAULT_BASE_URL = "https://api.hubapi.com"

SEARCH_PATH = "/crm/v3/objects/{object}/search"
LIST_PATH = "/crm/v3/objects/{object}"            # GET ...?archived=true lists archived (soft-deleted) records
ASSOCIATIONS_PATH = "/crm/v4/associations/{from_type}/{to_type}/batch/read"
EMAIL_EVENTS_PATH = "/email/public/v1/events"

SEARCH_PAGE_SIZE = 200            # HubSpot maximum per search page
SEARCH_RESULT_CAP = 10_000        # after + limit may never pass this (HTTP 400 beyond)
EMAIL_EVENTS_PAGE_SIZE = 1000
LIST_PAGE_SIZE = 100              # HubSpot maximum per list page (first runs, archived=true)
ASSOCIATION_BATCH_SIZE = 1000     # inputs per v4 batch/read
DEFAULT_LOOKBACK_MINUTES = 10     # search index delay overlap

# last-modified property per object (contacts differ)
CURSOR_PROPERTY: Dict[str, str] = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "tickets": "hs_lastmodifieddate",
    "feedback_submissions": "hs_lastmodifieddate",
}

PROPERTIES: Dict[str, List[str]] = {
    "contacts": ["email", "firstname", "lastname", "phone", "mobilephone", "company", "lifecyclestage",
                 "hs_lead_status", "country", "city", "hubspot_owner_id", "associatedcompanyid",
                 "odoo_partner_id", "createdate", "lastmodifieddate", "hs_object_id"],
    "companies": ["name", "domain", "industry", "country", "city", "numberofemployees", "lifecyclestage",
                  "hubspot_owner_id", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "deals": ["dealname", "amount", "deal_currency_code", "closedate", "pipeline", "dealstage", "dealtype",
              "hubspot_owner_id", "odoo_order_ref", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "tickets": ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                "hs_ticket_category", "source_type", "createdate", "hs_lastmodifieddate", "closed_date",
                "time_to_close", "first_agent_reply_date", "time_to_first_agent_reply", "hubspot_owner_id",
                "hs_object_id"],
    "feedback_submissions": ["hs_survey_type", "hs_survey_id", "hs_survey_name", "hs_survey_channel", "hs_value",
                             "hs_response_group", "hs_sentiment", "hs_content", "hs_submission_name",
                             "hs_submission_timestamp", "hs_contact_id", "hs_contact_email_rollup",
                             "hs_engagement_id", "hs_ticket_id", "hs_createdate", "hs_lastmodifieddate",
                             "hs_object_id"],
}

# (from, to) pairs read through v4 batch associations for the ids just extracted
# (the reverse directions are read too so raw holds both sides, as HubSpot stores them)
ASSOCIATION_PAIRS: List[Tuple[str, str]] = [
    ("tickets", "contacts"), ("deals", "contacts"), ("deals", "companies"), ("contacts", "companies"),
    ("feedback_submissions", "contacts"),
    ("contacts", "tickets"), ("contacts", "deals"), ("companies", "deals"), ("companies", "contacts"),
    ("contacts", "feedback_submissions"),
]

ASSOCIATION_COLUMNS = ["from_type", "from_id", "to_type", "to_id", "type_id", "label", "category"]
RECORD_COLUMNS = ["id", "createdAt", "updatedAt", "archived", "archivedAt"]

RATE_LIMITS = {   # vendor: 100 requests / rolling 10 s per token (private apps, Free/Starter), search 5 / s
    "RATE_LIMIT": ("90/10s", None),
    "SEARCH_RATE_LIMIT": ("4/1s", r"/search$"),
}


# (setting that makes the source configured, setting of its endpoint, the endpoint's default): cxw.pii refuses the
# public demo PII salt when a configured source's endpoint is not on loopback
ENDPOINT = ("CXW_HUBSPOT_TOKEN", "CXW_HUBSPOT_BASE_URL", DEFAULT_BASE_URL)

# Airflow connection cxw_hubspot: field -> the variable it fills (extractors.common.connection applies it)
CONNECTION_FIELDS = {"host": "CXW_HUBSPOT_BASE_URL", "password": "CXW_HUBSPOT_TOKEN"}


@dataclass(kw_only=True)
class HubspotSettings(HttpSourceSettings):
    token: str
    base_url: str = DEFAULT_BASE_URL
    objects: List[str] = field(default_factory=lambda: list(PROPERTIES))
    properties: Dict[str, List[str]] = field(default_factory=lambda: {k: list(v) for k, v in PROPERTIES.items()})
    association_pairs: List[Tuple[str, str]] = field(default_factory=lambda: list(ASSOCIATION_PAIRS))
    page_size: int = SEARCH_PAGE_SIZE
    search_cap: int = SEARCH_RESULT_CAP
    email_events_page_size: int = EMAIL_EVENTS_PAGE_SIZE
    association_batch_size: int = ASSOCIATION_BATCH_SIZE
    lookback: timedelta = timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)
    include_email_events: bool = True
    # archived (soft-deleted) records: GET /crm/v3/objects/{obj}?archived=true, landed as <obj>_archived (a full
    # list each time, incremental runs only). None = every object in ``objects``; [] = off.
    archived_objects: Optional[List[str]] = None
    list_page_size: int = LIST_PAGE_SIZE
    # first run over the whole history (no cursor yet): read each CRM object through the list endpoint
    # (100/request, general limit only) instead of search (200/request but 5 searches/s); deltas always search
    history_via_list: bool = True
    # client-side limits below the vendor's (CXW_HUBSPOT_RATE_LIMIT=90/10s ..., "off" disables); [] = none
    rate_limits: List[RateLimit] = field(default_factory=lambda: vendor_limits(SOURCE, RATE_LIMITS))

    @classmethod
    def from_env(cls, env: Env = None) -> "HubspotSettings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        return cls(
            token=env_str("CXW_HUBSPOT_TOKEN", required=True, env=env),
            base_url=env_str("CXW_HUBSPOT_BASE_URL", DEFAULT_BASE_URL, env=env),
            lookback=timedelta(minutes=env_int("CXW_HUBSPOT_LOOKBACK_MINUTES", DEFAULT_LOOKBACK_MINUTES, env=env)),
            archived_objects=None if env_str("CXW_HUBSPOT_ARCHIVED", "1", env=env) not in ("0", "false", "no")
            else [],
            history_start=history_start_from_env(env),
            history_via_list=_history_via(env_str("CXW_HUBSPOT_HISTORY_VIA", "list", env=env)),
            http=HttpConfig.from_env(env),
            rate_limits=vendor_limits(SOURCE, RATE_LIMITS, env),
        )


def _history_via(value: str) -> bool:
    """``CXW_HUBSPOT_HISTORY_VIA``: ``list`` (default) or ``search`` -> ``HubspotSettings.history_via_list``."""
    text = (value or "list").strip().lower()
    if text not in ("list", "search"):
        raise ConfigError(f"CXW_HUBSPOT_HISTORY_VIA must be 'list' or 'search', got {value!r}")
    return text == "list"


SETTINGS = HubspotSettings   # the class extractors.common.connection builds from the environment / a connection
