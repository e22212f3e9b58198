"""The steps of the pipeline, one function per Airflow task. Each is idempotent over its inputs.

extract(source) → load_raw(source) → validate_raw → dbt_build → analyze → validate → publish → export_alerts → summarize
"""

from __future__ import annotations

import importlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from . import SOURCES
from .config import paths

log = logging.getLogger(__name__)


def _as_utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def extract_mode(run_type) -> str:
    """The extractors' mode for a DAG run of ``run_type``: "window" (exactly the data interval; cursors and state
    never move) for a backfill, "incremental" for every other run.

    Compared with Airflow's enum, not by its text: Airflow 3 hands a task its run's type as the task SDK's
    ``DagRunType`` (a str-Enum whose value is "backfill" but whose ``str()`` is "DagRunType.BACKFILL"), so a
    suffix test on ``str(run_type)`` never matched and backfills ran as incremental runs."""
    try:  # the type a task receives under Airflow 3 (dag_run.run_type)
        from airflow.sdk.api.datamodels._generated import DagRunType

        backfill = DagRunType.BACKFILL
    except ImportError:  # pragma: no cover - Airflow without the task SDK
        from airflow.utils.types import DagRunType

        backfill = DagRunType.BACKFILL_JOB
    # both enums are str-Enums: equal to each other's member and to the value of the metadata DB's column
    return "window" if run_type is not None and run_type == backfill else "incremental"


CONFIG_ERRORS_FILE = "config_error_{task}.json"


def fail_fast(exc: BaseException) -> BaseException:
    """The exception a task raises for ``exc``: a configuration / authorisation error (a missing or malformed
    setting, a vendor's 400/401/403/404: ``extractors.common.settings.ConfigurationError``) becomes Airflow's
    ``AirflowFailException`` - the task fails at once, without its retries, which cannot help; any other error is
    returned unchanged (network errors, 429 and 5xx keep the HTTP retries and the task's retries)."""
    from extractors.common.settings import ConfigurationError

    if not isinstance(exc, ConfigurationError):
        return exc
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # pragma: no cover - Airflow without the task SDK
        from airflow.exceptions import AirflowFailException
    d = exc.details()
    return AirflowFailException(
        f"{d['source']}: configuration error, not retried - setting: {d['setting'] or 'unknown'}"
        + (f"; endpoint: {d['endpoint']}" if d.get("endpoint") else "") + f"; fix: {d['fix']} ({d['error']})")


def _config_error_file(run_id: str, task: str) -> Path:
    return run_dir(run_id) / CONFIG_ERRORS_FILE.format(task=task)


def _record_config_error(run_id: str | None, task: str, exc) -> None:
    """The summary's record of a configuration error (names and a sentence, never a value)."""
    if run_id:
        f = _config_error_file(run_id, task)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({**exc.details(), "task": task}, indent=1))


def extract(source: str, data_interval_start, data_interval_end, mode: str = "incremental",
            run_id: str | None = None) -> dict:
    """Extract one source. A configuration / authorisation error is recorded in the run directory (source, setting,
    endpoint, fix: the summary names them) and raised as a failure Airflow does not retry (`fail_fast`)."""
    from extractors.common.settings import ConfigurationError

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    try:
        return _extract(source, data_interval_start, data_interval_end, mode, run_id)
    except ConfigurationError as exc:
        if exc.source is None:
            exc.source = source
        _record_config_error(run_id, f"extract_{source}", exc)
        raise fail_fast(exc) from exc


def _extract(source: str, data_interval_start, data_interval_end, mode: str, run_id: str | None) -> dict:
    """The source's settings object is built here (Airflow connection `cxw_<source>` over the environment:
    `cxw.connections.task_env`) and handed to the extractor; the process environment is not modified."""
    from extractors.common.connection import settings_module

    from .connections import task_env
    from .pii import require_private_salt

    env = task_env(source)
    require_private_salt([source], env)  # the public demo salt is refused against a real system (fails in seconds)
    p = paths()
    module = importlib.import_module(f"extractors.{source}")
    start, end = _as_utc(data_interval_start), _as_utc(data_interval_end)
    if not start < end:
        raise ValueError(f"{source}: empty extraction window [{start}, {end})")
    import time

    t0 = time.perf_counter()
    settings = settings_module(source).SETTINGS.from_env(env)
    report = module.extract(raw_root=p.raw, state_root=p.state, deadletter_root=p.deadletter,
                            window_start=start, window_end=end, mode=mode, settings=settings)
    if run_id:  # a cleared and re-run task that now succeeds: its earlier configuration error is history
        _config_error_file(run_id, f"extract_{source}").unlink(missing_ok=True)
    report["seconds"] = round(time.perf_counter() - t0, 3)  # wall time of the whole source (loads may overlap)
    rows = sum(ld.get("rows", 0) for ld in report.get("loads", []))
    log.info("extracted %s: %d rows in %d loads in %.1fs", source, rows, len(report.get("loads", [])),
             report["seconds"])
    return json.loads(json.dumps(report, default=str))


def load_raw(source: str | None = None) -> dict:
    """Copy the complete raw loads (of ``source``, or of every source) into the build database of the dbt target
    (CXW_DBT_TARGET: duckdb | postgres; PostgreSQL is reached with the CXW_PG_* variables profiles.yml uses)."""
    from .config import dbt_target

    from .retention import drop_old_raw_loads

    p = paths()
    target = dbt_target()
    sources = [source] if source else None
    retention = drop_old_raw_loads(sources=sources)  # CXW_RETENTION_DAYS; none when unset
    if target == "duckdb":
        from .loader import load_into_duckdb

        return {"source": source, **load_into_duckdb(p.raw, p.build_db, sources=sources),
                **({"retention_dropped_loads": retention} if retention else {})}
    if target == "postgres":
        from .loader_postgres import ensure_pg_database, load_into_postgres, pg_dsn

        dsn = pg_dsn()
        ensure_pg_database(dsn)
        return {"source": source, **load_into_postgres(p.raw, dsn, sources=sources),
                **({"retention_dropped_loads": retention} if retention else {})}
    raise ValueError(f"CXW_DBT_TARGET={target!r}: the loader knows 'duckdb' and 'postgres'")


# Tasks the DAG skips when dbt_build finds nothing new to build. Not export_alerts: it runs on every run whose
# upstream did not fail, so alerts of the published generation that a crash or a webhook outage kept from being
# handed over are handed over by the next run, also when that run has nothing new (issue 15).
SKIPPED_WHEN_UNCHANGED = ("analyze", "validate", "publish")


def build_interval_end(data_interval_end) -> datetime | None:
    """The data interval end a run builds to: its own, or the published generation's when that is newer (a re-run of
    an old interval, a backfill, a run that raced a newer one). The build database holds the raw data of every run,
    so the newer interval's data is there: the run rebuilds to the newest data (and adds its own) instead of
    moving BI back in time."""
    from .publish import published_interval_end

    own = _as_utc(data_interval_end) if data_interval_end is not None else None
    try:
        published = published_interval_end()
    except Exception as exc:  # an unreadable published file: build to the run's own interval
        log.warning("could not read the published generation's data interval: %s", exc)
        published = None
    if own is None:
        return published
    return max(own, published) if published is not None else own


def kpi_window_end_date(end: datetime) -> str:
    """The KPI window's (exclusive) end date for a data interval ending at ``end``: that date when the interval ends
    at midnight (a daily run: the days before it are complete); otherwise the next day (an hourly run,
    CXW_SCHEDULE=hourly: today's KPIs cover the hours loaded so far, marked by the publication's freshness)."""
    from datetime import time as dtime, timedelta

    day = end.date()
    return (day if end.timetz().replace(tzinfo=None) == dtime(0) else day + timedelta(days=1)).isoformat()


def dbt_build(data_interval_end=None, run_id: str | None = None) -> dict:
    """`dbt build` with the KPI window [CXW_HISTORY_START, data interval end) unless set explicitly
    (CXW_KPI_WINDOW_START / _END), handed to dbt as `--vars` (`kpi_window_start`, `kpi_window_end`).

    The interval end is the run's own or, when newer, the published generation's (`build_interval_end`: an older
    interval never replaces a newer one in BI); the build records it in `_cxw.build_info`, which validate and
    publish read with the marts. Waits for the build database's lock (CXW_BUILD_DB_LOCK_WAIT_S) like the loader.

    Skipped (`{"skipped": True, ...}`) when the build fingerprint (raw content, dbt project + suites, settings; see
    `cxw.buildstate`) equals that of the build behind the generation BI reads: nothing new to build or publish; the
    report then lists the tasks to skip (`skip_tasks`) and the alerts of the published generation not yet handed
    over (`pending_alerts`, which export_alerts hands over in this run)."""
    import time

    from extractors.common.settings import ConfigurationError

    from . import buildstate, dbt_select
    from .config import dbt_target
    from .dbt import dbt_env, kpi_window_vars, run_dbt
    from .pii import require_private_salt
    from .settings import settings

    try:  # the sources configured in this process's environment (Airflow connections are checked by each extract)
        require_private_salt()
    except ConfigurationError as exc:
        _record_config_error(run_id, "dbt_build", exc)
        raise fail_fast(exc) from exc
    if run_id:  # a re-run after the salt was set: the earlier refusal is history
        _config_error_file(run_id, "dbt_build").unlink(missing_ok=True)
    run_end = _as_utc(data_interval_end) if data_interval_end is not None else None
    end = build_interval_end(data_interval_end)
    rebuilt_to = None
    # the KPI window goes to dbt as --vars (kpi_window_start / _end); the environment is not modified
    s = settings()
    window = [s.kpi_window_start, s.kpi_window_end]
    if end is not None and window[1] is None:
        window[1] = kpi_window_end_date(end)
        if run_end is not None and end > run_end:
            rebuilt_to = end.isoformat()
            log.info("this run's data interval ends %s, the published generation's %s: building to the newer "
                     "end so that BI does not go back in time", run_end.isoformat(), rebuilt_to)
    if s.history_start and window[0] is None:
        window[0] = s.history_start[:10]
    t0 = time.perf_counter()
    fp = buildstate.build_fingerprint(window)
    same = buildstate.unchanged_since_publication(fp["fingerprint"])
    if same:
        reason = (f"no new data: the raw content, models, suites and settings equal those of the build behind the "
                  f"published generation {same['generation_id']} (build fingerprint {fp['fingerprint'][:12]})")
        pending = pending_alerts()
        log.info("dbt build skipped — %s; %s", reason,
                 f"{pending} alerts of the published generation not yet handed over: export_alerts runs"
                 if pending else "export_alerts checks for alerts not yet handed over")
        return {"skipped": True, "reason": reason, "build_fingerprint": fp["fingerprint"],
                "generation_id": same["generation_id"], "kpi_window": window, "rebuilt_to": rebuilt_to,
                "skip_tasks": list(SKIPPED_WHEN_UNCHANGED), "pending_alerts": pending,
                "seconds": round(time.perf_counter() - t0, 3)}
    # dbt's unit tests check model logic on fixed fixture rows, not the data: they run in CI (`./cx test`,
    # tests/dbt) and where CXW_DBT_UNIT_TESTS=1, not in every pipeline build (dbt's own advice for production)
    args = ["build"] if s.dbt_unit_tests else ["build", "--exclude-resource-type", "unit_test"]
    args += kpi_window_vars(window)
    # the data interval end this build covers: the run's (or the newer published one's), or an explicit
    # CXW_KPI_WINDOW_END (a date: midnight UTC)
    if end is not None and window[1] == kpi_window_end_date(end):
        built_end = end.isoformat()
    else:
        built_end = f"{window[1]}T00:00:00+00:00" if window[1] else None
    # only what the raw tables that changed since the last successful build feed, when that is provably the same
    # as building everything (cxw.dbt_select); the record of what the build is made from goes before dbt starts
    inputs = dbt_select.build_inputs(args, fp["parts"]["env"])
    selection: dict = {}

    def _plan_and_clear(con) -> None:
        selection.update(dbt_select.plan(con, inputs, Path(dbt_env()["DBT_TARGET_PATH"]) / "manifest.json",
                                         mode=s.dbt_select, target=dbt_target(), force=s.force_build))
        dbt_select.clear_record(con)
        buildstate.clear_build_info(con)  # a failed or partial build has no record

    _with_build_db(_plan_and_clear)
    if not selection:  # PostgreSQL: the DuckDB file is not the build database
        selection.update(mode="full", reason=f"target {dbt_target()}: selection is implemented for DuckDB",
                         select=[], changed=[], raw_keys={})
    log.info("dbt build: %s — %s", selection["mode"], selection["reason"])
    if dbt_target() == "postgres":
        from . import publish_postgres

        publish_postgres.clear_build_info()
    manifest_path = Path(dbt_env()["DBT_TARGET_PATH"]) / "manifest.json"
    previous = dbt_select.read_manifest(manifest_path) if selection["mode"] == "selected" else None
    report = run_dbt(args + dbt_select.selection_args(selection))
    if previous is not None:  # the nodes that did not run keep their compiled SQL for the docs
        selection["manifest_completed"] = dbt_select.complete_manifest(previous, manifest_path)
    if dbt_target() == "postgres":  # the record in the PostgreSQL build database (cxw/publish_postgres.py); the
        from . import publish_postgres  # audiences' roles read the serving schemas, granted by publish's swap

        publish_postgres.write_build_info(run_id, built_end, window, fp["fingerprint"])
    def _record(con) -> None:
        buildstate.write_build_info(con, run_id, built_end, window, fp["fingerprint"])
        dbt_select.write_record(con, inputs, selection["raw_keys"])

    _with_build_db(_record)
    buildstate.record_build(fp["fingerprint"], run_id, window)
    report["build_fingerprint"] = fp["fingerprint"]
    report["kpi_window"] = window
    report["data_interval_end"] = built_end
    report["rebuilt_to"] = rebuilt_to
    report.pop("log_tail", None)
    nodes = report.get("results", {}).pop("nodes", [])
    report["selection"] = {**{k: selection[k] for k in ("mode", "reason", "changed")}, "nodes": len(nodes)}
    report["slowest"] = sorted(nodes, key=lambda n: -n["seconds"])[:5]
    return report


def _with_build_db(fn) -> None:
    """Run ``fn(con)`` on a writer connection to the DuckDB build database (waiting for its lock); a no-op for the
    PostgreSQL target (publish reads the DuckDB build file only)."""
    from .config import dbt_target
    from .loader import connect_build_db

    db = paths().build_db
    if dbt_target() != "duckdb":
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    con, _ = connect_build_db(db)
    try:
        fn(con)
    finally:
        con.close()


def pending_alerts() -> int | None:
    """Alerts of the published generation not yet handed over (None when that cannot be read)."""
    try:
        from .alerts import pending_alerts as run

        return run()
    except Exception as exc:  # never fail the build decision on the alert check; export_alerts reports it
        log.warning("could not count the alerts not yet handed over: %s", exc)
        return None


def analyze(data_interval_end=None, run_id: str | None = None) -> dict:
    """The analyses after dbt (cxw/analytics, docs/analytics.md): each registered analysis reads the built marts and
    its output tables replace those in the marts schema of the build database, where validate audits them and
    publish copies them. As of the build's data interval end (`build_interval_end`: the run's or the newer published
    one's), with the fixed seed: the same build gives identical tables. With CXW_ANALYZE_EVERY=day (the hourly
    schedule's default) a run whose as-of date and inputs equal the earlier run's keeps its tables
    (cxw.analytics.reuse; the report's `kept_from` says whose)."""
    from .analytics.reuse import analyze_every
    from .analytics.runner import run_analyses
    from .settings import settings

    # On PostgreSQL the audiences read only the serving schemas, granted by publish's swap (cxw/publish_postgres.py):
    # nothing to grant on the build schemas the analyses write into.
    s = settings()
    return run_analyses(as_of=build_interval_end(data_interval_end), every=analyze_every(s), force=s.force_build,
                        run_id=run_id)


def validate_raw(run_id: str, load_ids: list[str] | None = None) -> dict:
    from .gate import validate_raw as run

    return run(run_id, load_ids)


def validate(run_id: str, data_interval_start=None, data_interval_end=None) -> dict:
    """The marts gate. When it fails (or crashes), the analyses' record is removed: tables computed from marts the
    gate rejected, or rejected themselves, are not kept by a later run of the same as-of date (CXW_ANALYZE_EVERY=day,
    cxw.analytics.reuse) but computed again from the marts that pass."""
    from .gate import validate_marts as run

    try:
        return run(run_id, data_interval_start, data_interval_end)
    except BaseException:
        if paths().build_db.exists():
            from .analytics import reuse

            try:
                _with_build_db(reuse.clear)
            except Exception as exc:  # the gate's failure is the one to report
                log.warning("could not remove the analyses' record after the failed marts gate: %s", exc)
        raise


def export_alerts() -> dict:
    from .alerts import export_alerts as run

    return run()


def publish(run_id: str, data_interval_start, data_interval_end) -> dict:
    """Publish the audited marts. A build whose data interval ends before the published generation's is not
    published (report status "superseded", with the reason; BI keeps the newer generation)."""
    from . import buildstate
    from .publish import publish as run

    from .retention import drop_old_generations

    report = run(run_id, _iso(data_interval_start), _iso(data_interval_end))
    if report["status"] != "superseded":  # superseded: the generation BI reads did not come from this build
        buildstate.record_publication(report["generation_id"], run_id)
    dropped = drop_old_generations()  # CXW_RETENTION_DAYS; none when unset
    if dropped:
        report["retention_dropped_generations"] = dropped
    if report["status"] != "superseded":
        from .docs import docs_after_publish

        # dbt docs of the generation (issue 18.3); removes the docs of generations no longer kept
        report["docs"] = docs_after_publish(report["generation_id"])
    return report


def _iso(value) -> str | None:
    if value is None:
        return None
    try:
        return _as_utc(value).isoformat()
    except (TypeError, ValueError):
        return str(value)


def merge_load_reports(reports: list[dict | None]) -> dict | None:
    """One load report from the per-source `load_<source>` tasks' reports (None when none ran)."""
    reports = [r for r in reports if r]
    if not reports:
        return None
    merged: dict = {"tables": {}, "skipped": [], "target": reports[0].get("target"),
                    "sources": [r.get("source") for r in reports]}
    for r in reports:
        merged["tables"].update(r.get("tables") or {})
        merged["skipped"] += r.get("skipped") or []
    for k in ("seconds", "rows", "new_content_rows"):
        merged[k] = round(sum(float(r.get(k) or 0) for r in reports), 3) if k == "seconds" \
            else sum(int(r.get(k) or 0) for r in reports)
    return merged


def summarize(run_id: str, extract_reports: list[dict], load_report: dict | list | None, dbt_report: dict | None,
              validation: dict | None, publication: dict | None, raw_validation: dict | None = None,
              alerts: dict | None = None, analyses: dict | None = None) -> dict:
    from .summary import build_summary, render

    if isinstance(load_report, list):  # one report per load_<source> task
        load_report = merge_load_reports(load_report)
    summary = build_summary(run_id, [r for r in extract_reports if r], load_report, dbt_report, validation,
                            publication, raw_validation=raw_validation, alerts=alerts, analyses=analyses)
    out = paths().runs / _safe(run_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    text = render(summary)
    (out / "summary.txt").write_text(text)
    latest = paths().runs / "latest-summary.txt"
    latest.write_text(text)
    print(text, flush=True)
    _housekeeping(out.name)
    return summary


def _housekeeping(current: str) -> None:
    """Prune the run directories (Data Docs, results) and run logs beyond CXW_KEEP_RUNS; this run's is kept. A
    malformed CXW_KEEP_RUNS prunes nothing and warns (the run's data is published by now: it does not fail it)."""
    from extractors.common.settings import ConfigurationError

    from .housekeeping import prune_runs

    try:
        prune_runs(current=current)
    except ConfigurationError as exc:
        log.warning("housekeeping skipped: %s", exc)


def _safe(run_id: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def run_dir(run_id: str) -> Path:
    return paths().runs / _safe(run_id)
