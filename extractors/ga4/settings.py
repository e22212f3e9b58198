"""GA4 BigQuery-export (NDJSON per day) extractor settings and the explicit, stable event schema."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional

from extractors.common.settings import Env, env_int, env_str, history_start_from_env

SOURCE = "ga4"
ENTITY = "events"
# No lookback: GA4 rewrites a daily table for up to 3 days (and BigQuery re-exports older days), and every run
# compares each export day's fingerprint from the listing, so a rewritten day is seen whatever its age.
# (CXW_GA4_LOOKBACK_DAYS is no longer read.)
FILE_PREFIX = "events_"            # events_YYYYMMDD.json[.gz] or events_YYYYMMDD/ (sharded bq extract)
INTRADAY_PREFIX = "events_intraday_"   # the streaming table of a day whose daily table has not landed (GA4 deletes
#                                        it when the daily table completes); read only with CXW_GA4_INTRADAY
FILE_SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
MAX_LINE_BYTES = 128 * 1024 * 1024

S = "VARCHAR"
D = "DOUBLE"
I64 = "VARCHAR"  # BigQuery INT64 is exported as a JSON string: keep it a string (cast in dbt staging)

_PARAM_VALUE = {"string_value": S, "int_value": I64, "float_value": D, "double_value": D}
# The explicit GA4 export schema (developers.google.com/analytics/bigquery/event-schema, source-formats.md 3.2).
GA4_SCHEMA: Dict[str, Any] = {
    "event_date": S,
    "event_timestamp": I64,
    "event_name": S,
    "event_params": [{"key": S, "value": _PARAM_VALUE}],
    "event_previous_timestamp": I64,
    "event_value_in_usd": D,
    "event_bundle_sequence_id": I64,
    "event_server_timestamp_offset": I64,
    "batch_event_index": I64,
    "batch_ordering_id": I64,
    "batch_page_id": I64,
    "user_id": S,
    "user_pseudo_id": S,
    "privacy_info": {"analytics_storage": S, "ads_storage": S, "uses_transient_token": S},
    "user_properties": [{"key": S, "value": dict(_PARAM_VALUE, set_timestamp_micros=I64)}],
    "user_first_touch_timestamp": I64,
    "user_ltv": {"revenue": D, "currency": S},
    "device": {"category": S, "mobile_brand_name": S, "mobile_model_name": S, "mobile_marketing_name": S,
               "mobile_os_hardware_model": S, "operating_system": S, "operating_system_version": S,
               "vendor_id": S, "advertising_id": S, "language": S, "is_limited_ad_tracking": S,
               "time_zone_offset_seconds": I64, "browser": S, "browser_version": S,
               "web_info": {"browser": S, "browser_version": S, "hostname": S}},
    "geo": {"continent": S, "sub_continent": S, "country": S, "region": S, "metro": S, "city": S},
    "app_info": {"id": S, "version": S, "install_store": S, "firebase_app_id": S, "install_source": S},
    "traffic_source": {"name": S, "medium": S, "source": S},
    "collected_traffic_source": {"manual_campaign_id": S, "manual_campaign_name": S, "manual_source": S,
                                 "manual_medium": S, "manual_term": S, "manual_content": S,
                                 "manual_source_platform": S, "manual_creative_format": S,
                                 "manual_marketing_tactic": S, "gclid": S, "dclid": S, "srsltid": S},
    "session_traffic_source_last_click": {
        "manual_campaign": {"campaign_id": S, "campaign_name": S, "source": S, "medium": S, "term": S,
                            "content": S, "source_platform": S, "creative_format": S, "marketing_tactic": S},
        "google_ads_campaign": {"customer_id": S, "account_name": S, "campaign_id": S, "campaign_name": S,
                                "ad_group_id": S, "ad_group_name": S},
    },
    "stream_id": S,
    "platform": S,
    "event_dimensions": {"hostname": S},
    "ecommerce": {"total_item_quantity": I64, "purchase_revenue_in_usd": D, "purchase_revenue": D,
                  "refund_value_in_usd": D, "refund_value": D, "shipping_value_in_usd": D, "shipping_value": D,
                  "tax_value_in_usd": D, "tax_value": D, "unique_items": I64, "transaction_id": S},
    "items": [{"item_id": S, "item_name": S, "item_brand": S, "item_variant": S, "item_category": S,
               "item_category2": S, "item_category3": S, "item_category4": S, "item_category5": S,
               "price_in_usd": D, "price": D, "quantity": I64, "item_revenue_in_usd": D, "item_revenue": D,
               "item_refund_in_usd": D, "item_refund": D, "coupon": S, "affiliation": S, "location_id": S,
               "item_list_id": S, "item_list_name": S, "item_list_index": S, "promotion_id": S,
               "promotion_name": S, "creative_name": S, "creative_slot": S,
               "item_params": [{"key": S, "value": _PARAM_VALUE}]}],
}


SCHEMA_JSON = json.dumps(GA4_SCHEMA)


def _ddl(t: Any) -> str:
    if isinstance(t, dict):
        return "STRUCT(" + ", ".join(f'"{k}" {_ddl(v)}' for k, v in t.items()) + ")"
    if isinstance(t, list):
        return _ddl(t[0]) + "[]"
    return t


# read_json(columns=...) form of the same schema (the fast path): identical DuckDB types to json_transform's
READ_COLUMNS: Dict[str, str] = {k: _ddl(v) for k, v in GA4_SCHEMA.items()}


# (setting that makes the source configured, setting of its endpoint, the endpoint's default): cxw.pii refuses the
# public demo PII salt when a configured source's endpoint is not on loopback
ENDPOINT = ("CXW_GA4_EXPORT_URL", "CXW_GA4_EXPORT_URL", None)

# Airflow connection cxw_ga4: field -> the variable it fills (extractors.common.connection applies it)
CONNECTION_FIELDS = {"extra.export_url": "CXW_GA4_EXPORT_URL"}


@dataclass
class Ga4Settings:
    export_url: str
    history_start: Optional[datetime] = None
    storage_options: Optional[Dict[str, Any]] = None
    fast_path: bool = True          # typed read_json + unknown-key byte check; False = always the line path
    batch_days: int = 8             # days read by one parallel DuckDB scan on the fast path
    batch_bytes: int = 512 * 1024 * 1024   # ... and at most this many (uncompressed-file) bytes per scan
    intraday: bool = False          # read events_intraday_YYYYMMDD for a day whose daily table has not landed yet

    @staticmethod
    def intraday_from_env(env: Env = None) -> bool:
        """CXW_GA4_INTRADAY (0 | 1); unset: on when the pipeline runs hourly (CXW_SCHEDULE=hourly)."""
        value = env_str("CXW_GA4_INTRADAY", "", env=env).strip().lower()
        if value:
            return value not in ("0", "false", "no")
        return env_str("CXW_SCHEDULE", "daily", env=env).strip().lower() == "hourly"

    @classmethod
    def from_env(cls, env: Env = None) -> "Ga4Settings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        return cls(
            export_url=env_str("CXW_GA4_EXPORT_URL", required=True, env=env),
            fast_path=env_str("CXW_GA4_FAST_PATH", "1", env=env) not in ("0", "false", "no"),
            batch_days=max(1, env_int("CXW_GA4_BATCH_DAYS", 8, env=env)),
            history_start=history_start_from_env(env),
            intraday=cls.intraday_from_env(env),
        )


SETTINGS = Ga4Settings   # the class extractors.common.connection builds from the environment / a connection
