"""An unconfigured or wrongly configured source fails its extract task at once, without Airflow retries, and the run
summary names the source, the setting (and endpoint) and the fix (issue 17 point 3).

The DAG's extract task calls ``cxw.tasks.extract``; a ``ConfigurationError`` from the extractors (which do not import
Airflow) comes out of it as Airflow's real ``AirflowFailException`` - the exception Airflow's task runner fails a task
on without its retries - and is recorded in the run directory, where ``build_summary`` reads it. A vendor's 401 is
answered by the real loopback DemoServer."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from cxw import tasks
from cxw.summary import build_summary, render
from extractors.common.http import ExtractorHTTPError
from extractors.common.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]
START, END = datetime(2025, 6, 1, tzinfo=timezone.utc), datetime(2025, 6, 2, tzinfo=timezone.utc)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    for var in list(os.environ):
        if var.startswith(("CXW_HUBSPOT_", "CXW_GOOGLE_")):
            monkeypatch.delenv(var)
    return tmp_path


def test_a_missing_setting_fails_the_extract_at_once_without_retries_and_the_summary_names_it(home):
    t0 = time.monotonic()
    with pytest.raises(AirflowFailException) as ei:
        tasks.extract("hubspot", START, END, run_id="manual__unconfigured")
    assert time.monotonic() - t0 < 10
    assert isinstance(ei.value.__cause__, ConfigError)
    assert "hubspot" in str(ei.value) and "CXW_HUBSPOT_TOKEN" in str(ei.value)

    s = build_summary("manual__unconfigured", [], None, None, None, None)
    assert s["status"] == "blocked"
    [err] = s["config_errors"]
    assert err["source"] == "hubspot" and err["setting"] == "CXW_HUBSPOT_TOKEN"
    assert "set CXW_HUBSPOT_TOKEN" in err["fix"] and "cxw_hubspot" in err["fix"]
    text = render(s)
    assert "extract_hubspot" in text and "CXW_HUBSPOT_TOKEN" in text and "fix:" in text
    assert "see the Airflow log" not in s["reason"]


def test_a_rejected_token_names_source_endpoint_setting_and_fix_in_the_summary(home, monkeypatch):
    from demo_company.server import DemoServer

    demo = home / "XS-42"
    subprocess.run([sys.executable, "-m", "demo_company", "generate", "--scale", "XS", "--seed", "42",
                    "--out", str(demo)], check=True, cwd=REPO, capture_output=True)
    with DemoServer(demo, port=0, realism=False) as srv:
        g = srv.manifest["google"]
        monkeypatch.setenv("CXW_GOOGLE_TOKEN", "ya29.not-the-token")
        monkeypatch.setenv("CXW_GOOGLE_ACCOUNT_ID", str(g["account_id"]))
        monkeypatch.setenv("CXW_GOOGLE_LOCATION_IDS", ",".join(g["location_ids"]))
        monkeypatch.setenv("CXW_GOOGLE_BASE_URL", srv.base_url)
        with pytest.raises(AirflowFailException) as ei:
            tasks.extract("google_reviews", START, END, run_id="manual__401")
        assert len([r for r in srv.request_log() if r["path"].startswith("/v4/")]) == 1
    assert "ya29.not-the-token" not in str(ei.value)
    [err] = build_summary("manual__401", [], None, None, None, None)["config_errors"]
    assert err["source"] == "google_reviews" and err["setting"] == "CXW_GOOGLE_TOKEN"
    assert err["endpoint"].startswith("GET /v4/accounts/") and "credentials" in err["fix"]


def test_network_and_server_errors_keep_their_retries():
    for exc in (requests.ConnectionError("connection refused"),
                ExtractorHTTPError("google_reviews: GET /v4/x failed with HTTP 503")):
        assert tasks.fail_fast(exc) is exc
    assert isinstance(tasks.fail_fast(ConfigError("environment variable CXW_ODOO_URL is required")),
                      AirflowFailException)


# ------------------------------------------------------------------ the public demo salt against real systems (17.5)
def test_the_demo_salt_is_refused_when_a_configured_source_is_not_the_demos_loopback(home, monkeypatch):
    from cxw.pii import require_private_salt

    monkeypatch.delenv("CXW_PII_SALT", raising=False)
    monkeypatch.setenv("CXW_HUBSPOT_TOKEN", "pat-na1-real-looking")  # default base URL: api.hubapi.com
    with pytest.raises(ConfigError, match="CXW_PII_SALT"):
        require_private_salt()  # dbt_build's check (every source configured in the environment)
    t0 = time.monotonic()
    with pytest.raises(AirflowFailException) as ei:
        tasks.extract("hubspot", START, END, run_id="manual__demo_salt")
    assert time.monotonic() - t0 < 10
    assert "CXW_PII_SALT" in str(ei.value) and "CXW_HUBSPOT_BASE_URL" in str(ei.value)
    assert "pat-na1-real-looking" not in str(ei.value)
    s = build_summary("manual__demo_salt", [], None, None, None, None)
    assert "extract_hubspot" in s["reason"] and "CXW_PII_SALT" in s["reason"] and "token_hex" in s["reason"]
    with pytest.raises(AirflowFailException, match="CXW_PII_SALT"):  # a build-only run: refused before dbt runs
        tasks.dbt_build(END, run_id="manual__demo_salt_build")
    assert "dbt_build failed on its configuration" in build_summary(
        "manual__demo_salt_build", [], None, None, None, None)["reason"]
    monkeypatch.setenv("CXW_PII_SALT", "a-private-salt")
    require_private_salt()


def test_the_demo_salt_is_accepted_for_the_demo_on_loopback(home, monkeypatch):
    from cxw.pii import require_private_salt

    monkeypatch.delenv("CXW_PII_SALT", raising=False)
    monkeypatch.setenv("CXW_HUBSPOT_TOKEN", "demo-token")
    monkeypatch.setenv("CXW_HUBSPOT_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("CXW_ODOO_URL", f"sqlite:///{home}/odoo.sqlite")
    monkeypatch.setenv("CXW_GA4_EXPORT_URL", str(home / "ga4"))
    require_private_salt()
    monkeypatch.setenv("CXW_ODOO_URL", "postgresql://odoo@erp.example.com/odoo")
    with pytest.raises(ConfigError, match="odoo .CXW_ODOO_URL."):
        require_private_salt()
