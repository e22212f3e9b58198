"""The end-of-run summary: rows per source and entity, quarantine with reasons, headline KPIs, where BI reads."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

from .config import DBT_PROJECT_DIR, paths
from .settings import settings

log = logging.getLogger(__name__)


def headline_kpis(path: Path = DBT_PROJECT_DIR / "seeds" / "kpi_definitions.csv") -> list[str]:
    """The KPIs the summary shows: is_headline of the KPI definitions seed (published as kpi.kpi_dictionary), the
    one place each KPI is defined (issue 16 point 3), in the seed's order."""
    with path.open(newline="") as f:
        return [r["kpi"] for r in csv.DictReader(f) if r["is_headline"] == "true"]


HEADLINE_KPIS = headline_kpis()


def _query(db: Path, sql: str, params=None) -> list[tuple]:
    import duckdb

    from .loader import connect_build_db

    if not db.exists():
        return []
    try:  # the build database may be held by a concurrent run: wait like every task that opens it (issue 15)
        con, _ = connect_build_db(db, read_only=True)
    except duckdb.Error as exc:
        log.warning("summary could not open %s: %s", db.name, exc)
        return []
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.Error as exc:
        from extractors.common.redact import mask_values

        log.warning("summary query failed on %s: %s", db.name, mask_values(str(exc)))  # DuckDB quotes values
        return []
    finally:
        con.close()


def _query_pg(_db, sql: str, params=None) -> list[tuple]:
    """`_query` on the PostgreSQL build database ([] when it cannot be read; the summary never fails the run)."""
    try:
        from .publish_postgres import connect

        conn = connect()
    except Exception as exc:
        log.warning("summary could not connect to PostgreSQL: %s", type(exc).__name__)
        return []
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    except Exception as exc:
        log.warning("summary query failed on PostgreSQL: %s", type(exc).__name__)
        return []
    finally:
        conn.close()


def _gate_report(run_id: str, fname: str) -> dict | None:
    """The gate's report from the run directory (written pass or fail, so also when the task failed)."""
    f = paths().runs / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120] / fname
    if not f.exists():
        return None
    rep = json.loads(f.read_text())
    rep.pop("results", None)
    return rep


def _config_errors(run_id: str) -> list[dict]:
    """The configuration / authorisation errors this run's extract tasks recorded (cxw.tasks.extract): source,
    setting, endpoint, fix - names and a sentence, never a value."""
    d = paths().runs / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]
    out = []
    for f in sorted(d.glob("config_error_*.json")) if d.is_dir() else []:
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("could not read %s: %s", f.name, exc)
    return out


def _config_reason(errors: list[dict]) -> str:
    return "; ".join(
        f"{e.get('task') or 'extract_' + str(e.get('source'))} failed on its configuration (not retried): "
        f"setting {e.get('setting') or 'unknown'}"
        + (f", endpoint {e['endpoint']}" if e.get("endpoint") else "") + f" — fix: {e.get('fix')}"
        for e in errors) + "; nothing was published"


def _seconds(rep) -> float:
    return float((rep or {}).get("seconds") or 0)


def build_summary(run_id, extract_reports, load_report, dbt_report, validation, publication,
                  raw_validation=None, alerts=None, analyses=None) -> dict:
    p = paths()
    raw_validation = raw_validation or _gate_report(run_id, "validation_raw.json")
    validation = validation or _gate_report(run_id, "validation.json")
    failed = [g for g in (raw_validation, validation) if g and g.get("status") == "failed"]
    config_errors = _config_errors(run_id)
    if dbt_report and dbt_report.get("skipped") and not failed:
        # export_alerts runs on these runs too (alerts of the published generation not handed over yet)
        if alerts is None:
            status, reason = "alerts_not_exported", (
                f"nothing new to build, but export_alerts failed (see the Airflow log): "
                f"{dbt_report.get('pending_alerts')} alerts of the published generation "
                f"{dbt_report.get('generation_id')} are not handed over yet; the next run hands them over")
        else:
            status, reason = "unchanged", dbt_report.get("reason")
    elif publication is not None and publication.get("status") == "superseded":
        status, reason = "superseded", publication.get("reason")
    elif publication is None:
        status = "blocked"
        if config_errors:
            reason = _config_reason(config_errors)
        elif failed:
            g = failed[0]
            reason = (f"{g['gate']} gate failed: " + "; ".join(g.get("failed_checks", [])[:3])
                      + f" — Data Docs: {g.get('data_docs')}")
        else:
            reason = "a task before publish failed (see the Airflow log); nothing was published"
    elif alerts is None:
        status, reason = "alerts_not_exported", "published, but export_alerts failed (see the Airflow log)"
    else:
        status, reason = "published", None
    # Wall time of the run so far: from the first extraction of this run (load ids carry their UTC start time,
    # `<source>-yyyymmddThhmmss-…`) to now. Airflow's own start-up before the first task is not included.
    from datetime import datetime, timezone

    starts = []
    for rep in extract_reports or []:
        for ld in rep.get("loads", []):
            m = re.match(r"^[a-z0-9_]+-(\d{8}T\d{6})-", str(ld.get("load_id") or ""))
            if m:
                starts.append(datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc))
    wall_s = (datetime.now(timezone.utc) - min(starts)).total_seconds() if starts else None
    validation_s = _seconds(raw_validation) + _seconds(validation)
    timing = {"load": _seconds(load_report), "raw_gate": _seconds(raw_validation), "dbt": _seconds(dbt_report),
              "analyze": _seconds(analyses),
              "marts_gate": _seconds(validation), "publish": _seconds(publication), "alerts": _seconds(alerts),
              "validation_total": round(validation_s, 2),
              "run_wall": round(wall_s, 1) if wall_s else None,
              "validation_share": round(validation_s / wall_s, 3) if wall_s else None}
    extracted = []
    for rep in extract_reports or []:
        for ld in rep.get("loads", []):
            extracted.append({"source": rep.get("source"), "entity": ld.get("entity"), "rows": ld.get("rows"),
                              "duplicates_in_load": ld.get("duplicates_in_load"),
                              "dead_letters": ld.get("dead_letters"), "rows_per_s": ld.get("rows_per_s"),
                              "seconds": ld.get("seconds"), "source_seconds": rep.get("seconds")})
    # export days a source delivered again (GA4: the day's fingerprint changed): landed anew, replacing the earlier
    # delivery of the day in staging
    redelivered = [{"source": rep.get("source"), **d} for rep in extract_reports or []
                   for d in rep.get("redelivered_days") or []]
    # source tables whose columns changed since the previous run (new / dropped columns, named; no values)
    schema_drift = [{"source": rep.get("source"), **d} for rep in extract_reports or []
                    for d in rep.get("schema_drift") or []]
    on_pg = settings().dbt_target == "postgres"  # build and serving schemas of PostgreSQL (cxw/publish_postgres.py)
    query = _query_pg if on_pg else _query
    quarantine = [dict(zip(("source", "entity", "reason", "rows"), r)) for r in query(
        p.build_db, "select source, entity, reason, count(*) from staging.quarantine group by 1, 2, 3 "
        "order by 1, 2, 3")]
    ledger = query(
        p.build_db,
        "select count(*), count(*) filter (where extracted <> staged + quarantined + duplicates), "
        "sum(extracted), sum(staged), sum(quarantined), sum(duplicates) from staging.load_ledger")
    published = Path(publication["path"]) if publication and publication.get("path") else p.published_db
    if on_pg:
        from .publish_postgres import headline_kpis as pg_headline

        try:
            kpi_rows = pg_headline(HEADLINE_KPIS)
        except Exception as exc:  # the summary never fails the run
            log.warning("summary could not read the headline KPIs from PostgreSQL: %s", type(exc).__name__)
            kpi_rows = []
    else:
        kpi_rows = _query(
            published,
            "select kpi, value, n, period_start, period_end from kpi.kpi_period where grain = 'window' "
            "and channel = 'all' and segment = 'all' and kpi in (select unnest(?::varchar[]))", [HEADLINE_KPIS])
    kpis = [dict(zip(("kpi", "value", "n", "period_start", "period_end"), r)) for r in kpi_rows]
    kpis.sort(key=lambda k: HEADLINE_KPIS.index(k["kpi"]))
    return {
        "run_id": run_id,
        "status": status,
        "reason": reason,
        "timing": timing,
        "raw_validation": raw_validation,
        "config_errors": config_errors,
        "alerts": alerts,
        # the run's Data Docs index (it links the raw and the marts gate's sites)
        "data_docs": next((str(Path(g["data_docs"]).parent.parent / "index.html")
                           for g in (validation, raw_validation) if g and g.get("data_docs")), None),
        "extracted": extracted,
        "redelivered_days": redelivered,
        "schema_drift": schema_drift,
        "load": load_report,
        "dbt": dbt_report,
        # the analyses after dbt (cxw/analytics): rows written per analysis and table
        "analyses": analyses,
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


def _per_entity(extracted: list[dict]) -> list[dict]:
    """One line per source/entity: a GA4 run lands one load per export day."""
    out: dict[tuple, dict] = {}
    for e in extracted:
        agg = out.setdefault((e["source"], e["entity"]), {"source": e["source"], "entity": e["entity"], "rows": 0,
                                                          "loads": 0, "duplicates_in_load": 0, "dead_letters": 0,
                                                          "seconds": 0.0})
        agg["rows"] += e.get("rows") or 0
        agg["loads"] += 1
        agg["duplicates_in_load"] += e.get("duplicates_in_load") or 0
        agg["dead_letters"] += e.get("dead_letters") or 0
        agg["seconds"] = e.get("seconds") or 0.0  # shown only for single-load entities (GA4 loads overlap in time)
    return list(out.values())


def _per_source(extracted: list[dict]) -> dict[str, tuple[int, float | None]]:
    out: dict[str, tuple[int, float | None]] = {}
    for e in extracted:
        rows, secs = out.get(e["source"], (0, None))
        out[e["source"]] = (rows + (e.get("rows") or 0), e.get("source_seconds") or secs)
    return out


def render(s: dict) -> str:
    lines = ["", "=" * 78, f"CX warehouse run {s['run_id']}", "=" * 78, "Extracted (rows per source and entity):"]
    for e in _per_entity(s["extracted"]):
        extra = [f"{e['loads']} loads"] if e["loads"] > 1 else []
        if e["duplicates_in_load"]:
            extra.append(f"{_fmt(e['duplicates_in_load'])} dup in load")
        if e["dead_letters"]:
            extra.append(f"{e['dead_letters']} dead-lettered pages")
        if e["rows"] and e["seconds"] and e["loads"] == 1:
            extra.append(f"{_fmt(round(e['rows'] / e['seconds']))} rows/s")
        lines.append(f"  {e['source']:<15} {e['entity']:<22} {_fmt(e['rows']):>12}"
                     + (f"   ({', '.join(extra)})" if extra else ""))
    if s.get("redelivered_days"):
        shown = s["redelivered_days"][:12]
        days = ", ".join(f"{d['source']} {d['export_date']} ({_fmt(d.get('rows') or 0)} rows)" for d in shown)
        if len(s["redelivered_days"]) > len(shown):
            days += f" and {len(s['redelivered_days']) - len(shown)} more (summary.json lists them)"
        lines.append(f"Re-delivered export days (landed again, replacing the earlier delivery): {days}")
    for d in s.get("schema_drift") or []:
        lines.append(f"Schema drift: {d['source']} {d['entity']} (table {d['table']}): new columns "
                     f"{', '.join(d['new_columns']) or 'none'}; dropped columns {', '.join(d['dropped_columns']) or 'none'}"
                     + (f"; mapped but missing (landed NULL): {', '.join(d['mapped_columns_missing'])}"
                        if d.get("mapped_columns_missing") else ""))
    lines.append("Extraction wall time per source:")
    for src, (rows, secs) in _per_source(s["extracted"]).items():
        if secs:
            lines.append(f"  {src:<15} {_fmt(rows):>12} rows in {secs:7.1f} s = {_fmt(round(rows / secs)):>9} rows/s")
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
    ld = s.get("load") or {}
    if ld.get("tables") is not None:
        tabs = ld["tables"].values()
        appended = sum(t.get("rows") or 0 for t in tabs)
        lines.append(f"Loader: {len(ld['tables'])} raw tables changed ({sum(1 for t in tabs if str(t.get('mode', '')).startswith('rebuild'))} "
                     f"rebuilt), {_fmt(appended)} rows in, {_fmt(ld.get('new_content_rows', appended) or 0)} of them new "
                     f"content, {len(ld.get('skipped') or [])} unchanged; {ld.get('seconds')} s")
    if s.get("dbt"):
        d = s["dbt"]
        if d.get("skipped"):
            lines.append(f"dbt build: skipped — {d.get('reason')}")
        else:
            lines.append(f"dbt build: {d.get('results', {}).get('counts')} in {d.get('seconds')} s")
            sel = d.get("selection")
            if sel:  # which part of the project ran and why (cxw.dbt_select)
                lines.append(f"  {sel.get('mode')}: {sel.get('reason')} ({sel.get('nodes')} nodes)")
        if d.get("rebuilt_to"):
            lines.append(f"  this run's data interval is older than the published generation's: built to the "
                         f"newer end {d['rebuilt_to']} (BI never goes back in time)")
    an = s.get("analyses") or {}
    written = {k: v for k, v in an.items() if isinstance(v, dict) and k != "kept_from"}
    kept = an.get("kept_from")
    if kept:  # CXW_ANALYZE_EVERY=day: an earlier run's tables, never claimed fresher than they are
        lines.append(f"Analyses: kept from run {kept.get('run_id') or '?'} (as of {kept.get('as_of')}, computed "
                     f"{kept.get('computed_at')}); not recomputed — {an.get('decision')}"
                     + (f" ({an['seconds']} s)" if an.get("seconds") is not None else ""))
    elif written:
        lines.append("Analyses (rows written): " + "; ".join(
            f"{name} " + ", ".join(f"{t} {_fmt(n)}" for t, n in tables.items()) for name, tables in written.items())
            + (f" ({an['seconds']} s)" if an.get("seconds") is not None else ""))
    for label, key in (("Raw gate", "raw_validation"), ("Marts gate", "validation")):
        v = s.get(key)
        if v:
            lines.append(f"{label}: {v.get('status', 'passed')} — {v['expectations']} expectations on "
                         f"{len(v['checked_tables'])} tables, {v['errors']} errors, {v['warnings']} warnings "
                         f"({v['seconds']} s)")
            if v.get("loads_with_inherited_verdict"):
                lines.append(f"    {v['loads_with_inherited_verdict']} of {v.get('new_loads')} new loads repeat "
                             f"content the gate validated before: not read again, their earlier verdict kept")
            for chk in (v.get("failed_checks") or [])[:5] + (v.get("warned_checks") or [])[:5]:
                lines.append(f"    {chk}")
    t = s.get("timing") or {}
    if t.get("validation_total"):
        of = (f" of {t['run_wall']} s run wall time since the first extraction "
              f"({100 * (t['validation_share'] or 0):.1f}%)") if t.get("run_wall") else ""
        lines.append(f"Validation wall time: {t['validation_total']} s{of}; raw gate {t['raw_gate']} s, "
                     f"marts gate {t['marts_gate']} s")
    if s.get("data_docs"):
        lines.append(f"Data Docs: {s['data_docs']}")
    a = s.get("alerts")
    if a is not None:
        where = f" → {a['drop']}" if a.get("drop") else ""
        hook = f", {a['webhook_batches']} webhook batch(es)" if a.get("webhook_batches") else ""
        lines.append(f"Alerts exported: {a.get('new_alerts', 0)} new ({a.get('status')}){hook}{where}")
    if s["headline_kpis"]:
        k0 = s["headline_kpis"][0]
        lines.append(f"Headline KPIs ({k0['period_start']} – {k0['period_end']}):")
        for k in s["headline_kpis"]:
            lines.append(f"  {k['kpi']:<24} {_fmt(k['value']):>14}   n = {_fmt(k['n'])}")
    pub = s.get("publication") or {}
    if s.get("status") == "unchanged":
        lines.append(f"Nothing new to publish: BI keeps reading {s['published_path']}")
        lines.append("  (rows appended since the last build are exact copies of rows already built; the ledger "
                     "counts them as duplicates at the next build)")
    elif s.get("status") == "superseded":
        lines.append(f"NOT PUBLISHED (superseded): {s.get('reason')}")
        lines.append(f"BI keeps the newer generation {pub.get('generation_id')} (data to "
                     f"{pub.get('data_interval_end')}): {s['published_path']}")
    elif s.get("status") == "alerts_not_exported" and s.get("dbt", {}).get("skipped"):
        lines.append(f"ALERTS NOT HANDED OVER: {s.get('reason')}")
    elif s.get("status") == "blocked":
        lines.append(f"NOT PUBLISHED: {s.get('reason')}")
        lines.append(f"BI keeps the previous generation: {s['published_path']}")
    else:
        lines.append(f"Published: {s['published_path']}  (generation {pub.get('generation_id')}, "
                     f"{pub.get('status')})")
        docs = pub.get("docs") or {}
        if docs.get("path"):
            lines.append(f"dbt docs of the generation: {docs['path']}  (./cx docs --serve)")
        elif docs.get("status") == "failed":
            lines.append(f"dbt docs NOT generated (the publication stands): {docs.get('error', '')[:300]}")
    lines.append("Query it read-only, e.g.:")
    lines.append("  " + s["example_query"])
    lines.append("=" * 78)
    return "\n".join(lines)
