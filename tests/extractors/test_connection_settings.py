"""An Airflow connection becomes a source's settings object through one generic mapper (issue 16 point 5): each
source declares its connection fields next to its settings (``CONNECTION_FIELDS``, ``SETTINGS`` in
``extractors/<source>/settings.py``), ``extractors.common.connection`` applies them over the environment, and the
process environment is never written. Airflow's own ``Connection`` class is used (no Airflow metadata DB needed)."""

from __future__ import annotations

import importlib
import json
import os

import pytest
from airflow.models.connection import Connection

import cxw
import extractors
from extractors.common.connection import connection_values, settings_for, settings_module, source_env
from extractors.common.http import HttpSourceSettings
from extractors.common.settings import ConfigError

ENV = {"CXW_HISTORY_START": "2025-01-01"}


def test_the_sources_are_listed_once_and_each_declares_its_settings_and_connection_fields():
    assert cxw.SOURCES is extractors.SOURCES
    for source in extractors.SOURCES:
        mod = settings_module(source)
        assert mod.SETTINGS.__module__ == mod.__name__ and hasattr(mod.SETTINGS, "from_env"), source
        assert mod.CONNECTION_FIELDS and all(v.startswith("CXW_") for v in mod.CONNECTION_FIELDS.values()), source
        configured, endpoint, _ = mod.ENDPOINT  # what cxw.pii checks against the demo salt
        assert {configured, endpoint} <= set(mod.CONNECTION_FIELDS.values()), source
        importlib.import_module(f"extractors.{source}")  # the package whose extract() takes this settings object
    with pytest.raises(ValueError, match="unknown source"):
        settings_module("zendesk")


def test_every_connection_field_reaches_the_settings_object():
    """A variable a connection field fills is one the settings class reads: a sentinel value put through the
    connection shows up in the settings object (a mapping to a variable nobody reads would be lost silently)."""
    for source in extractors.SOURCES:
        mod = settings_module(source)
        fields = mod.CONNECTION_FIELDS
        conn = Connection(conn_id=f"cxw_{source}", conn_type="http", host="vendor.example", login="key-sentinel",
                          password="secret-sentinel",
                          extra=json.dumps({k.split(".", 1)[1]: f"{k.split('.', 1)[1]}-sentinel"
                                            for k in fields if k.startswith("extra.")}))
        settings = settings_for(source, conn, ENV)
        shown = repr(vars(settings))
        for field, var in fields.items():
            expected = {"uri": "vendor.example", "host": "https://vendor.example", "login": "key-sentinel",
                        "password": "secret-sentinel"}.get(field, f"{field.split('.', 1)[-1]}-sentinel")
            assert expected in shown, f"{source}: connection field {field} -> {var} does not reach {type(settings)}"


def test_a_connection_builds_the_settings_without_touching_the_environment(monkeypatch):
    monkeypatch.setenv("CXW_HUBSPOT_TOKEN", "from-env")
    monkeypatch.setenv("CXW_HUBSPOT_LOOKBACK_MINUTES", "25")
    before = dict(os.environ)
    conn = Connection(conn_id="cxw_hubspot", conn_type="http", host="hub.example", port=8443,
                      password="from-connection")
    s = settings_for("hubspot", conn)
    assert isinstance(s, HttpSourceSettings)
    assert (s.token, s.base_url) == ("from-connection", "https://hub.example:8443")  # the connection wins
    assert s.lookback.total_seconds() == 25 * 60                                        # the rest: the environment
    assert dict(os.environ) == before
    # without a connection: the environment alone
    assert settings_for("hubspot").token == "from-env"


def test_connection_lists_are_joined_and_empty_fields_leave_the_environment(monkeypatch):
    conn = Connection(conn_id="cxw_trustpilot", conn_type="http", login="k", password="s",
                      extra=json.dumps({"business_unit_ids": ["bu1", "bu2"]}))
    values = connection_values(settings_module("trustpilot").CONNECTION_FIELDS, conn)
    assert values == {"CXW_TRUSTPILOT_API_KEY": "k", "CXW_TRUSTPILOT_API_SECRET": "s",
                      "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS": "bu1,bu2"}  # no host: CXW_TRUSTPILOT_BASE_URL untouched
    env = source_env("trustpilot", conn, {"CXW_TRUSTPILOT_BASE_URL": "http://127.0.0.1:9"})
    assert env["CXW_TRUSTPILOT_BASE_URL"] == "http://127.0.0.1:9"
    assert settings_for("trustpilot", conn, env).business_unit_ids == ["bu1", "bu2"]


def test_a_connection_missing_a_required_field_fails_with_the_settings_error_naming_the_variable():
    conn = Connection(conn_id="cxw_google_reviews", conn_type="http", password="t",
                      extra=json.dumps({"location_ids": "l1"}))
    with pytest.raises(ConfigError) as err:
        settings_for("google_reviews", conn, ENV)
    assert err.value.setting == "CXW_GOOGLE_ACCOUNT_ID"


def test_the_odoo_connection_is_its_uri():
    conn = Connection(conn_id="cxw_odoo", uri="postgresql://reader:pw@erp.example:5432/odoo")
    s = settings_for("odoo", conn, ENV)
    assert s.url == conn.get_uri() and "reader:pw@erp.example:5432/odoo" in s.url  # Airflow's form of the URL
