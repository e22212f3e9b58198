"""Inner-loop hand-off: export new follow-up alerts from the PUBLISHED file (`cx.cx_detractor_alerts`).

On every run whose upstream did not fail — after a publish, and also on runs with nothing new to build (the
alerts of a generation whose export a crash or a webhook outage interrupted are handed over by the next run) —
every alert of the published generation whose `alert_id` has never been exported is written, once, to

    $CXW_HOME/alerts/<generation>/alerts.jsonl   one JSON object per alert
    $CXW_HOME/alerts/<generation>/alerts.csv     the same rows, for spreadsheets / ticket imports
    $CXW_HOME/alerts/<generation>/_export.json   what was exported, when, and where it was sent

(the drop appears only complete: written to a temp directory, renamed into place after the webhook accepted every
batch) and, when a webhook is configured (Airflow connection `cxw_alerts_webhook`: host = URL, password =
optional bearer token; or `CXW_ALERTS_WEBHOOK_URL` / `CXW_ALERTS_WEBHOOK_TOKEN`), POSTed as JSON batches
`{"generation", "batch", "batches", "alerts": [...]}` with an `Idempotency-Key` header (sha256 of the batch's
alert ids), retried with capped exponential backoff on connection errors, 429 and 5xx.

Exactly once across re-runs: `$CXW_HOME/alerts/exported_ids.json` (the export record: {alert_id: generation} of every
alert handed over; not the load ledger of staging, nor the raw gate's verdicts) is replaced atomically (temp file,
fsync, os.replace) only after the drop is complete and every batch was acknowledged. A crash before that leaves
the export record unchanged, so the next run exports the same alerts again (same drop directory, same batches and
idempotency keys: a receiver that dedups by key or alert_id sees each alert once), and a drop that was renamed into
place but not committed to the export record is removed first. A crash after the record's write exports nothing
twice. (The code's `ledger` variable and `_ledger_file` are this export record.)

Outer loop (issue 19 point 3): every KPI target breach of the published `kpi.kpi_vs_target` (`is_breach`: a closed
month whose value missed its target on a sample that is not low) is handed over through the same drop, webhook and
export record, as an alert of type `kpi_target_breach` with id `kpi-target:<target_key>` (kpi|grain|period|segment|
channel) and the same columns: person_sk empty, source `kpi_targets`, source_record_id the target_key, score the
KPI's value, comment the value, target, gap, direction and owner role, created_at the period's end. Each breach is
exported once: a later change of the month's value or target does not raise it again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from .config import paths

log = logging.getLogger(__name__)

ALERT_TABLE = "cx.cx_detractor_alerts"
ALERT_COLUMNS = ["alert_id", "alert_type", "person_sk", "source", "source_record_id", "score", "comment",
                 "created_at", "due_at", "preceding_touchpoint_type", "preceding_touchpoint_at", "is_loop_closed",
                 "channel"]
CONN_ID = "cxw_alerts_webhook"
TARGET_TABLE = "kpi.kpi_vs_target"
TARGET_ALERT_TYPE = "kpi_target_breach"
TARGET_ALERT_PREFIX = "kpi-target:"


class WebhookError(RuntimeError):
    pass


def alerts_root() -> Path:
    return paths().home / "alerts"


def _ledger_file(root: Path) -> Path:
    return root / "exported_ids.json"


def read_exported_ids(root: Path | None = None) -> dict[str, str]:
    """The export record: {alert_id: generation} of the alerts handed over."""
    f = _ledger_file(root or alerts_root())
    return json.loads(f.read_text())["exported"] if f.exists() else {}


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        json.dump(obj, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def webhook_config() -> tuple[str | None, str | None]:
    """(url, bearer token) from the Airflow connection `cxw_alerts_webhook`, else the environment."""
    from .settings import settings

    s = settings()
    url, token = s.alerts_webhook_url, s.alerts_webhook_token
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(CONN_ID)
    except Exception:  # not under Airflow, or no such connection
        return url, token
    host = conn.host or ""
    if host and "://" not in host:
        host = f"{conn.schema or 'https'}://{host}{f':{conn.port}' if conn.port else ''}"
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return (extra.get("url") or host or url), (conn.password or token)


def _jsonable(v):
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _table_exists(con, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def _fmt(v) -> str:
    return "null" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _target_breach_alerts(con, kpi_schema: str = "kpi") -> list[dict] | None:
    """The breaches of kpi.kpi_vs_target as alerts of the hand-off columns (None when the table is not published).
    ``kpi_schema``: where the published kpi schema is (PostgreSQL: the serving schema, cxw/publish_postgres.py)."""
    if not _table_exists(con, kpi_schema, "kpi_vs_target"):
        return None
    query = (
        "select target_key, kpi, grain, period_start, period_end, segment, channel, value, n, target_value, "
        "gap_to_target, direction_of_good, target_owner_role from kpi.kpi_vs_target where is_breach "
        "order by period_end, target_key")
    rows = con.execute(query.replace(" from kpi.", f" from {kpi_schema}.")).fetchall()
    alerts = []
    for key, kpi, grain, start, end, segment, channel, value, n, target, gap, direction, owner in rows:
        comment = (f"{kpi} missed its target in the {grain} from {start} (segment {segment}, channel {channel}): "
                   f"{_fmt(value)} vs target {_fmt(target)}, gap {_fmt(gap)} ({direction} is better; n {n}); "
                   f"owner: {owner}")
        alerts.append({"alert_id": TARGET_ALERT_PREFIX + key, "alert_type": TARGET_ALERT_TYPE, "person_sk": None,
                       "source": "kpi_targets", "source_record_id": key, "score": _jsonable(value),
                       "comment": comment, "created_at": _jsonable(datetime(end.year, end.month, end.day)),
                       "due_at": None, "preceding_touchpoint_type": None, "preceding_touchpoint_at": None,
                       "is_loop_closed": None, "channel": channel})
    return alerts


def _on_postgres(published_db) -> bool:
    """Alerts come from PostgreSQL's serving schemas (CXW_DBT_TARGET=postgres) unless a DuckDB file is named."""
    from .settings import settings

    return published_db is None and settings().dbt_target == "postgres"


def _read_alerts(published_db: Path | None) -> tuple[str | None, list[dict] | None]:
    """Detractor alerts, then KPI target breaches, of the published generation (None when neither table is there).
    ``published_db`` None: the serving schemas of the PostgreSQL target."""
    if published_db is None:
        from . import publish_postgres as pg

        conn = pg.connect()
        try:
            conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
            con = pg.DuckLike(conn)
            generation = con.execute(f"select generation_id from {pg.META}.publication").fetchone()[0]
            return generation, _alerts_of(con, pg.SERVING["kpi"], pg.SERVING["cx"])
        finally:
            conn.close()
    import duckdb

    con = duckdb.connect(str(published_db), read_only=True, config={"enable_external_access": False})
    try:
        generation = con.execute("select generation_id from publication").fetchone()[0]
        return generation, _alerts_of(con)
    finally:
        con.close()


def _alerts_of(con, kpi_schema: str = "kpi", cx_schema: str = "cx") -> list[dict] | None:
    breaches = _target_breach_alerts(con, kpi_schema)
    if not _table_exists(con, cx_schema, "cx_detractor_alerts"):
        return breaches
    cols = [c for c, in con.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = 'cx_detractor_alerts' order by ordinal_position", [cx_schema]).fetchall()]
    missing = [c for c in ALERT_COLUMNS if c not in cols]
    if missing:
        raise RuntimeError(f"{ALERT_TABLE} lacks the hand-off columns {missing}")
    select = ", ".join(f'"{c}"' for c in ALERT_COLUMNS)
    rows = con.execute(f"select {select} from {cx_schema}.cx_detractor_alerts "
                       "order by created_at, alert_id").fetchall()
    return [{c: _jsonable(v) for c, v in zip(ALERT_COLUMNS, r)} for r in rows] + (breaches or [])


def _remove_uncommitted_drops(root: Path, ledger: dict[str, str]) -> list[str]:
    """A drop whose alerts are not all in the export record belongs to an export that crashed before committing: the
    alerts in it will be exported again, so the stale drop goes (a reader never sees an alert in two drops)."""
    removed = []
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for meta_file in root.glob("*/_export.json"):
        ids = json.loads(meta_file.read_text()).get("alert_ids", [])
        if any(i not in ledger for i in ids):
            shutil.rmtree(meta_file.parent, ignore_errors=True)
            removed.append(meta_file.parent.name)
    return removed


def _write_drop(root: Path, generation: str, alerts: list[dict], meta: dict) -> Path:
    """Write the drop into a temp dir (renamed into place by `_commit_drop`)."""
    tmp = root / f".tmp-{generation}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with (tmp / "alerts.jsonl").open("w", encoding="utf-8") as fh:
        for a in alerts:
            fh.write(json.dumps(a, ensure_ascii=False, sort_keys=False) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ALERT_COLUMNS, lineterminator="\n")
    w.writeheader()
    for a in alerts:
        w.writerow({k: ("" if v is None else v) for k, v in a.items()})
    (tmp / "alerts.csv").write_text(buf.getvalue(), encoding="utf-8")
    (tmp / "_export.json").write_text(json.dumps(meta, indent=1))
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    return tmp


def _commit_drop(tmp: Path, final: Path) -> Path:
    if final.exists():  # an earlier attempt for this generation wrote the drop but did not finish the export
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def post_batches(url: str, token: str | None, generation: str, alerts: list[dict], batch_size: int = 100,
                 max_attempts: int = 5, backoff: float = 0.5, timeout: float = 10.0) -> int:
    """POST the alerts in batches; every batch must get a 2xx. Returns the number of batches sent."""
    import random

    import requests

    batches = [alerts[i:i + batch_size] for i in range(0, len(alerts), batch_size)]
    for n, batch in enumerate(batches, 1):
        key = hashlib.sha256("\n".join(a["alert_id"] for a in batch).encode()).hexdigest()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"generation": generation, "batch": n, "batches": len(batches), "alerts": batch})
        last = None
        for attempt in range(1, max_attempts + 1):
            try:
                resp = requests.post(url, data=body.encode(), headers=headers, timeout=timeout)
                if 200 <= resp.status_code < 300:
                    last = None
                    break
                last = f"HTTP {resp.status_code}"
                if resp.status_code < 500 and resp.status_code != 429:
                    raise WebhookError(f"alerts webhook refused batch {n}/{len(batches)}: {last} (no retry)")
            except requests.RequestException as exc:
                last = type(exc).__name__
            if attempt < max_attempts:
                time.sleep(min(backoff * 2 ** (attempt - 1), 10) * (0.5 + random.random() / 2))
        if last is not None:
            raise WebhookError(f"alerts webhook failed for batch {n}/{len(batches)} after {max_attempts} "
                               f"attempts: {last}")
    return len(batches)


def pending_alerts(published_db: Path | None = None, root: Path | None = None) -> int:
    """How many alerts of the published generation were never handed over (0 when nothing is published)."""
    if _on_postgres(published_db):
        from .publish_postgres import current_generation

        if current_generation() is None:
            return 0
    else:
        published_db = published_db or paths().published_db
        if not published_db.exists():
            return 0
    _, alerts = _read_alerts(published_db)
    if not alerts:
        return 0
    ledger = read_exported_ids(root or alerts_root())
    return sum(1 for a in alerts if a["alert_id"] not in ledger)


def export_alerts(published_db: Path | None = None, root: Path | None = None) -> dict:
    """Export the alerts of the published generation that were never exported before."""
    p = paths()
    root = root or alerts_root()
    t0 = time.perf_counter()
    if _on_postgres(published_db):  # the serving schemas of the PostgreSQL target (cxw/publish_postgres.py)
        from .publish_postgres import current_generation

        if current_generation() is None:
            return {"status": "nothing published", "new_alerts": 0}
    else:
        published_db = published_db or p.published_db
        if not published_db.exists():
            return {"status": "nothing published", "new_alerts": 0}
    generation, alerts = _read_alerts(published_db)
    if alerts is None:
        log.info("export_alerts: %s is not in generation %s yet; nothing to export", ALERT_TABLE, generation)
        return {"status": "no alert table", "generation_id": generation, "new_alerts": 0}
    ledger = read_exported_ids(root)
    new = [a for a in alerts if a["alert_id"] not in ledger]
    report = {"status": "nothing new", "generation_id": generation, "alerts_in_mart": len(alerts),
              "new_alerts": len(new), "already_exported": len(alerts) - len(new)}
    if not new:
        report["seconds"] = round(time.perf_counter() - t0, 3)
        return report
    url, token = webhook_config()
    stale = _remove_uncommitted_drops(root, ledger)
    meta = {"generation_id": generation, "alerts": len(new), "exported_at": datetime.now(timezone.utc).isoformat(),
            "webhook": bool(url), "alert_ids": [a["alert_id"] for a in new]}
    tmp = _write_drop(root, generation, new, meta)
    batches = post_batches(url, token, generation, new) if url else 0
    # Commit: drop into place, then the export record (a crash in between is undone by _remove_uncommitted_drops).
    drop = _commit_drop(tmp, root / generation)
    exported = dict(ledger)
    exported.update({a["alert_id"]: generation for a in new})
    _write_json_atomic(_ledger_file(root), {"exported": exported})
    report.update(status="exported", drop=str(drop), webhook_batches=batches, removed_uncommitted_drops=stale,
                  seconds=round(time.perf_counter() - t0, 3))
    log.info("exported %d new alerts of generation %s to %s (%d webhook batches)", len(new), generation, drop,
             batches)
    return report
