"""Backfill equivalence: 30 daily windows in mode="window", run one after the other, land the same distinct
records (id + version) as one incremental run over the same 30 days (HTTP sources against the DemoServer, Odoo
on the demo SQLite)."""
from __future__ import annotations

import glob
import json
import os
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq

from conftest import http_cfg, run_kwargs
from extractors import google_reviews, hubspot, odoo, trustpilot
from extractors.common.settings import parse_utc

UTC = timezone.utc
D0 = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 30
D1 = D0 + timedelta(days=DAYS)


def rows_of(raw, source, entity):
    out = []
    for f in glob.glob(os.path.join(str(raw), source, entity, "*", "*.parquet")):
        out.extend(pq.read_table(f).to_pylist())
    return out


def in_window(value) -> bool:
    if value is None:
        return False
    if isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            dt = parse_utc(value)
        except ValueError:
            return False
    return D0 <= dt < D1


# (source, entity) -> (id key, version key): what a distinct record is
HUBSPOT_KEYS = {"contacts": "properties__lastmodifieddate", "companies": "properties__hs_lastmodifieddate",
                "deals": "properties__hs_lastmodifieddate", "tickets": "properties__hs_lastmodifieddate",
                "feedback_submissions": "properties__hs_lastmodifieddate", "email_events": "created"}


def distinct(raw, source, entity, id_key, version_key, window_only=True):
    return {(r[id_key], str(r[version_key])) for r in rows_of(raw, source, entity)
            if not window_only or in_window(r[version_key])}


def test_thirty_daily_windows_equal_one_incremental_run(server, clock, dirs, tmp_path, demo_dir, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # 600+ loads: durability is not what is tested here
    m = server.manifest
    odoo_entities = [e for e, spec in odoo.mapping.load_mapping(odoo.settings.DEFAULT_MAPPING).items() if spec.cursor]
    mk = {
        "hubspot": lambda: hubspot.HubspotSettings(token=m["hubspot"]["token"], base_url=server.base_url,
                                                   history_start=D0, http=http_cfg(clock)),
        "google_reviews": lambda: google_reviews.GoogleReviewsSettings(
            token=m["google"]["token"], account_id=m["google"]["account_id"],
            location_ids=m["google"]["location_ids"], base_url=server.base_url, history_start=D0,
            http=http_cfg(clock)),
        "trustpilot": lambda: trustpilot.TrustpilotSettings(
            api_key=m["trustpilot"]["api_key"], api_secret=m["trustpilot"]["api_secret"],
            business_unit_ids=m["trustpilot"]["business_unit_ids"], base_url=server.base_url, history_start=D0,
            http=http_cfg(clock)),
        # full-snapshot tables (no cursor) land the whole table in every mode: only cursor tables are compared
        "odoo": lambda: odoo.OdooSettings(url=f"sqlite:///{demo_dir / 'odoo' / 'odoo.sqlite'}", history_start=D0,
                                          entities=odoo_entities, id_snapshots="never"),
    }
    mods = {"hubspot": hubspot, "google_reviews": google_reviews, "trustpilot": trustpilot, "odoo": odoo}
    inc = {k: tmp_path / "inc" / k for k in dirs}
    win = {k: tmp_path / "win" / k for k in dirs}
    for name, mod in mods.items():
        # incremental: a first run up to D0 sets the cursors, then ONE incremental run covers [D0, D1)
        mod.extract(settings=mk[name](), **run_kwargs(inc, end=D0))
        mod.extract(settings=mk[name](), **run_kwargs(inc, end=D1))
        for i in range(DAYS):
            mod.extract(settings=mk[name](),
                        **run_kwargs(win, D0 + timedelta(days=i), D0 + timedelta(days=i + 1), mode="window"))
    assert not os.path.exists(win["state"] / "hubspot.json") or all(
        v.get("cursor") is None for v in json.loads((win["state"] / "hubspot.json").read_text())["entities"].values())

    checked = {}
    for entity, version in HUBSPOT_KEYS.items():
        a = distinct(inc["raw"], "hubspot", entity, "id", version)
        b = distinct(win["raw"], "hubspot", entity, "id", version)
        assert a == b, entity
        checked[f"hubspot.{entity}"] = len(a)
    # associations: those of the records modified in [D0, D1), seen from both sides
    recs = {(e, i) for e, k in HUBSPOT_KEYS.items() if e != "email_events"
            for i, _v in distinct(inc["raw"], "hubspot", e, "id", k)}
    assoc = lambda raw: {(r["from_type"], r["from_id"], r["to_type"], r["to_id"], r["type_id"])  # noqa: E731
                         for r in rows_of(raw, "hubspot", "associations") if (r["from_type"], r["from_id"]) in recs}
    assert assoc(inc["raw"]) == assoc(win["raw"])
    checked["hubspot.associations"] = len(assoc(inc["raw"]))
    g = lambda raw: distinct(raw, "google_reviews", "reviews", "name", "updateTime")  # noqa: E731
    t = lambda raw: distinct(raw, "trustpilot", "reviews", "id", "createdAt")  # noqa: E731
    assert g(inc["raw"]) == g(win["raw"]) and t(inc["raw"]) == t(win["raw"])
    checked["google_reviews"], checked["trustpilot"] = len(g(inc["raw"])), len(t(inc["raw"]))
    for entity in odoo_entities:
        cursor = odoo.mapping.load_mapping(odoo.settings.DEFAULT_MAPPING)[entity].cursor
        a = distinct(inc["raw"], "odoo", entity, "id", cursor)
        b = distinct(win["raw"], "odoo", entity, "id", cursor)
        assert a == b, entity
        checked[f"odoo.{entity}"] = len(a)
    # the comparison is not vacuous
    for key in ("hubspot.contacts", "hubspot.email_events", "hubspot.associations", "google_reviews", "trustpilot",
                "odoo.sale_order", "odoo.sale_order_line"):
        assert checked[key] > 0, (key, checked)
