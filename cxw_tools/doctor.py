"""`./cx doctor`: is this installation ready to run? (like `dbt debug`)

One row per check, printed as one table with what to fix:

* each source: its settings read exactly as its extractor reads them (`extractors.<source>.settings`), then ONE
  cheap authenticated request through the extractor's own client (same auth, headers, error hints) with no retries
  and a short timeout (`CXW_DOCTOR_TIMEOUT`): HubSpot one contacts page of 1, Google one review of each configured
  location, Trustpilot the access token and one review of each configured business unit, GA4 a listing of the
  export folder (fsspec), Odoo a connection, then `SELECT 1` from the first mapped table;
* the warehouse: `CXW_HOME` and the build database's folder writable;
* free disk under `CXW_HOME` (WARN below `CXW_DOCTOR_MIN_FREE_GB`);
* the PII salt: not the public demo salt when any source is not the demo's loopback (`cxw.pii`).

Settings come from the environment, then `.env` / `--env-file` (the same loader as `./cx run`). Rows name settings,
never their values, and never show a vendor's response body or a configured id. Exit 0 when no row FAILs, else 1.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


OK, WARN, FAIL = "OK", "WARN", "FAIL"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MIN_FREE_GB = 10.0


@dataclasses.dataclass
class Row:
    check: str
    status: str
    detail: str
    fix: str = ""


# --- sources --------------------------------------------------------------------------------------------------------

def _timeout() -> float:
    from extractors.common.settings import env_float

    return env_float("CXW_DOCTOR_TIMEOUT", DEFAULT_TIMEOUT_S)


def _one_shot(settings):
    """The extractor's settings with its HTTP config made single-try and short (no retries, no backoff)."""
    http = dataclasses.replace(settings.http, max_attempts=1, timeout=min(settings.http.timeout, _timeout()))
    return dataclasses.replace(settings, http=http)


def _probe_hubspot() -> str:
    from extractors import hubspot
    from extractors.hubspot.settings import LIST_PATH, HubspotSettings

    s = _one_shot(HubspotSettings.from_env())
    hubspot._client(s).request(LIST_PATH.format(object="contacts"), params={"limit": 1})
    return "authenticated; contacts readable"


def _probe_google_reviews() -> str:
    from extractors import google_reviews
    from extractors.google_reviews.settings import REVIEWS_PATH, GoogleReviewsSettings

    s = _one_shot(GoogleReviewsSettings.from_env())
    client = google_reviews._client(s)
    for location in s.location_ids:
        client.request(REVIEWS_PATH.format(account=s.account_id, location=location), params={"pageSize": 1})
    return f"authenticated; {len(s.location_ids)} configured location(s) readable"


def _probe_trustpilot() -> str:
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

    from extractors import trustpilot
    from extractors.trustpilot.helpers import fetch_token
    from extractors.trustpilot.settings import REVIEWS_PATH, TrustpilotSettings

    s = _one_shot(TrustpilotSettings.from_env())
    client = trustpilot._client(s, [s.api_key, s.api_secret])
    token = fetch_token(client, s)
    client.checker.secrets.append(token)
    client.rest.auth = BearerTokenAuth(token)   # as the extractor does
    for unit in s.business_unit_ids:
        client.request(REVIEWS_PATH.format(business_unit_id=unit), params={"perPage": 1})
    return f"authenticated; {len(s.business_unit_ids)} configured business unit(s) readable"


class _Failed(Exception):
    def __init__(self, detail: str, fix: str):
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _probe_ga4() -> str:
    from extractors.ga4.helpers import DAY_RE, ExportDir
    from extractors.ga4.settings import Ga4Settings

    s = Ga4Settings.from_env()
    export = ExportDir(s.export_url, s.storage_options)
    if not export.fs.exists(export.root):
        raise _Failed("export folder not found", "check CXW_GA4_EXPORT_URL (a folder or fsspec URL holding "
                                                 "events_YYYYMMDD files) and its credentials")
    names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in export.fs.ls(export.root, detail=False)]
    days = sum(1 for n in names if DAY_RE.match(n))
    if not days:
        raise _Failed("export folder has no events_YYYYMMDD files", "check CXW_GA4_EXPORT_URL points at the "
                                                                    "BigQuery export folder")
    return f"export folder listed; {days} export day(s)"


def _probe_odoo() -> str:
    import connectorx as cx

    from extractors.odoo.helpers import preflight, quote_ident, to_connectorx
    from extractors.odoo.mapping import MappingError, check_contract, load_mapping
    from extractors.odoo.settings import OdooSettings

    s = OdooSettings.from_env()
    try:
        mapping = load_mapping(s.mapping_path)
        check_contract(mapping, s.mapping_path)      # every column staging reads (as the extract checks it)
    except MappingError as exc:   # names the missing / unknown key or column (a path and names, never a value)
        raise _Failed("mapping file invalid", f"{exc} - see extractors/odoo/README.md") from None
    except (OSError, ValueError):
        raise _Failed("mapping file unreadable or invalid", "check CXW_ODOO_MAPPING (a YAML mapping file, see "
                                                            "extractors/odoo/README.md)") from None
    try:
        conn = to_connectorx(s.url)
    except Exception:
        raise _Failed("not a supported database URL", "set CXW_ODOO_URL to a sqlite:///, postgresql:// or "
                                                      "mysql:// URL") from None
    try:
        preflight(s.url, conn, timeout_s=max(1, int(min(s.connect_timeout_s, _timeout()))))
    except ConnectionError:
        raise _Failed(f"unreachable: cannot connect to the {conn.dialect} database",
                      "check CXW_ODOO_URL (host, port, database, user, password) and the network") from None
    table = next(iter(mapping.values())).table
    try:
        cx.read_sql(conn.cx_url, f"SELECT 1 AS ok FROM {quote_ident(conn.dialect, table)} LIMIT 1",
                    return_type="arrow")
    except BaseException as exc:  # noqa: BLE001 - connectorx panics are BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise _Failed("connected, but a mapped table cannot be read", "check CXW_ODOO_URL points at the ERP "
                      "database and its user may read the tables in CXW_ODOO_MAPPING") from None
    return f"connected ({conn.dialect}); a mapped table readable"


def _probe_review_files() -> str:
    from extractors.review_files import inbox_files
    from extractors.review_files.helpers import load_mappings
    from extractors.review_files.settings import ReviewFilesSettings

    s = ReviewFilesSettings.from_env()
    if not s.configured:
        return "not configured (CXW_REVIEW_FILES_DIR unset): optional source, nothing is read"
    s.check()
    files = inbox_files(s, load_mappings(s.mappings_dir))
    return f"inbox listed; {len(files)} file(s) in {len({site for site, _ in files})} site folder(s)"


PROBES = {"odoo": _probe_odoo, "hubspot": _probe_hubspot, "ga4": _probe_ga4,
          "google_reviews": _probe_google_reviews, "trustpilot": _probe_trustpilot,
          "review_files": _probe_review_files}
BASE_URL = {"hubspot": "CXW_HUBSPOT_BASE_URL", "google_reviews": "CXW_GOOGLE_BASE_URL",
            "trustpilot": "CXW_TRUSTPILOT_BASE_URL"}


def connection_variables(source: str) -> tuple[list[str], str | None]:
    """Fill the source's CXW_* variables from an `AIRFLOW_CONN_CXW_<SOURCE>` variable (URI or JSON) as the DAG's
    tasks do (`cxw.connections`: the connection wins). Returns (names set, error). Connections held only in the
    metadata DB or a secrets backend are not read."""
    from cxw.connections import conn_id, env_from_connection

    var = f"AIRFLOW_CONN_{conn_id(source).upper()}"
    value = os.environ.get(var, "").strip()
    if not value:
        return [], None
    try:
        from airflow.models.connection import Connection

        conn = (Connection.from_json(value, conn_id=conn_id(source)) if value.startswith("{")
                else Connection(conn_id=conn_id(source), uri=value))
        values = env_from_connection(source, conn)
    except Exception as exc:  # noqa: BLE001 - the type only: the value holds secrets
        return [], f"{var} does not parse as a connection URI or JSON ({type(exc).__name__})"
    os.environ.update(values)
    return sorted(values), None


def check_source(source: str) -> Row:
    """One source: settings, then one cheap request. Never raises."""
    import requests

    from extractors.common.http import ExtractorHTTPError, VendorConfigError
    from extractors.common.settings import ConfigurationError

    from cxw.connections import conn_id

    name = f"source {source}"
    names, error = connection_variables(source)
    if error:
        return Row(name, FAIL, error, f"fix the Airflow connection {conn_id(source)} (docs/operations.md \"Airflow "
                                      f"connections\")")
    try:
        return Row(name, OK, PROBES[source]() + (f" (from the Airflow connection {conn_id(source)})" if names
                                                 else ""))
    except _Failed as exc:
        return Row(name, FAIL, exc.detail, exc.fix)
    except VendorConfigError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        what = {401: "authentication rejected", 403: "access denied", 404: "not found"}.get(status, "rejected")
        setting = exc.setting or f"the CXW_{source.upper()}_* settings"
        if status == 401:
            fix = f"set valid, unexpired credentials in {setting}"
        elif status == 403:
            fix = f"grant the credentials in {setting} access (API scope, account), or use credentials that have it"
        elif status == 404:
            fix = f"check {setting} (a configured id that does not exist, or a wrong base URL)"
        else:
            fix = f"check {setting}"
        return Row(name, FAIL, f"{what} (HTTP {status})", fix)
    except ConfigurationError as exc:  # a missing or malformed setting (the message names the setting)
        setting = getattr(exc, "setting", None) or f"the CXW_{source.upper()}_* settings"
        return Row(name, FAIL, f"setting missing or invalid: {setting}",
                   f"set {setting} (environment, .env or AIRFLOW_CONN_{conn_id(source).upper()}; see "
                   f".env.example)")
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError) as exc:
        timed_out = isinstance(exc, (requests.Timeout, TimeoutError))
        where = BASE_URL.get(source, f"the CXW_{source.upper()}_* settings")
        return Row(name, FAIL, "unreachable (timed out)" if timed_out else "unreachable (connection failed)",
                   f"check {where} and the network / firewall")
    except ExtractorHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        return Row(name, FAIL, f"vendor answered HTTP {status}",
                   "a server error or rate limit: try again later; if it persists, check the vendor's status page")
    except Exception as exc:  # noqa: BLE001 - the type only: a message may carry a value
        return Row(name, FAIL, f"check failed ({type(exc).__name__})",
                   f"check the CXW_{source.upper()}_* settings; `./cx run` shows the full error")


# --- warehouse, disk, salt ------------------------------------------------------------------------------------------

def check_warehouse() -> Row:
    from cxw.config import paths

    p = paths()
    for folder, setting in ((p.home, "CXW_HOME"), (p.build_db.parent, "CXW_BUILD_DB")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".cx-doctor-"):
                pass
        except OSError as exc:
            return Row("warehouse", FAIL, f"{folder} not writable ({type(exc).__name__})",
                       f"make it writable by this user, or set {setting} to a writable path")
    return Row("warehouse", OK, f"{p.home} writable; build DB folder writable")


def check_disk() -> Row:
    from extractors.common.settings import env_float

    from cxw.config import paths

    threshold = env_float("CXW_DOCTOR_MIN_FREE_GB", DEFAULT_MIN_FREE_GB)
    folder = paths().home
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_gb = shutil.disk_usage(folder).free / 1e9
    if free_gb < threshold:
        return Row("free disk", WARN, f"{free_gb:.1f} GB free under {folder} (below {threshold:g} GB)",
                   "free space or move CXW_HOME to a larger disk (threshold: CXW_DOCTOR_MIN_FREE_GB)")
    return Row("free disk", OK, f"{free_gb:.1f} GB free (threshold {threshold:g} GB)")


def check_salt() -> Row:
    from extractors.common.settings import ConfigurationError

    from cxw import SOURCES
    from cxw.pii import DEMO_SALT, pii_salt, require_private_salt

    try:
        require_private_salt(list(SOURCES))
    except ConfigurationError as exc:
        return Row("pii salt", FAIL, "the public demo salt while a source is not the demo's loopback",
                   exc.fix or "set CXW_PII_SALT to a long random secret")
    if pii_salt() == DEMO_SALT:
        return Row("pii salt", OK, "demo salt; every configured source is on loopback (demo only)")
    return Row("pii salt", OK, "set (private)")


# --- report ---------------------------------------------------------------------------------------------------------

def run_checks() -> list[Row]:
    from cxw import SOURCES

    return [*(check_source(s) for s in SOURCES), check_warehouse(), check_disk(), check_salt()]


def render(rows: list[Row]) -> str:
    w_check = max(len("check"), *(len(r.check) for r in rows))
    w_status = max(len("status"), *(len(r.status) for r in rows))
    w_detail = max(len("detail"), *(len(r.detail) for r in rows))
    lines = [f"{'check':<{w_check}}  {'status':<{w_status}}  {'detail':<{w_detail}}  fix",
             f"{'-' * w_check}  {'-' * w_status}  {'-' * w_detail}  ---"]
    for r in rows:
        lines.append(f"{r.check:<{w_check}}  {r.status:<{w_status}}  {r.detail:<{w_detail}}  {r.fix}".rstrip())
    return "\n".join(lines)


def main(env_file: Path | None = None, out=None) -> int:
    from cxw_tools.run import read_env_file

    out = out or sys.stdout
    if (rc := read_env_file("cx doctor", env_file, out)) is not None:
        return rc
    # dlt (the HTTP sources' client) probes for Airflow on its first configuration lookup: it imports airflow.models and
    # reads an Airflow Variable, which creates a metadata DB under $HOME/airflow outside a task - 2.6 CPU-s and a
    # stray file per `./cx doctor` (issue 16.8). The doctor reads settings from the environment and AIRFLOW_CONN_*
    # variables only (connection_variables), so dlt's Airflow secrets provider is off unless set otherwise.
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
    t0 = time.perf_counter()
    rows = run_checks()
    print(render(rows), file=out)
    failed = [r for r in rows if r.status == FAIL]
    print(f"cx doctor: {len(rows)} checks in {time.perf_counter() - t0:.1f}s: "
          + (f"{len(failed)} FAILED" if failed else "all OK"), file=out, flush=True)
    return 1 if failed else 0
