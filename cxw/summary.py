"""The end-of-run summary: rows per source and entity, quarantine with reasons, headline KPIs, where BI reads."""

from __future__ import annotations

import logging
from pathlib import Path

from .config import paths

log = logging.getLogger(__name__)

HEADLINE_KPIS = ["nps", "csat_pct", "ces_mean", "review_rating_avg", "review_reply_rate", "sessions",
                 "engagement_rate", "conversion_rate", "orders", "net_revenue", "aov", "on_time_delivery_rate",
                 "email_open_rate"]


def _query(db: Path, sql: str, params=None) -> list[tuple]:
    import duckdb

    if not db.exists():
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.Error as exc:
        log.warning("summary query failed on %s: %s", db.name, exc)
        return []
    finally:
        con.close()


def build_summary(run_id, extract_reports, load_report, dbt_report, validation, publication) -> dict:
    p = paths()
    extracted = []
    for rep in extract_reports or []:
        for ld in rep.get("loads", []):
            extracted.append({"source": rep.get("source"), "entity": ld.get("entity"), "rows": ld.get("rows"),
                              "duplicates_in_load": ld.get("duplicates_in_load"),
                              "dead_letters": ld.get("dead_letters"), "rows_per_s": ld.get("rows_per_s"),
                              "seconds": ld.get("seconds")})
    quarantine = [dict(zip(("source", "entity", "reason", "rows"), r)) for r in _query(
        p.build_db, "select source, entity, reason, count(*) from staging.quarantine group by all order by all")]
    ledger = _query(
        p.build_db,
        "select count(*), count(*) filter (where extracted <> staged + quarantined + duplicates), "
        "sum(extracted), sum(staged), sum(quarantined), sum(duplicates) from staging.load_ledger")
    published = Path(publication["path"]) if publication and publication.get("path") else p.published_db
    kpis = [dict(zip(("kpi", "value", "n", "period_start", "period_end"), r)) for r in _query(
        published,
        "select kpi, value, n, period_start, period_end from kpi.kpi_period where grain = 'window' "
        "and channel = 'all' and segment = 'all' and kpi in (select unnest(?::varchar[]))", [HEADLINE_KPIS])]
    kpis.sort(key=lambda k: HEADLINE_KPIS.index(k["kpi"]))
    return {
        "run_id": run_id,
        "extracted": extracted,
        "load": load_report,
        "dbt": dbt_report,
        "quarantine": quarantine,
        "ledger": dict(zip(("loads", "unbalanced", "extracted", "staged", "quarantined", "duplicates"),
                           ledger[0])) if ledger else None,
        "validation": validation,
        "publication": publication,
        "headline_kpis": kpis,
        "published_path": str(published),
        "example_query": (
            f"python -c \"import duckdb; con = duckdb.connect('{published}', read_only=True, "
            f"config={{'enable_external_access': False}}); print(con.sql(\\\"select kpi, value, n from "
            f"kpi.kpi_period where grain = 'window' order by kpi\\\"))\""),
    }


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        v = int(v)
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render(s: dict) -> str:
    lines = ["", "=" * 78, f"CX warehouse run {s['run_id']}", "=" * 78, "Extracted (rows per source and entity):"]
    for e in s["extracted"]:
        extra = []
        if e.get("duplicates_in_load"):
            extra.append(f"{e['duplicates_in_load']} dup in load")
        if e.get("dead_letters"):
            extra.append(f"{e['dead_letters']} dead-lettered pages")
        if e.get("rows_per_s"):
            extra.append(f"{_fmt(e['rows_per_s'])} rows/s")
        lines.append(f"  {e['source']:<15} {e['entity']:<22} {_fmt(e['rows'] or 0):>12}"
                     + (f"   ({', '.join(extra)})" if extra else ""))
    if s.get("ledger"):
        lg = s["ledger"]
        lines.append(f"Ledger: {lg['loads']} loads; extracted {_fmt(lg['extracted'] or 0)} = staged "
                     f"{_fmt(lg['staged'] or 0)} + quarantined {_fmt(lg['quarantined'] or 0)} + duplicates "
                     f"{_fmt(lg['duplicates'] or 0)}; unbalanced loads: {lg['unbalanced']}")
    lines.append("Quarantined rows (source / entity / reason):")
    if not s["quarantine"]:
        lines.append("  none")
    for q in s["quarantine"]:
        lines.append(f"  {q['source']:<15} {q['entity']:<22} {q['reason']:<24} {_fmt(q['rows']):>8}")
    if s.get("dbt"):
        d = s["dbt"]
        lines.append(f"dbt build: {d.get('results', {}).get('counts')} in {d.get('seconds')} s")
    if s.get("validation"):
        v = s["validation"]
        lines.append(f"Validation: {v['expectations']} expectations on {len(v['checked_tables'])} tables, "
                     f"{v['errors']} errors, {v['warnings']} warnings ({v['seconds']} s) → {v['results_path']}")
    if s["headline_kpis"]:
        k0 = s["headline_kpis"][0]
        lines.append(f"Headline KPIs ({k0['period_start']} – {k0['period_end']}):")
        for k in s["headline_kpis"]:
            lines.append(f"  {k['kpi']:<24} {_fmt(k['value']):>14}   n = {_fmt(k['n'])}")
    pub = s.get("publication") or {}
    lines.append(f"Published: {s['published_path']}  (generation {pub.get('generation_id')}, {pub.get('status')})")
    lines.append("Query it read-only, e.g.:")
    lines.append("  " + s["example_query"])
    lines.append("=" * 78)
    return "\n".join(lines)
