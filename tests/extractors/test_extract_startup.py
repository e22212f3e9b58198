"""What an extract task pays besides its requests (issue 20: a no-op run in seconds).

Measured in a no-op DAG run (docs/DECISIONLOG.md, 2026-12-07): most of an extract task's wall was start-up, not
requests. Every task imported all six extractors (the salt check read every source's ``ENDPOINT``), and every HTTP
client resolved dlt's runtime configuration through dlt's config providers - inside an Airflow task that includes
Airflow Variables, one API round trip per field. These tests keep both away.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dlt.common.configuration.resolve as dlt_resolve

from conftest import run_kwargs
from extractors import google_reviews, trustpilot
from extractors.common.http import HttpConfig, make_rest_client
from test_reviews_extract import g_settings, t_settings

REPO = Path(__file__).resolve().parents[2]
OTHER_EXTRACTORS = ("extractors.hubspot", "extractors.odoo", "extractors.google_reviews", "extractors.trustpilot",
                    "extractors.review_files")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (the demo salt: the check runs in full)."""
    env = {k: v for k, v in os.environ.items() if k != "CXW_PII_SALT"}
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_salt_check_of_an_extract_task_imports_only_its_own_source():
    # the extract task's check (cxw.tasks._extract): its own source, read from the task's settings mapping
    mods = _modules_after("from cxw.pii import require_private_salt\n"
                          "require_private_salt(['ga4'], {'CXW_GA4_EXPORT_URL': '/tmp/ga4'})")
    assert "extractors.ga4.settings" in mods
    assert not [m for m in mods if m.split(".")[0] == "dlt" or m.startswith(OTHER_EXTRACTORS)], \
        "checking one source imported the other extractors (dlt, connectorx, ...): about 1 CPU-s per extract task"


def test_an_http_client_and_extract_read_no_dlt_configuration(server, clock, dirs, monkeypatch):
    """dlt resolves its RuntimeConfiguration from every config provider when a Client or RESTClient is built without
    one: inside an Airflow task that is 19 Airflow Variable lookups through the API server per client. Our clients
    take every setting from CXW_* (HttpConfig), so no dlt configuration may be resolved at all."""
    calls: list[str] = []
    original = dlt_resolve._resolve_configuration

    def spy(config, *args, **kwargs):
        calls.append(type(config).__name__)
        return original(config, *args, **kwargs)

    monkeypatch.setattr(dlt_resolve, "_resolve_configuration", spy)
    client = make_rest_client("testsrc", "http://127.0.0.1:9", HttpConfig(), secrets=[])
    assert client.rest.session is not None
    assert calls == [], f"building an HTTP client resolved dlt configuration: {calls}"
    g = google_reviews.extract(settings=g_settings(server, clock), **run_kwargs(dirs))
    t = trustpilot.extract(settings=t_settings(server, clock), **run_kwargs(dirs))
    assert sum(ld["rows"] for ld in g["loads"] + t["loads"]) > 0
    assert calls == [], f"an extract resolved dlt configuration: {calls}"
