"""The browser test's chromium requirement follows the project's skip policy: without /usr/bin/chromium it skips,
and under CXW_REQUIRE_SERVICES=1 (CI) it fails."""

from __future__ import annotations

import pytest

import tests.dashboard.test_dashboard_browser as browser_test


def test_missing_chromium_fails_under_require_services_and_skips_otherwise(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_test, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CXW_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium not installed"):
        browser_test._require_chromium()
    monkeypatch.delenv("CXW_REQUIRE_SERVICES")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        browser_test._require_chromium()
