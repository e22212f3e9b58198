"""Alert hand-off on real files and a real loopback HTTP server: new alerts of the PUBLISHED generation are
exported once (JSONL + CSV drop, webhook batches with retries and a bearer token), never again on re-runs, and a
crash between sending and committing re-sends the same batches (same idempotency keys) instead of losing them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]

ALERTS_DDL = """create table cx.cx_detractor_alerts (alert_id varchar, alert_type varchar, person_sk varchar,
    source varchar, source_record_id varchar, score integer, comment varchar, created_at timestamp,
    due_at timestamp, preceding_touchpoint_type varchar, preceding_touchpoint_at timestamp,
    is_loop_closed boolean, channel varchar)"""


def _alert_rows(start: int, n: int) -> list[tuple]:
    types = ["nps_detractor", "csat_low", "review_low"]
    return [(f"al-{i:05d}", types[i % 3], f"p{i % 7}", "hubspot" if i % 3 < 2 else "google_reviews", f"r{i}",
             i % 6, f"Kaffee kalt, chờ lâu 😡 #{i}, \"quoted\", comma", f"2025-06-{1 + i % 28:02d} 10:00:00",
             f"2025-06-{1 + i % 28:02d} 12:00:00", "order" if i % 2 else None,
             f"2025-05-{1 + i % 28:02d} 09:00:00" if i % 2 else None, False, "email")
            for i in range(start, start + n)]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    monkeypatch.delenv("CXW_ALERTS_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CXW_ALERTS_WEBHOOK_TOKEN", raising=False)
    from cxw.config import paths

    p = paths()
    p.warehouse_dir.mkdir(parents=True)
    con = duckdb.connect(str(p.build_db))
    con.execute("create schema kpi; create schema core; create schema cx")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 10.0 as value, 40 as n")
    con.execute(ALERTS_DDL)
    con.executemany("insert into cx.cx_detractor_alerts values (?,?,?,?,?,?,?,?,?,?,?,?,?)", _alert_rows(0, 230))
    con.close()
    return p


def _add_alerts(p, start, n):
    con = duckdb.connect(str(p.build_db))
    con.executemany("insert into cx.cx_detractor_alerts values (?,?,?,?,?,?,?,?,?,?,?,?,?)", _alert_rows(start, n))
    con.close()


class Hook:
    """A loopback webhook receiver: records every request; the first `fail_first` requests get a 503."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503):
        self.requests: list[dict] = []
        self.fail_first = fail_first
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
                status = fail_status if len(hook.requests) <= hook.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted_ids(self) -> list[str]:
        return [a["alert_id"] for r in self.requests[self.fail_first:] for a in r["body"]["alerts"]]

    def close(self):
        self.server.shutdown()


def test_new_alerts_are_exported_once_to_files_and_webhook(home, monkeypatch):
    from cxw.alerts import export_alerts, read_exported_ids
    from cxw.publish import publish

    hook = Hook(fail_first=2)  # two 503s: the first batch is retried, then everything goes through
    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_TOKEN", "s3cret-token")
    try:
        gen1 = publish("run-1", "a", "b")["generation_id"]
        rep = export_alerts()
        assert rep["status"] == "exported" and rep["new_alerts"] == 230 and rep["webhook_batches"] == 3
        drop = home.home / "alerts" / gen1
        lines = [json.loads(x) for x in (drop / "alerts.jsonl").read_text().splitlines()]
        assert {a["alert_id"] for a in lines} == {f"al-{i:05d}" for i in range(230)}
        assert set(lines[0]) == {"alert_id", "alert_type", "person_sk", "source", "source_record_id", "score",
                                 "comment", "created_at", "due_at", "preceding_touchpoint_type",
                                 "preceding_touchpoint_at", "is_loop_closed", "channel"}
        assert "😡" in lines[0]["comment"] and lines[0]["created_at"].endswith("+00:00")
        with (drop / "alerts.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 230 and rows[0]["comment"] == lines[0]["comment"]
        # Webhook: 2 failures then 3 accepted batches, bearer token, idempotency key per batch.
        assert len(hook.requests) == 5
        assert all(r["headers"]["Authorization"] == "Bearer s3cret-token" for r in hook.requests)
        assert sorted(hook.accepted_ids()) == sorted(a["alert_id"] for a in lines)
        assert hook.requests[0]["headers"]["Idempotency-Key"] == hook.requests[2]["headers"]["Idempotency-Key"]
        assert len(read_exported_ids()) == 230

        # Re-run on the same generation: nothing new, nothing sent.
        again = export_alerts()
        assert again["status"] == "nothing new" and again["new_alerts"] == 0 and len(hook.requests) == 5

        # A new generation with 5 more alerts: only those 5 are exported.
        _add_alerts(home, 230, 5)
        gen2 = publish("run-2", "a", "b")["generation_id"]
        rep2 = export_alerts()
        assert rep2["new_alerts"] == 5 and rep2["generation_id"] == gen2
        ids2 = [json.loads(x)["alert_id"] for x in (home.home / "alerts" / gen2 / "alerts.jsonl").read_text()
                .splitlines()]
        assert sorted(ids2) == [f"al-{i:05d}" for i in range(230, 235)]
        assert sorted(hook.accepted_ids()) == sorted([f"al-{i:05d}" for i in range(235)])  # each exactly once
        assert "s3cret-token" not in json.dumps(rep) + json.dumps(rep2)
    finally:
        hook.close()


def test_webhook_down_fails_the_export_and_the_next_run_sends_the_same_alerts(home, monkeypatch):
    from cxw.alerts import WebhookError, export_alerts, read_exported_ids
    from cxw.publish import publish

    hook = Hook(fail_first=10_000)
    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_URL", hook.url)
    try:
        gen = publish("run-1", "a", "b")["generation_id"]
        import cxw.alerts as al

        monkeypatch.setattr(al.time, "sleep", lambda s: None)
        with pytest.raises(WebhookError, match="after 5 attempts: HTTP 503"):
            export_alerts()
        assert read_exported_ids() == {}  # nothing committed
        assert not (home.home / "alerts" / gen).exists()  # no drop visible for an uncommitted export
        hook.fail_first = len(hook.requests)  # the receiver recovers
        rep = export_alerts()
        assert rep["new_alerts"] == 230 and len(read_exported_ids()) == 230
        assert sorted(hook.accepted_ids()) == [f"al-{i:05d}" for i in range(230)]
    finally:
        hook.close()


_CRASH = r"""
import os, sys, signal
import cxw.alerts as al
real = al._write_json_atomic
def crash(path, obj):
    if path.name == "exported_ids.json":
        os.kill(os.getpid(), signal.SIGKILL)   # die after the webhook accepted and the drop was renamed
    return real(path, obj)
al._write_json_atomic = crash
al.export_alerts()
"""


def test_crash_before_the_ledger_commit_re_exports_the_same_alerts_once(home, monkeypatch):
    """SIGKILL after the batches were acknowledged and the drop renamed, before the export record's write: the next
    run removes the uncommitted drop, exports the same alerts again with the same idempotency keys, and commits."""
    from cxw.alerts import export_alerts, read_exported_ids
    from cxw.publish import publish

    hook = Hook()
    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_URL", hook.url)
    try:
        gen = publish("run-1", "a", "b")["generation_id"]
        proc = subprocess.run([sys.executable, "-c", _CRASH], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == -9, proc.stderr[-2000:]
        assert read_exported_ids() == {}
        first_keys = [r["headers"]["Idempotency-Key"] for r in hook.requests]
        assert len(first_keys) == 3
        rep = export_alerts()
        assert rep["new_alerts"] == 230 and rep["removed_uncommitted_drops"] == [gen]
        assert [r["headers"]["Idempotency-Key"] for r in hook.requests[3:]] == first_keys  # receiver can dedup
        assert len(read_exported_ids()) == 230
        assert len((home.home / "alerts" / gen / "alerts.jsonl").read_text().splitlines()) == 230
        assert export_alerts()["new_alerts"] == 0
    finally:
        hook.close()


def test_no_alert_table_yet_is_not_an_error(home):
    from cxw.alerts import export_alerts
    from cxw.publish import publish

    con = duckdb.connect(str(home.build_db))
    con.execute("drop table cx.cx_detractor_alerts")
    con.close()
    publish("run-1", "a", "b")
    assert export_alerts()["status"] == "no alert table"


def test_webhook_url_and_token_come_from_the_airflow_connection(monkeypatch):
    """`cxw_alerts_webhook` (here via Airflow's AIRFLOW_CONN_* secrets backend) wins over the environment."""
    from cxw.alerts import webhook_config

    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_URL", "http://env.invalid/hook")
    monkeypatch.setenv("AIRFLOW_CONN_CXW_ALERTS_WEBHOOK", json.dumps(
        {"conn_type": "http", "host": "hooks.example.com", "schema": "https", "port": 8443, "password": "tok-123"}))
    assert webhook_config() == ("https://hooks.example.com:8443", "tok-123")
    monkeypatch.delenv("AIRFLOW_CONN_CXW_ALERTS_WEBHOOK")
    assert webhook_config() == ("http://env.invalid/hook", None)


# --- issue 15: alerts of the published generation are handed over even when the next run has nothing new ----------

_PUBLISH_THEN_CRASH = r"""
import os, signal
from cxw import tasks
tasks.publish("run-1", "2025-06-26T00:00:00+00:00", "2025-06-27T00:00:00+00:00")
os.kill(os.getpid(), signal.SIGKILL)   # dies between publish and export_alerts
"""


def _raw_bookkeeping(p):
    """What the loader leaves in the build database, so that the build fingerprint (cxw.buildstate) is computed on
    real raw content: one raw table and its load."""
    con = duckdb.connect(str(p.build_db))
    con.execute("create schema if not exists _cxw; create schema if not exists raw_hubspot")
    con.execute("create table _cxw.raw_table_loads (source varchar, entity varchar, load_id varchar, "
                "new_content_rows bigint)")
    con.execute("insert into _cxw.raw_table_loads values ('hubspot', 'feedback', 'hubspot-20250627T000000-a', 230)")
    con.execute("create table raw_hubspot.feedback as select range::varchar as id from range(230)")
    con.close()


def test_alerts_lost_to_a_crash_or_a_webhook_outage_are_handed_over_by_the_next_run_with_nothing_new(
        home, monkeypatch):
    """Run 1 publishes and is SIGKILLed before export_alerts. Run 2 finds nothing new to build: dbt_build skips
    validate and publish but not export_alerts, which runs — and the webhook (a real loopback server answering 500)
    stays down beyond every retry: the run's summary says the alerts are not handed over (not "unchanged"). Run 3,
    again nothing new, hands over exactly the 230 missing alerts, each once; run 4 sends nothing."""
    import cxw.alerts as al
    from cxw import buildstate, tasks
    from cxw.alerts import WebhookError, read_exported_ids
    from cxw.summary import build_summary

    for k in ("CXW_FORCE_BUILD", "CXW_KPI_WINDOW_START", "CXW_HISTORY_START"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("CXW_KPI_WINDOW_END", "2025-06-27")  # the run-1 build's window, as dbt_build sets it
    _raw_bookkeeping(home)
    hook = Hook(fail_first=10_000, fail_status=500)
    monkeypatch.setenv("CXW_ALERTS_WEBHOOK_URL", hook.url)
    monkeypatch.setattr(al.time, "sleep", lambda s: None)
    try:
        # run 1: built (the fingerprint recorded as dbt_build does), published, killed before the export
        buildstate.record_build(buildstate.build_fingerprint()["fingerprint"], "run-1")
        proc = subprocess.run([sys.executable, "-c", _PUBLISH_THEN_CRASH], cwd=REPO, capture_output=True,
                              text=True)
        assert proc.returncode == -9, proc.stderr[-2000:]
        assert read_exported_ids() == {} and hook.requests == []

        # run 2: nothing new; export_alerts is not among the skipped tasks, runs, and the webhook stays down
        built = tasks.dbt_build("2025-06-27T00:00:00+00:00", run_id="run-2")
        assert built["skipped"] is True
        assert "export_alerts" not in built["skip_tasks"] and set(built["skip_tasks"]) == {"analyze", "validate", "publish"}
        assert built["pending_alerts"] == 230
        with pytest.raises(WebhookError, match="after 5 attempts: HTTP 500"):
            tasks.export_alerts()
        assert read_exported_ids() == {} and len(hook.requests) == 5
        failed_run = build_summary("run-2", [], None, built, None, None, alerts=None)
        assert failed_run["status"] == "alerts_not_exported", failed_run["reason"]
        assert "230 alerts" in failed_run["reason"]

        # run 3: nothing new again, the receiver is back: exactly the missing alerts, once
        hook.fail_first = len(hook.requests)
        built3 = tasks.dbt_build("2025-06-27T00:00:00+00:00", run_id="run-3")
        assert built3["skipped"] is True and built3["pending_alerts"] == 230
        rep = tasks.export_alerts()
        assert rep["status"] == "exported" and rep["new_alerts"] == 230
        assert sorted(hook.accepted_ids()) == [f"al-{i:05d}" for i in range(230)]  # each exactly once
        assert len(read_exported_ids()) == 230
        ok = build_summary("run-3", [], None, built3, None, None, alerts=rep)
        assert ok["status"] == "unchanged"

        # run 4: nothing pending, nothing sent
        sent = len(hook.requests)
        assert tasks.dbt_build("2025-06-27T00:00:00+00:00", run_id="run-4")["pending_alerts"] == 0
        assert tasks.export_alerts()["new_alerts"] == 0 and len(hook.requests) == sent
    finally:
        hook.close()
