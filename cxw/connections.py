"""Map Airflow connections onto the extractors' environment variables.

Extractors read their configuration from `CXW_<SOURCE>_*` variables (see each extractor's README) so they run the
same under Airflow, in tests and from a shell. Under Airflow, a connection `cxw_<source>` (from the metadata DB, a
secrets backend or an `AIRFLOW_CONN_CXW_<SOURCE>` variable) fills those variables for the task's process. Values
are never logged.
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)

# connection field -> environment variable, per source
_MAP = {
    "odoo": {"uri": "CXW_ODOO_URL", "extra.mapping": "CXW_ODOO_MAPPING"},
    "hubspot": {"host": "CXW_HUBSPOT_BASE_URL", "password": "CXW_HUBSPOT_TOKEN"},
    "ga4": {"extra.export_url": "CXW_GA4_EXPORT_URL"},
    "google_reviews": {"host": "CXW_GOOGLE_BASE_URL", "password": "CXW_GOOGLE_TOKEN",
                       "extra.account_id": "CXW_GOOGLE_ACCOUNT_ID", "extra.location_ids": "CXW_GOOGLE_LOCATION_IDS"},
    "trustpilot": {"host": "CXW_TRUSTPILOT_BASE_URL", "login": "CXW_TRUSTPILOT_API_KEY",
                   "password": "CXW_TRUSTPILOT_API_SECRET",
                   "extra.business_unit_ids": "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS"},
}


def conn_id(source: str) -> str:
    return f"cxw_{source}"


def env_from_connection(source: str, conn) -> dict[str, str]:
    """The environment variables a connection object defines (pure; testable without Airflow)."""
    out: dict[str, str] = {}
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(getattr(conn, "extra", None) or "{}")
    for field, var in _MAP[source].items():
        if field == "uri":
            value = conn.get_uri()
        elif field.startswith("extra."):
            value = extra.get(field.split(".", 1)[1])
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
        elif field == "host":
            value = conn.host
            if value and "://" not in value:
                scheme = conn.schema or "https"
                port = f":{conn.port}" if conn.port else ""
                value = f"{scheme}://{value}{port}"
        else:
            value = getattr(conn, field, None)
        if value not in (None, ""):
            out[var] = str(value)
    return out


def apply_airflow_connection(source: str) -> list[str]:
    """If Airflow has a `cxw_<source>` connection, export its values; returns the variable names set."""
    try:
        from airflow.sdk import BaseHook
    except Exception:  # not running under Airflow
        return []
    try:
        conn = BaseHook.get_connection(conn_id(source))
    except Exception:
        log.info("no Airflow connection %s; using CXW_* environment variables", conn_id(source))
        return []
    values = env_from_connection(source, conn)
    os.environ.update(values)
    log.info("configured %s from Airflow connection %s (%s)", source, conn_id(source), ", ".join(sorted(values)))
    return sorted(values)
