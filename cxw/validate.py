"""The quality gate: Great Expectations audits of (a) the newly landed raw batches before dbt and (b) the candidate
marts in the build database before anything is published.

GE's SQL engine fails on DuckDB (see docs/DECISIONLOG.md), so data reaches GE's pandas engine through Arrow: raw
loads straight from their Parquet files (pyarrow), marts from the build database opened read-only. Full-table
integrity stays in dbt tests. Severities: `error` blocks publish (the task fails, naming suite, expectation, table
and the count of offending rows), `warn` publishes and reports.

Every run writes, pass or fail, under `runs/<run_id>/`:
    data_docs/index.html      links to each gate's GE Data Docs: data_docs/raw/, data_docs/marts/
    validation_raw.json       the raw gate's results, validation.json the marts gate's results
GE results keep counts only: `partial_unexpected_count = 0` drops the sample lists of unexpected values, so no value
(possibly personal data) is written to results, Data Docs or messages.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import statistics
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .config import paths
from .publish import PUBLISHED_SCHEMAS
from .settings import settings

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}
DOCS_SITE = "cxw_run"


class ValidationFailed(RuntimeError):
    pass


def _safe_run_id(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def run_dir(run_id: str) -> Path:
    return paths().runs / _safe_run_id(run_id)


def _float(value: str | None, default: float) -> float:
    """A gate threshold from the settings (`cxw.settings`): its default when unset; a malformed value raises."""
    return float(default if value is None else value)


class Gate:
    """GE for one gate of one run: an in-memory (ephemeral) context — a file-backed one rewrites its YAML config
    for every added asset, which made each validation ~5× slower — whose Data Docs site is a directory of the run:
    `<run dir>/data_docs/<kind>/` (raw, marts), linked from `<run dir>/data_docs/index.html`."""

    def __init__(self, out_dir: Path, kind: str):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.execution_engine import pandas_execution_engine

        # GE hashes every dataframe under 1 GB (pd.util.hash_pandas_object) only to put a `pandas_data_fingerprint`
        # batch marker in the Data Docs: 8 of the marts gate's 22 s at M. Each result already names its table, run and
        # row count; the published tables' own fingerprints are taken by publish.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.gx = gx
        self.out_dir = out_dir
        self.kind = kind
        self.docs_dir = out_dir / "data_docs" / kind
        out_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        ctx = gx.get_context(mode="ephemeral")
        try:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:  # progress bars are cosmetic
            pass
        ctx.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)}})
        self.ctx = ctx
        self.ds = ctx.data_sources.add_pandas("cxw")

    def run(self, suite_name: str, table: str, df, checks, run_id: str, extra: dict | None = None) -> list[dict]:
        gx = self.gx
        expectations = []
        for chk in checks:
            cls = getattr(gx.expectations, chk.expectation)
            expectations.append(cls(**chk.kwargs, meta={"severity": chk.severity, "why": chk.why}))
        suite = self.ctx.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
        bd = self.ds.add_dataframe_asset(name=suite_name).add_batch_definition_whole_dataframe("whole")
        vd = self.ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}:{_safe_run_id(run_id)}", data=bd, suite=suite))
        res = vd.run(batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT)
        out = []
        for er in res.results:
            cfg = er.expectation_config
            r = er.result or {}
            out.append({
                "suite": suite_name, "table": table, "expectation": cfg.type,
                "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                "row_condition": _condition(cfg.kwargs.get("row_condition")),
                "severity": cfg.meta.get("severity", "error"), "why": cfg.meta.get("why", ""),
                "success": bool(er.success), "rows": int(len(df)),
                "unexpected_count": r.get("unexpected_count"),
                "observed_value": _safe_observed(cfg.type, cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                                                 r.get("observed_value")),
                "expected": {k: _scalar(v) for k, v in cfg.kwargs.items()
                             if k in ("min_value", "max_value", "mostly", "type_")},
                "exception": _exception_text(er.exception_info) if not er.success else None,
                **(extra or {}),
            })
        return out

    def build_docs(self) -> Path:
        shutil.rmtree(self.docs_dir, ignore_errors=True)  # a retried task re-renders its gate from scratch
        _mask_stored_results(self.ctx.validation_results_store)
        self.ctx.build_data_docs(site_names=[DOCS_SITE])
        top = self.out_dir / "data_docs" / "index.html"
        gates = [d.name for d in sorted(top.parent.iterdir()) if (d / "index.html").exists()]
        links = "".join(f'<li><a href="{g}/index.html">{g} gate</a></li>' for g in gates)
        tmp = top.with_name(".index.html.tmp")
        tmp.write_text(f"<!doctype html><meta charset=utf-8><title>CX warehouse gates — {self.out_dir.name}</title>"
                       f"<h1>Great Expectations Data Docs — run {self.out_dir.name}</h1><ul>{links}</ul>")
        os.replace(tmp, top)
        return self.docs_dir / "index.html"


def _finish(kind: str, run_id: str, results: list[dict], out_dir: Path, gate: Gate | None, t0: float,
            extra: dict | None = None, hint: str | None = None, file_only: dict | None = None) -> dict:
    docs = None
    if gate is not None:
        try:
            docs = str(gate.build_docs())
        except Exception as exc:  # docs are a report; a rendering problem must not hide the verdict
            log.warning("could not build Data Docs: %s", exc)
    errors = [r for r in results if not r["success"] and r["severity"] == "error"]
    warnings = [r for r in results if not r["success"] and r["severity"] != "error"]
    fname = "validation.json" if kind == "marts" else "validation_raw.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"run_id": run_id, "gate": kind, "status": "failed" if errors else "passed",
              "checked_tables": sorted({r["table"] for r in results}), "expectations": len(results),
              "errors": len(errors), "warnings": len(warnings), "seconds": round(time.perf_counter() - t0, 2),
              "results_path": str(out_dir / fname), "data_docs": docs,
              "failed_checks": [_describe(e) for e in errors[:50]],
              "warned_checks": [_describe(w) for w in warnings[:50]], **(extra or {})}
    (out_dir / fname).write_text(json.dumps({**report, **(file_only or {}), "results": results}, indent=1,
                                            default=str))
    for w in warnings:
        log.warning("validation warning: %s", _describe(w))
    if errors:
        raise ValidationFailed(
            f"{kind} gate: {len(errors)} error-severity check(s) failed; publish blocked, the published "
            f"generation is unchanged.\n  " + "\n  ".join(_describe(e) for e in errors[:20])
            + f"\nData Docs: {docs}\nResults: {out_dir / fname}" + (f"\n{hint}" if hint else ""))
    return report


# ---------------------------------------------------------------------------------------------------------- marts

def _published_row_counts(published_db: Path) -> dict[str, int]:
    import duckdb

    if not published_db.exists():
        return {}
    con = duckdb.connect(str(published_db), read_only=True, config={"enable_external_access": False})
    try:
        return {t: int(n) for t, n in con.execute("select table_name, row_count from publication_tables").fetchall()}
    except duckdb.Error:
        return {}
    finally:
        con.close()


def validate(run_id: str, data_interval_start=None, data_interval_end=None, build_db: Path | None = None,
             out_dir: Path | None = None, published_db: Path | None = None) -> dict:
    """Audit the candidate marts (schemas core, kpi, cx) of the build database. Raises ValidationFailed."""
    import duckdb

    from expectations.suites import (FREE_TEXT_COLUMNS, MAX_ROW_DROP_VS_PUBLISHED, ROW_COUNT_UNCHECKED, SUITES,
                                     Check, pii_checks)

    p = paths()
    build_db = build_db or p.build_db
    out_dir = out_dir or run_dir(run_id)
    published_db = published_db or p.published_db
    t0 = time.perf_counter()
    gate = Gate(out_dir, "marts")
    previous = _published_row_counts(published_db)
    max_drop = _float(settings().gate_max_row_drop, MAX_ROW_DROP_VS_PUBLISHED)
    end = _as_date(data_interval_end)
    read_s = 0.0

    from .loader import connect_build_db

    con, _ = connect_build_db(build_db, read_only=True)  # waits while another run writes it
    try:
        from .buildstate import read_build_info

        # the interval the candidate covers: the build's (dbt_build may rebuild to a newer published interval)
        built = read_build_info(con)
        if built and built.get("data_interval_end"):
            end = _as_date(built["data_interval_end"])
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in (select unnest(?::varchar[])) order by 1, 2", [list(PUBLISHED_SCHEMAS)]
        ).fetchall()
        results: list[dict] = []
        for schema, table in tables:
            name = f"{schema}.{table}"
            t1 = time.perf_counter()
            df = con.sql(f'select * from "{schema}"."{table}"').to_arrow_table().to_pandas()
            read_s += time.perf_counter() - t1
            if name == "kpi.kpi_daily" and end is not None and "kpi_date" in df.columns and len(df):
                import pandas as pd

                df["_days_before_interval_end"] = (pd.Timestamp(end) - pd.to_datetime(df["kpi_date"])).dt.days
            string_cols = [c for c, in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "and data_type = 'VARCHAR' order by ordinal_position", [schema, table]).fetchall()]
            checks = list(SUITES[name](list(df.columns))) if name in SUITES else []
            for chk in pii_checks(string_cols):
                if chk.kwargs["column"] in FREE_TEXT_COLUMNS:
                    chk = Check(chk.expectation, chk.kwargs, "warn", chk.why + " (free text)")
                checks.append(chk)
            if previous.get(name) and name not in ROW_COUNT_UNCHECKED:
                before = previous[name]
                checks.append(Check("ExpectTableRowCountToBeBetween",
                                    {"min_value": math.ceil(before * (1 - max_drop))},
                                    why=f"row count dropped more than {max_drop:.0%} vs the published generation "
                                        f"({before} rows)"))
            if not checks:
                continue
            results += gate.run(name, name, df, checks, run_id)
    finally:
        con.close()
    return _finish("marts", run_id, results, out_dir, gate, t0,
                   {"read_seconds": round(read_s, 2), "compared_with_published": bool(previous)})


# ------------------------------------------------------------------------------------------------------------ raw

def _ledger_path() -> Path:
    return paths().state / "raw_gate.json"


def _read_ledger() -> dict:
    f = _ledger_path()
    return json.loads(f.read_text()) if f.exists() else {"passed": {}}


def _write_ledger(ledger: dict) -> None:
    f = _ledger_path()
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        json.dump(ledger, fh, indent=0, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, f)


def _kind(meta: dict) -> str:
    """The class of loads a load's volume is comparable with (loads of one entity are compared only within a class):

    * ``day`` — one GA4 export day: other export days;
    * ``snapshot`` — a complete copy every run (Odoo reference tables and id lists, HubSpot archived lists): other
      snapshots;
    * ``window`` — a backfill's exact data interval (mode window): other backfill windows;
    * ``history`` — everything since the history start: the first load of an entity (no cursor yet) or a full
      re-read (a window from the epoch or the history start). Never the baseline of a delta — a two-year load says
      nothing about a day — and compared only with another history load;
    * ``delta`` — an incremental load since the cursor (minus the overlap): other deltas, per hour of window.

    Volume is checked for days, deltas and windows; a snapshot or history load has no volume check (a history
    load has no comparable predecessor).
    """
    if meta.get("export_date"):
        return "day"
    if meta.get("snapshot") or meta.get("full_snapshot"):
        return "snapshot"
    if str(meta.get("mode", "")) == "window":
        return "window"
    if meta.get("cursor_before") in (None, "") or _reaches_history_start(meta):
        return "history"
    return "delta"


def _utc(v) -> datetime | None:
    try:
        d = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _reaches_history_start(meta: dict) -> bool:
    start = _utc(meta.get("window_start"))
    if start is None:
        return False
    floor = _utc(settings().history_start or "1970-01-02")
    return start <= max(floor, datetime(1970, 1, 2, tzinfo=timezone.utc)) if floor else False


def _weekday(meta: dict, kind: str) -> int | None:
    """The weekday a daily load stands for: a GA4 export day's, or a daily delta's (one whose new span — the
    previous cursor to the interval end — is about one day): the weekday of its interval's last day. None for
    anything else (an hourly or catch-up delta, a snapshot, a history load)."""
    if kind == "day":
        try:
            return date.fromisoformat(str(meta["export_date"])[:10]).weekday()
        except (KeyError, ValueError):
            return None
    if kind != "delta":
        return None
    a, b = _utc(meta.get("cursor_before")), _utc(meta.get("window_end"))
    if a is None or b is None or not 20 <= (b - a).total_seconds() / 3600 <= 28:
        return None
    return (b - timedelta(microseconds=1)).weekday()


def volume_baseline(ld, group: list, lookback: int, memo: dict | None = None) -> dict:
    """What the volume of ``ld`` (a load of ``group``, its entity's loads in load order) is judged against.

    Comparable loads: the previous loads of the entity of the same kind (`_kind`) with data. Daily loads (GA4 export
    days, daily deltas) have weekly seasonality — a Sunday is not a quiet Monday — so:
      * with ``lookback`` earlier loads of the same weekday: the last ``lookback`` of them;
      * with fewer: the last ``lookback`` comparable loads, or the same-weekday loads there are if their median is
        lower (a drop must be a drop against both: the second Sunday of a business closed on Sundays is not a
        90 % drop against the week);
      * otherwise (not daily): the last ``lookback`` comparable loads.
    Returns {"loads", "basis" ("comparable" | "same-weekday"), "comparable_loads"}; the check blocks only when
    ``comparable_loads`` reaches ``lookback`` (a full baseline), else it warns."""
    memo = {} if memo is None else memo  # load_id → (kind, weekday): a first GA4 run lands hundreds of days

    def kind_day(x) -> tuple[str, int | None]:
        if x.load_id not in memo:
            k = _kind(x.meta)
            memo[x.load_id] = (k, _weekday(x.meta, k))
        return memo[x.load_id]

    idx = group.index(ld)
    kind, wd = kind_day(ld)
    earlier = [x for x in group[:idx] if kind_day(x)[0] == kind and int(x.meta.get("rows") or 0) > 0]
    recent = earlier[-lookback:]
    same = [x for x in earlier if kind_day(x)[1] == wd][-lookback:] if wd is not None else []
    if len(same) >= lookback:
        return {"loads": same, "basis": "same-weekday", "comparable_loads": len(recent)}
    if same and recent:
        m_same, m_recent = _baseline_median(ld, same, kind), _baseline_median(ld, recent, kind)
        if m_same is not None and m_recent is not None and m_same < m_recent:
            return {"loads": same, "basis": "same-weekday", "comparable_loads": len(recent)}
    return {"loads": recent, "basis": "comparable", "comparable_loads": len(recent)}


def _baseline_median(ld, earlier: list, kind: str) -> float | None:
    """The rows ``ld`` is expected to have by the median of ``earlier``: their rows; for a delta or window, their
    rows per hour times ``ld``'s hours (its window is cursor − overlap .. interval end: a re-run of an interval whose
    cursor is already at its end, a window of minutes, expects almost nothing)."""
    prev = [int(x.meta.get("rows") or 0) for x in earlier]
    if not prev:
        return None
    if kind not in ("delta", "window"):
        return float(statistics.median(prev))
    hours = _window_hours(ld.meta)
    rates = [r / h for r, h in ((int(x.meta.get("rows") or 0), _window_hours(x.meta)) for x in earlier) if h]
    if hours and rates:
        return float(statistics.median(rates)) * hours
    return None if hours else float(statistics.median(prev))


def validate_raw(run_id: str, load_ids: list[str] | None = None, raw_root: Path | None = None,
                 out_dir: Path | None = None) -> dict:
    """Audit the raw loads not yet passed by the gate (and, if given, the loads of this run) before dbt.

    A load that failed stays pending: every later run checks it again (it is already in the raw tables and would
    otherwise be built into the marts), until a newer load of the same GA4 export day supersedes it or it is
    accepted by listing its id in `CXW_GATE_ACCEPT_LOADS` (comma-separated) after review.

    A load that repeats validated content (`_repeats_validated_content`: a re-read that brought nothing new) is not
    read or validated again — its verdict is that of the loads it copies — unless its row count is below its volume
    threshold; it still counts in the volume baselines of later loads. A run whose new loads all repeat validated
    content at their usual volume does not start Great Expectations at all (no raw Data Docs for that run).
    """
    from expectations.raw_suites import REQUIRED, raw_suite, volume_suite

    from .loader import complete_loads

    p = paths()
    raw_root = raw_root or p.raw
    out_dir = out_dir or run_dir(run_id)
    t0 = time.perf_counter()
    s = settings()
    lookback = int(_float(s.gate_volume_lookback, 7))
    drop = _float(s.gate_volume_drop, 0.9)
    min_baseline = _float(s.gate_volume_min_rows, 50)
    accepted = {x.strip() for x in s.gate_accept_loads.split(",") if x.strip()}

    ledger = _read_ledger()
    passed = ledger.setdefault("passed", {})
    # per entity, digests of the Parquet schemas (columns and types) of loads whose rows the gate has read and passed
    validated_schemas = ledger.setdefault("schemas", {})
    fresh = _new_content_by_load()
    repeated_ids: list[str] = []
    inherited_ids: list[str] = []
    read_schemas: dict[str, tuple[str, set[str]]] = {}
    volume_only = _volume_suite_is_rows_vs_min_rows(volume_suite())
    loads = complete_loads(raw_root)
    by_entity: dict[tuple[str, str], list] = {}
    for ld in loads:
        by_entity.setdefault((ld.source, ld.entity), []).append(ld)
    wanted = set(load_ids or [])
    results: list[dict] = []
    new_count, read_s, rows_read = 0, 0.0, 0
    gate = None
    checked_ids: list[str] = []
    superseded: list[str] = []
    all_log_rows: list[dict] = []
    for (source, entity), group in sorted(by_entity.items()):
        group.sort(key=lambda ld: ld.load_id)
        new = [ld for ld in group if (ld.load_id not in passed or ld.load_id in wanted)
               and ld.load_id not in accepted]
        # A newer load of the same GA4 export day replaces an older one in staging: the older one is moot.
        latest_of_day = {ld.meta.get("export_date"): ld.load_id for ld in group if ld.meta.get("export_date")}
        keep = []
        for ld in new:
            day = ld.meta.get("export_date")
            if day and latest_of_day.get(day) != ld.load_id and ld.load_id not in wanted:
                superseded.append(ld.load_id)
                continue
            keep.append(ld)
        new = keep
        if not new:
            continue
        new_count += len(new)
        name = f"{source}__{entity}"
        suite = f"raw.{name}"
        # Volume: each new load vs the median of its baseline (`volume_baseline`). It blocks only on a full
        # baseline (`lookback` comparable loads) that is not tiny (median ≥ min_baseline rows); otherwise it warns.
        log_rows = []
        memo: dict = {}
        # GA4 export days that already landed rows: a later delivery of such a day may be empty (a re-read; staging
        # keeps the day's rows), while the FIRST delivery of a day with 0 rows is a 100 % drop like any other.
        days_with_rows = {}
        for x in group:
            if x.meta.get("export_date") and int(x.meta.get("rows") or 0) > 0:
                days_with_rows.setdefault(str(x.meta["export_date"]), x.load_id)
        for ld in new:
            kind = _kind(ld.meta)
            base = volume_baseline(ld, group, lookback, memo)
            rows = int(ld.meta.get("rows") or 0)
            export_day = str(ld.meta["export_date"]) if kind == "day" else None
            median = None
            if kind in ("delta", "window") or (kind == "day" and (
                    rows != 0 or days_with_rows.get(export_day, ld.load_id) >= ld.load_id)):
                median = _baseline_median(ld, base["loads"], kind)
            min_rows = math.floor(round(median * (1 - drop), 9)) + 1 if median is not None else 0
            log_rows.append({"source": source, "entity": entity, "load_id": ld.load_id, "kind": kind,
                             "export_date": export_day, "rows": rows, "baseline_loads": len(base["loads"]), "baseline": base["basis"],
                             "comparable_loads": base["comparable_loads"], "baseline_median": median,
                             "min_rows": min_rows,
                             "blocking": bool(median is not None and base["comparable_loads"] >= lookback
                                              and median >= min_baseline)})
        # Loads that repeat validated content (`_repeats_validated_content`): their rows are not read again. Their
        # volume is still judged: one below its threshold goes through the volume suite like any other load (a
        # truncated re-read brings no new row, yet it is a broken feed); at or above it, the suite — rows ≥ min_rows
        # — passes by construction, so the load keeps the verdict its content already has and GX is not started
        # for it.
        repeats = _repeats_validated_content(new, group, fresh, set(passed) | accepted,
                                             validated_schemas.get(name, []))
        repeat_ids = {ld.load_id for ld in repeats}
        repeated_ids += sorted(repeat_ids)
        for row in log_rows:
            row["repeats_validated_content"] = row["load_id"] in repeat_ids
            row["gx"] = not (row["repeats_validated_content"] and volume_only and row["rows"] >= row["min_rows"])
            (checked_ids if row["gx"] else inherited_ids).append(row["load_id"])
        all_log_rows += log_rows
        # Rows: schema and ranges, on the Parquet files of the new loads that do not repeat validated content (only
        # the columns the suite needs).
        rows_new = [ld for ld in new if ld.load_id not in repeat_ids]
        files = [str(f) for ld in rows_new for f in ld.files]
        if not files or not any(int(ld.meta.get("rows") or 0) for ld in rows_new):
            continue  # no row to check: an entity without rows (yet) is a valid state, whatever its files' schema
        import pandas as pd
        import pyarrow as pa
        import pyarrow.dataset as pads

        req = REQUIRED.get(name, {})
        t1 = time.perf_counter()
        int_as_nullable = {pa.int64(): pd.Int64Dtype()}.get
        schemas = [frag.physical_schema for frag in pads.dataset(files, format="parquet").get_fragments()]
        file_schema = dict(zip(files, (_schema_digest(sc) for sc in schemas)))
        for ld in rows_new:
            read_schemas[ld.load_id] = (name, {file_schema[str(f)] for f in ld.files})
        names = {n for sc in schemas for n in sc.names}
        cols = [c for c in req if c in names] + [
            c for c in ("stars", "starRating", "properties__hs_survey_type", "properties__hs_value", "event_date")
            if c in names and c not in req]
        if not cols:
            df = pd.DataFrame(index=range(sum(int(ld.meta.get("rows") or 0) for ld in rows_new)))
        else:
            try:
                schema = pa.unify_schemas(schemas, promote_options="permissive")
                df = pads.dataset(files, format="parquet", schema=schema).to_table(columns=cols) \
                    .to_pandas(types_mapper=int_as_nullable)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                # A column changed type between loads: read each file as delivered, so the type check sees
                # both types instead of the read failing.
                frames = []
                for f, sc in zip(files, schemas):
                    frames.append(pads.dataset(f, format="parquet").to_table(
                        columns=[c for c in cols if c in sc.names]).to_pandas(types_mapper=int_as_nullable))
                df = pd.concat(frames, ignore_index=True)
        read_s += time.perf_counter() - t1
        rows_read += len(df)
        days = sorted({str(ld.meta["export_date"]).replace("-", "") for ld in rows_new
                       if ld.meta.get("export_date")})
        checks = raw_suite(name, list(df.columns), days or None)
        if checks:
            if gate is None:
                gate = Gate(out_dir, "raw")
            results += gate.run(suite, f"raw.{source}.{entity}", df, checks, run_id,
                                {"loads": [ld.load_id for ld in rows_new]})

    gx_log_rows = [r for r in all_log_rows if r["gx"]]
    if gx_log_rows:
        import pandas as pd

        # Volume: one suite over the load log of the new loads GX checks (one row per load), so a run with many
        # small entities pays GE's per-validation overhead once.
        log_df = pd.DataFrame(gx_log_rows)
        if gate is None:
            gate = Gate(out_dir, "raw")
        vol = gate.run("raw.load_log", "raw load log (new loads)", log_df, volume_suite(), run_id)
        for r in vol:
            r["rows"] = int(len(log_df))
            if not r["success"]:
                cond = (log_df["blocking"] if r["row_condition"] == "blocking" else ~log_df["blocking"])
                bad = log_df[cond & (log_df["rows"] < log_df["min_rows"])]
                r["offending_loads"] = [
                    f"{b.load_id}: raw.{b.source}__{b.entity}"
                    + (f" export day {b.export_date}" if isinstance(b.export_date, str) else "")
                    + f" has {b.rows} rows vs median {b.baseline_median:g} "
                    f"of its {b.baseline_loads} previous {b.baseline} loads"
                    + ("" if b.baseline == "comparable" or b.baseline_loads >= lookback
                       else f" (lower than the median of its last {b.comparable_loads} comparable loads)")
                    + ("" if b.blocking else
                       f" (warn only: a block needs {lookback} comparable loads)" if b.comparable_loads < lookback
                       else f" (warn only: median below CXW_GATE_VOLUME_MIN_ROWS={min_baseline:g})")
                    for b in bad.itertuples()]
        results = vol + results
    errors_by_load = set()
    for r in results:
        if not r["success"] and r["severity"] == "error":
            blamed = [x.split(":")[0] for x in r["offending_loads"]] if r.get("offending_loads") \
                else (r.get("loads") or [])
            # A failure that cannot be attributed to loads (e.g. the expectation itself errored) blames all.
            errors_by_load.update(blamed or checked_ids)
    for lid in checked_ids:
        if lid not in errors_by_load:
            passed[lid] = run_id
            if lid in read_schemas:  # rows read and passed: its schema is validated for later repeats
                ent, digests = read_schemas[lid]
                validated_schemas[ent] = sorted(set(validated_schemas.get(ent, [])) | digests)
    for lid in inherited_ids:
        passed[lid] = f"{run_id} (repeats validated content)"
    for lid in accepted | set(superseded):
        passed.setdefault(lid, f"{run_id} ({'accepted' if lid in accepted else 'superseded'})")
    _write_ledger(ledger)
    blocked = sorted(errors_by_load & set(checked_ids))
    hint = (f"If the data is right (a real quiet day, a vendor's fix), accept after review: run again with "
            f"CXW_GATE_ACCEPT_LOADS={','.join(blocked)} (the gate records accepted loads and does not check "
            f"them again).") if blocked else None
    return _finish("raw", run_id, results, out_dir, gate, t0,
                   {"new_loads": new_count, "rows_read": rows_read, "read_seconds": round(read_s, 2),
                    "loads_validated": len(checked_ids), "loads_repeating_validated_content": len(repeated_ids),
                    "loads_with_inherited_verdict": len(inherited_ids), "accept_hint": hint}, hint=hint,
                   # in validation_raw.json only (not in the task's XCom: a first GA4 run has hundreds of loads):
                   # each new load's volume inputs — kind, rows, baseline (basis, loads, median), threshold, blocking,
                   # whether it repeats validated content and whether GX checked it — and which loads GX checked
                   file_only={"volume": all_log_rows, "validated_loads": checked_ids,
                              "inherited_verdict_loads": inherited_ids})


def _repeats_validated_content(new: list, group: list, fresh: dict[str, int], settled_ids: set[str],
                               schemas: list[str]) -> list:
    """The loads of ``new`` whose content equals content the gate already validated, so their rows need no check.

    "Equal" means all of:
      * the loader found no row of the load new (``_cxw.raw_table_loads.new_content_rows = 0``): every row, on all
        columns but `_load_id`, `_extracted_at` and `_record_seq`, is an exact copy (DuckDB `hash` of every column) of
        a row of an earlier load of the entity — for an `__ids` snapshot: the same ids as the previous snapshot; an
        empty load qualifies trivially; a GA4 export-day delivery with rows never does (it replaces its day);
      * every earlier load of the entity has a verdict (``settled_ids``: passed, accepted after review or superseded,
        in the gate's ledger) or is itself such a repeat — a copy of a load that failed, or of one not validated
        yet, is checked as usual;
      * each of its Parquet files has a schema (column names and Arrow types) the gate has read and passed for this
        entity before (``schemas``, digests in the ledger): a re-read whose values hash alike but whose column changed
        type is validated again.
    Without the loader's bookkeeping (PostgreSQL target, no build database) no load qualifies."""
    out = []
    settled = True  # every load of `group` before the current one has a verdict
    wanted = {ld.load_id for ld in new}
    known = set(schemas)
    digests = None
    for ld in group:
        if ld.load_id in wanted and settled and fresh.get(ld.load_id) == 0:
            if ld.files:
                if digests is None:
                    import pyarrow.parquet as pq

                    digests = lambda f: _schema_digest(pq.read_schema(f))  # noqa: E731 - footer only
                ok = all(digests(f) in known for f in ld.files)
            else:
                ok = True
            if ok:
                out.append(ld)
        settled = settled and (ld.load_id in settled_ids or bool(out and out[-1] is ld))
    return out


def _schema_digest(schema) -> str:
    """Digest of a Parquet file's columns and Arrow types, without the load metadata columns."""
    import hashlib

    from .loader import META_COLUMNS

    cols = sorted(f"{f.name}:{f.type}" for f in schema if f.name not in META_COLUMNS)
    return hashlib.sha256("\n".join(cols).encode()).hexdigest()[:16]


def _volume_suite_is_rows_vs_min_rows(checks) -> bool:
    """True when every check of the volume suite is "rows ≥ min_rows" (on some row condition): then a load at or above
    its min_rows passes the suite whatever GX computes, and a load repeating validated content need not go through it."""
    return bool(checks) and all(
        c.expectation == "ExpectColumnPairValuesAToBeGreaterThanB" and c.kwargs.get("column_A") == "rows"
        and c.kwargs.get("column_B") == "min_rows" and c.kwargs.get("or_equal") is True for c in checks)


def _window_hours(meta: dict) -> float | None:
    """Length of a load's extraction window in hours, None when the manifest does not say."""
    try:
        a = datetime.fromisoformat(str(meta["window_start"]).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(meta["window_end"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None
    h = (b - a).total_seconds() / 3600.0
    return h if h > 0 else None


def _new_content_by_load() -> dict[str, int]:
    """{load_id: rows that are new content} from the DuckDB loader's bookkeeping (empty for other targets or before
    the first load). The raw gate runs after the `load_<source>` tasks and holds the build database's pool, so reading is safe."""
    import duckdb

    from .config import dbt_target

    db = paths().build_db
    if dbt_target() != "duckdb" or not db.exists():
        return {}
    from .loader import connect_build_db

    try:
        con, _ = connect_build_db(db, read_only=True)  # waits while another run writes it (issue 15)
    except duckdb.Error:
        return {}
    try:
        return dict(con.execute("select load_id, new_content_rows from _cxw.raw_table_loads").fetchall())
    except duckdb.Error:
        return {}
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------- shared

def _as_date(v) -> date | None:
    if v in (None, "", "None"):
        return None
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).date() if v.tzinfo else v.date()
    if isinstance(v, date):
        return v
    s = str(v).replace("Z", "+00:00")
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        return None
    return d.astimezone(timezone.utc).date() if d.tzinfo else d.date()


def _condition(c):
    if c is None or isinstance(c, str):
        return c
    if isinstance(c, dict):
        return c.get("pass_through_filter") or str(c)
    return getattr(c, "pass_through_filter", None) or str(c)


def _scalar(v):
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)[:200]


# Columns whose values identify a person or a record (keys, ids, hashes, contact data, names, pseudo ids): an
# observed value of theirs (a max, a most common value) is never reported, only that the check failed.
_IDENTIFYING_COLUMN = re.compile(r"(^|_)(id|ids|sk|key|email|e_mail|phone|mobile|name|hash|user|pseudo|recipient|"
                                 r"address|street|zip|ip|reference|referral)(_|s?$)", re.I)


def _redact(msg):
    """An exception text fit for a message: no quoted text (pandas and GE quote the offending value: "Could not
    convert 'jane@example.org' to numeric"), no e-mail, no run of digits (a phone, an id); first 300 characters."""
    from extractors.common.redact import mask_values

    return mask_values(msg) if isinstance(msg, str) else msg


def _exception_text(info) -> str | None:
    """GE puts an expectation's error at the top of `exception_info`, or per metric one level down
    ({metric id: {exception_message, exception_traceback}}): the messages, without values (`_redact`). The
    tracebacks are never kept (they repeat the message)."""
    if not isinstance(info, dict):
        return None
    msgs = [info.get("exception_message")] if info.get("exception_message") else \
        [v.get("exception_message") for v in info.values() if isinstance(v, dict) and v.get("exception_message")]
    msgs = list(dict.fromkeys(_redact(m) for m in msgs if isinstance(m, str)))
    return "; ".join(msgs)[:500] if msgs else None


def _safe_observed(expectation: str, column, value):
    """The observed value of an aggregate check (a row count, a type name, a min / max / mean) when it is a number of
    a column that does not identify anyone, or the observed type of a type check; else None (a most common value,
    a max of an id or e-mail column: data, possibly personal)."""
    if value is None:
        return None
    if "to_be_of_type" in expectation or "to_be_in_type_list" in expectation:
        return _scalar(value) if isinstance(value, str) and len(value) <= 40 else None
    if column and _IDENTIFYING_COLUMN.search(str(column)):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            value = value.item()  # numpy scalars
        except (TypeError, ValueError):
            return None
    return value if isinstance(value, (int, float, bool)) else None


# result fields that hold values of the data (GX's SUMMARY / COMPLETE formats; `details` holds e.g. value counts)
_VALUE_FIELDS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
                 "unexpected_list", "unexpected_index_list", "unexpected_index_query", "unexpected_rows", "details")


def _mask_stored_results(store) -> None:
    """Data Docs render what the validation results store holds: every result's observed value, unexpected values
    and exception message and traceback (issue 15.4: the run directory's Data Docs showed the max of a contact id, a
    most common id, the e-mail pandas could not convert). Before rendering, each stored result is reduced to what
    the gate reports itself: the observed value only as `_safe_observed` allows (else none), no value lists, the
    exception's message masked (`_redact`) and no traceback."""
    for key in store.list_keys():
        res = store.get(key)
        for er in getattr(res, "results", None) or []:
            cfg = er.expectation_config
            kwargs = getattr(cfg, "kwargs", None) or {}
            column = kwargs.get("column") or kwargs.get("column_A")
            result = er.result or {}
            if "observed_value" in result:
                result["observed_value"] = _safe_observed(cfg.type, column, result["observed_value"])
            for f in _VALUE_FIELDS:
                result.pop(f, None)
            er.result = result
            info = er.exception_info
            if isinstance(info, dict) and info:
                text = _exception_text(info)
                er.exception_info = {"raised_exception": bool(text), "exception_message": text or "",
                                     "exception_traceback": "(not kept: it can quote values of the data)"}
        store.set(key, res)


def _describe(r: dict) -> str:
    where = f" column {r['column']}" if r.get("column") else ""
    cond = f" where {r['row_condition']}" if r.get("row_condition") else ""
    count = r.get("unexpected_count")
    if r.get("offending_loads"):
        what = f"{len(r['offending_loads'])} offending load(s): " + "; ".join(r["offending_loads"][:5])
    elif count is not None:
        what = f"{count} offending row(s) of {r['rows']}"
    elif r.get("exception"):
        what = f"error: {r['exception']}"
    else:
        exp = r.get("expected") or {}
        observed = r.get("observed_value")
        what = ("observed value not reported (a value of the data)" if observed is None
                else f"observed {observed}") + (f", expected {exp}" if exp else "")
    return (f"suite {r['suite']}: {r['expectation']} on table {r['table']}{where}{cond} failed — {what}"
            + (f" ({r['why']})" if r.get("why") else ""))
