"""Orchestrates one generation: truth → every system's files → answer key → manifest."""
from __future__ import annotations

import datetime as dt
import json
import os

from . import answer_key, crm, erp
from .config import DEFAULT_DAYS, DEFAULT_START, SCALES, scaled_dirt
from .ga4 import generate_ga4
from .util import US_PER_DAY, parse_as_of, us_to_dt, write_jsonl
from .world import build_world


def _iso(us: int) -> str:
    return us_to_dt(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(out_dir, scale: str = "S", seed: int = 42, as_of: str | None = None, *,
             start: str | dt.date | None = None, days: int = DEFAULT_DAYS, dirt: dict | None = None,
             dirt_scale: float = 1.0, workers: int | None = None, inject_fault: str | None = None,
             ga4_gzip: bool | None = None, ga4_days: int | None = None, erp_schema: str = "odoo17",
             ga4_intraday_delay_h: float | None = None) -> dict:
    """Generate the Hidden Cafe demo company into `out_dir` and return the manifest.

    Same (seed, scale, as_of, start, days, dirt) → byte-identical files.
    `as_of` (ISO date/datetime, UTC; default: the window end) fixes what every system shows.
    `inject_fault` (see demo_company/faults.py) breaks the written source files afterwards, e.g. "gate".
    `ga4_gzip` writes the GA4 export gzip-compressed (`events_YYYYMMDD.json.gz`); default: at scale L only, whose
    uncompressed export (≈45 GB) would not fit twice on a bench machine's disk.
    `ga4_days` limits the GA4 export to the last N days of the window (the BigQuery export was linked years after
    the ERP went live): a long history (e.g. from 2018) at a scale keeps its GA4 volume per day and so its GA4
    files bounded; the ERP, CRM and review history still spans the whole window. Default: the whole window.
    `ga4_intraday_delay_h`: GA4 writes each day's daily table this many hours after the day ended and until then
    streams it into `events_intraday_YYYYMMDD` (demo_company/ga4.py); default None: every day as a daily table.
    `erp_schema`: "odoo17" (default) writes the ERP as Odoo 17 tables to `odoo/odoo.sqlite`; "webshop" writes the
    same records in a webshop's tables (other names, states, amounts in cents: demo_company/erp_webshop.py) to
    `odoo/webshop.sqlite`, read with extractors/odoo/mappings/webshop.yml. The answer key is the same.
    """
    if erp_schema not in erp.ERP_SCHEMAS:
        raise ValueError(f"erp_schema must be one of {erp.ERP_SCHEMAS}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}")
    start_date = dt.date.fromisoformat(start) if isinstance(start, str) else (start or DEFAULT_START)
    dirt_rates = scaled_dirt(dirt, dirt_scale)
    world = build_world(int(seed), SCALES[scale], start_date, int(days), dirt_rates)
    as_of_us = parse_as_of(as_of) if as_of else world.end_us
    out_dir = os.fspath(out_dir)
    for sub in ("odoo", "api/hubspot", "api/google_reviews", "api/trustpilot", "ga4"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    for name in os.listdir(os.path.join(out_dir, "ga4")):       # a re-run must not keep stale days
        if name.startswith("events_") or name.startswith(".spill_"):
            os.remove(os.path.join(out_dir, "ga4", name))
    counts: dict = {}

    rows = erp.build_rows(world, as_of_us)
    erp_file = f"odoo/{erp.ERP_FILES[erp_schema]}"
    for name in erp.ERP_FILES.values():        # a re-generation in another schema must not leave the other file
        if os.path.exists(os.path.join(out_dir, "odoo", name)):
            os.remove(os.path.join(out_dir, "odoo", name))
    counts[erp_file] = erp.write_sqlite(os.path.join(out_dir, erp_file), rows, erp.text_columns(world, as_of_us),
                                        erp_schema=erp_schema)

    hs = os.path.join(out_dir, "api", "hubspot")
    hub = {
        "contacts": crm.contact_rows(world, as_of_us),
        "companies": crm.companies(world, as_of_us),
        "deals": crm.deals(world, as_of_us),
        "tickets": crm.tickets(world, as_of_us),
        "feedback_submissions": crm.feedback(world, as_of_us),
        "associations": crm.associations(world, as_of_us),
    }
    for name, recs in hub.items():
        counts[f"api/hubspot/{name}.jsonl"] = write_jsonl(os.path.join(hs, f"{name}.jsonl"), recs)
    counts["api/hubspot/email_events.jsonl"] = write_jsonl(os.path.join(hs, "email_events.jsonl"),
                                                          crm.email_events(world, as_of_us))
    g = crm.google_reviews(world, as_of_us)
    counts["api/google_reviews/reviews.jsonl"] = write_jsonl(os.path.join(out_dir, "api", "google_reviews", "reviews.jsonl"), g)
    t = crm.trustpilot_reviews(world, as_of_us)
    counts["api/trustpilot/reviews.jsonl"] = write_jsonl(os.path.join(out_dir, "api", "trustpilot", "reviews.jsonl"), t)

    if ga4_days is not None and int(ga4_days) < 1:
        raise ValueError("ga4_days must be at least 1")
    ga4_from_us = world.start_us if ga4_days is None else max(world.start_us,
                                                              world.end_us - int(ga4_days) * US_PER_DAY)
    ga = generate_ga4(world, os.path.join(out_dir, "ga4"), as_of_us, workers=workers,
                      compress=(scale == "L") if ga4_gzip is None else bool(ga4_gzip), first_day_us=ga4_from_us,
                      intraday_delay_h=ga4_intraday_delay_h)
    counts["ga4"] = ga["files"]

    key = answer_key.compute(world, as_of_us, ga)
    expected = key["expected"]
    for table, n in counts[erp_file].items():    # per raw entity (an Odoo table name) in either schema
        expected[f"odoo.{table}"] = {"records": n, "quarantined": key["odoo_quarantined"].get(table, {}),
                                     "duplicates": 0}
    for name in ("contacts", "companies", "deals", "tickets", "associations"):
        expected[f"hubspot.{name}"] = {"records": counts[f"api/hubspot/{name}.jsonl"],
                                       "quarantined": key["hubspot_quarantined"].get(name, {}), "duplicates": 0}
    window = {"start": _iso(world.start_us)[:10], "end": _iso(world.end_us)[:10]}
    ak = {"window": window, "as_of": _iso(as_of_us), "kpis": key["rows"],
          "expected": dict(sorted(expected.items())), "identity": key["identity"]}
    with open(os.path.join(out_dir, "answer_key.json"), "w", encoding="utf-8") as fh:
        json.dump(ak, fh, ensure_ascii=False, indent=1)
        fh.write("\n")

    manifest = {
        "company": "Hidden Cafe", "domain": "hidden-cafe.example.com",
        "seed": int(seed), "scale": scale, "window": window, "as_of": _iso(as_of_us),
        "days": int(days), "ga4_export_start": _iso(ga4_from_us)[:10], "dirt": dirt_rates,
        "counts": counts,
        "erp": {"schema": erp_schema, "file": erp_file},
        "hubspot": {"portal_id": world.ids["hubspot"]["portal_id"], "token": world.ids["hubspot"]["token"]},
        "google": world.ids["google"],
        "trustpilot": world.ids["trustpilot"],
        "ga4": world.ids["ga4"],
        # old GA4 export days re-exported later with missing sessions: {YYYYMMDD: re-export instant}
        "ga4_redeliveries": ga["redeliveries"],
        # export days first delivered as an empty file and re-exported later: {YYYYMMDD: {empty_export, reexport}};
        # ga4_empty_at_as_of: those whose file is empty at as_of (their rows arrive with the re-export)
        "ga4_empty_first_deliveries": ga["empty_first_deliveries"],
        "ga4_empty_at_as_of": ga["empty_at_as_of"],
        # days whose daily table had not landed at as_of: written as events_intraday_YYYYMMDD (ga4_intraday_delay_h)
        "ga4_intraday_at_as_of": ga["intraday_at_as_of"],
    }
    if inject_fault:  # demo of the quality gate: a fault the source itself can produce (demo_company/faults.py)
        from .faults import apply_fault
        manifest["fault"] = apply_fault(out_dir, inject_fault)
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    return manifest


__all__ = ["generate"]
