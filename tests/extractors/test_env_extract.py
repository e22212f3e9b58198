"""Configuration from the environment (settings=None)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import all_text_under, run_kwargs
from extractors import ga4, google_reviews, hubspot, odoo, trustpilot
from extractors.common.settings import ConfigError

UTC = timezone.utc


@pytest.fixture
def env(monkeypatch, server, demo_dir):
    m = server.manifest
    values = {
        "CXW_HISTORY_START": "2025-01-01",
        "CXW_HTTP_MAX_ATTEMPTS": "8",
        "CXW_ODOO_URL": f"sqlite:///{demo_dir / 'odoo' / 'odoo.sqlite'}",
        "CXW_HUBSPOT_BASE_URL": server.base_url, "CXW_HUBSPOT_TOKEN": m["hubspot"]["token"],
        "CXW_GA4_EXPORT_URL": str(demo_dir / "ga4"), "CXW_GA4_BATCH_DAYS": "2",
        "CXW_GOOGLE_BASE_URL": server.base_url, "CXW_GOOGLE_TOKEN": m["google"]["token"],
        "CXW_GOOGLE_ACCOUNT_ID": m["google"]["account_id"],
        "CXW_GOOGLE_LOCATION_IDS": ",".join(m["google"]["location_ids"]),
        "CXW_TRUSTPILOT_BASE_URL": server.base_url, "CXW_TRUSTPILOT_API_KEY": m["trustpilot"]["api_key"],
        "CXW_TRUSTPILOT_API_SECRET": m["trustpilot"]["api_secret"],
        "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS": ",".join(m["trustpilot"]["business_unit_ids"]),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def test_every_source_runs_from_environment(env, dirs, server):
    ws, we = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 3, tzinfo=UTC)
    counts = {}
    for mod in (odoo, google_reviews, trustpilot, ga4):
        rep = mod.extract(settings=None, **run_kwargs(dirs, ws, we, mode="window"))
        counts[rep["source"]] = sum(l["rows"] for l in rep["loads"])
    s = hubspot.HubspotSettings.from_env()
    assert s.http.max_attempts == 8 and s.base_url == server.base_url
    assert ga4.Ga4Settings.from_env().batch_days == 2
    assert counts["ga4"] == sum(server.manifest["counts"]["ga4"][f"events_2025060{d}.json"] for d in (1, 2))
    assert counts["odoo"] > 0
    secrets = [env["CXW_HUBSPOT_TOKEN"], env["CXW_GOOGLE_TOKEN"], env["CXW_TRUSTPILOT_API_SECRET"]]
    text = all_text_under(dirs["raw"], dirs["state"], dirs["deadletter"])
    assert not any(s in text for s in secrets)


def test_missing_required_setting_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CXW_TRUSTPILOT_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="CXW_TRUSTPILOT_API_KEY|CXW_TRUSTPILOT_BUSINESS_UNIT_IDS"):
        trustpilot.TrustpilotSettings.from_env()

