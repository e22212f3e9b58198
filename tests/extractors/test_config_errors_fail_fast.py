"""Configuration and authorisation errors fail at once (issue 17 point 3): a vendor's 401 / 403 / 404 for a wrong
credential or a configured id that does not exist is answered by the real loopback DemoServer, and the extract fails
after exactly one request to that endpoint, without a backoff, with a ``ConfigurationError`` naming the source, the
endpoint and the setting to fix; a missing required setting fails before any request, naming it; a 503 is still
retried."""
from __future__ import annotations

import pytest

from conftest import run_kwargs
from extractors import google_reviews, hubspot, trustpilot
from extractors.common.http import ExtractorHTTPError, VendorConfigError
from extractors.common.settings import ConfigError, ConfigurationError
from test_hubspot_extract import settings as hs_settings
from test_reviews_extract import g_settings, t_settings


def _requests(server, prefix: str) -> list[dict]:
    return [r for r in server.request_log() if r["path"].startswith(prefix)]


def test_a_rejected_token_fails_after_one_request_naming_source_endpoint_and_token_setting(server, clock, dirs):
    with pytest.raises(ConfigurationError) as ei:
        google_reviews.extract(settings=g_settings(server, clock, token="ya29.WRONG-token"), **run_kwargs(dirs))
    exc = ei.value
    assert isinstance(exc, VendorConfigError) and isinstance(exc, ExtractorHTTPError)
    assert len(_requests(server, "/v4/")) == 1 and clock.sleeps == []  # one request, no backoff, no retry
    d = exc.details()
    assert d["source"] == "google_reviews" and d["setting"] == "CXW_GOOGLE_TOKEN"
    assert d["endpoint"].startswith("GET /v4/accounts/") and "credentials" in d["fix"]
    text = str(exc)
    assert "google_reviews" in text and "HTTP 401" in text and "CXW_GOOGLE_TOKEN" in text
    assert "ya29.WRONG-token" not in text


def test_hubspot_401_names_the_token_setting_after_one_request(server, clock, dirs):
    with pytest.raises(VendorConfigError) as ei:
        hubspot.extract(settings=hs_settings(server, clock, token="pat-eu1-wrong"), **run_kwargs(dirs))
    assert len(_requests(server, "/crm/")) + len(_requests(server, "/email/")) == 1 and clock.sleeps == []
    assert ei.value.setting == "CXW_HUBSPOT_TOKEN" and ei.value.source == "hubspot"
    assert "pat-eu1-wrong" not in str(ei.value)


def test_a_configured_business_unit_that_does_not_exist_names_its_setting(server, clock, dirs):
    with pytest.raises(VendorConfigError) as ei:
        trustpilot.extract(settings=t_settings(server, clock, business_unit_ids=["ffffffffffffffffffffffff"]),
                           **run_kwargs(dirs))
    exc = ei.value
    assert exc.response.status_code == 404
    assert len(_requests(server, "/v1/private/")) == 1 and clock.sleeps == []
    assert exc.setting == "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS"
    assert exc.endpoint.startswith("GET /v1/private/business-units/ffffffffffffffffffffffff")
    assert "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS" in str(exc) and "does not exist" in exc.fix


def test_a_configured_location_the_account_cannot_see_names_the_location_setting(server, clock, dirs):
    with pytest.raises(VendorConfigError) as ei:
        google_reviews.extract(settings=g_settings(server, clock, location_ids=["999999999"]), **run_kwargs(dirs))
    assert ei.value.response.status_code in (403, 404)
    assert len(_requests(server, "/v4/")) == 1 and clock.sleeps == []
    assert "CXW_GOOGLE_LOCATION_IDS" in ei.value.setting and "CXW_GOOGLE_LOCATION_IDS" in str(ei.value)


def test_a_missing_required_setting_fails_before_any_request_naming_it(server, clock, dirs, monkeypatch):
    for var in ("CXW_HUBSPOT_TOKEN", "CXW_HUBSPOT_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CXW_HUBSPOT_BASE_URL", server.base_url)
    with pytest.raises(ConfigError) as ei:
        hubspot.extract(**run_kwargs(dirs))
    assert ei.value.setting == "CXW_HUBSPOT_TOKEN" and "CXW_HUBSPOT_TOKEN" in ei.value.details()["fix"]
    assert server.request_log() == []


def test_a_503_is_still_retried(server, clock, dirs):
    server.inject_faults("/v4/accounts/", [{"status": 503}])
    rep = google_reviews.extract(settings=g_settings(server, clock), **run_kwargs(dirs))
    assert rep["loads"][0]["rows"] > 0 and len(clock.sleeps) == 1
    assert [r["status"] for r in _requests(server, "/v4/")][:2] == [503, 200]
