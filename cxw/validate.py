"""Audit the candidate marts in the build database with Great Expectations before anything is published.

GE's SQL engine fails on DuckDB (see docs/DECISIONLOG.md), so each table is read read-only through Arrow into a
pandas DataFrame and validated with GE's pandas engine. Results are written to `runs/<run_id>/validation.json`
with counts only: GE's sample lists of unexpected values are dropped so no value (possibly personal data) is kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from .config import paths
from .publish import PUBLISHED_SCHEMAS

log = logging.getLogger(__name__)


class ValidationFailed(RuntimeError):
    pass


def _safe_run_id(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def _gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    return gx, ctx


def validate(run_id: str, build_db: Path | None = None, out_dir: Path | None = None) -> dict:
    import duckdb

    from expectations.suites import FREE_TEXT_COLUMNS, SUITES, pii_checks

    p = paths()
    build_db = build_db or p.build_db
    out_dir = out_dir or (p.runs / _safe_run_id(run_id))
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gx, ctx = _gx_context()
    ds = ctx.data_sources.add_pandas("cxw_build")

    con = duckdb.connect(str(build_db), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in (select unnest(?::varchar[])) order by 1, 2", [list(PUBLISHED_SCHEMAS)]
        ).fetchall()
        results: list[dict] = []
        for schema, table in tables:
            name = f"{schema}.{table}"
            df = con.sql(f'select * from "{schema}"."{table}"').to_arrow_table().to_pandas()
            string_cols = [c for c, t in zip(df.columns, df.dtypes) if str(t) in ("object", "string", "str")]
            checks = list(SUITES[name](list(df.columns))) if name in SUITES else []
            for chk in pii_checks(string_cols):
                if chk.kwargs["column"] in FREE_TEXT_COLUMNS:
                    chk = type(chk)(chk.expectation, chk.kwargs, "warn", chk.why + " (free text)")
                checks.append(chk)
            if not checks:
                continue
            suite = ctx.suites.add(gx.ExpectationSuite(name=name))
            for chk in checks:
                cls = getattr(gx.expectations, chk.expectation)
                suite.add_expectation(cls(**chk.kwargs, meta={"severity": chk.severity, "why": chk.why}))
            asset = ds.add_dataframe_asset(name=name)
            vd = gx.ValidationDefinition(name=f"{name}:{run_id}", data=asset.add_batch_definition_whole_dataframe("all"),
                                         suite=suite)
            res = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
            for er in res.results:
                cfg = er.expectation_config
                results.append({
                    "suite": name, "table": name, "expectation": cfg.type,
                    "column": cfg.kwargs.get("column"), "row_condition": _condition(cfg.kwargs.get("row_condition")),
                    "severity": cfg.meta.get("severity", "error"), "why": cfg.meta.get("why", ""),
                    "success": bool(er.success), "rows": int(len(df)),
                    "unexpected_count": (er.result or {}).get("unexpected_count"),
                    "observed_value": _scalar((er.result or {}).get("observed_value")),
                    "exception": (er.exception_info or {}).get("exception_message") if not er.success else None,
                })
    finally:
        con.close()

    errors = [r for r in results if not r["success"] and r["severity"] == "error"]
    warnings = [r for r in results if not r["success"] and r["severity"] != "error"]
    report = {"run_id": run_id, "checked_tables": sorted({r["table"] for r in results}),
              "expectations": len(results), "errors": len(errors), "warnings": len(warnings),
              "seconds": round(time.perf_counter() - t0, 2), "results_path": str(out_dir / "validation.json")}
    (out_dir / "validation.json").write_text(json.dumps({**report, "results": results}, indent=1, default=str))
    for w in warnings:
        log.warning("validation warning: %s", _describe(w))
    if errors:
        raise ValidationFailed(
            f"{len(errors)} error-severity check(s) failed; publish blocked. Results: {out_dir / 'validation.json'}\n  "
            + "\n  ".join(_describe(e) for e in errors[:20]))
    return report


def _condition(c):
    if c is None or isinstance(c, str):
        return c
    if isinstance(c, dict):
        return c.get("pass_through_filter") or str(c)
    return getattr(c, "pass_through_filter", None) or str(c)


def _scalar(v):
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)[:200]


def _describe(r: dict) -> str:
    where = f" column {r['column']}" if r.get("column") else ""
    cond = f" where {r['row_condition']}" if r.get("row_condition") else ""
    count = r.get("unexpected_count")
    what = f"{count} offending row(s) of {r['rows']}" if count is not None else f"observed {r.get('observed_value')}"
    return (f"suite {r['suite']}: {r['expectation']} on table {r['table']}{where}{cond} failed — {what}"
            + (f" ({r['why']})" if r.get("why") else ""))
