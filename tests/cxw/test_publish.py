"""Atomic publish on real DuckDB files: generations, no-op re-publish, BI readers keep their snapshot, rollback,
orphans of an interrupted publish are cleaned."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from datetime import datetime

import duckdb
import pytest


@pytest.fixture
def home(empty_build_db):
    p, con = empty_build_db
    con.execute("create schema kpi; create schema core; create schema staging")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 10.0 as value, 40 as n")
    con.execute("create table core.fct_orders as select range as order_id from range(100)")
    con.execute("create table staging.secret as select 'a@b.example' as email")  # not a published schema
    con.close()
    return p


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _set_nps(p, value):
    con = duckdb.connect(str(p.build_db))
    con.execute("update kpi.kpi_daily set value = ?", [value])
    con.close()


def test_publish_copies_only_bi_schemas_and_records_the_publication(home):
    from cxw.publish import publish

    rep = publish("run-1", "2025-06-30", "2025-07-01")
    assert rep["status"] == "published"
    con = duckdb.connect(str(home.published_db), read_only=True)
    tables = {r[0] for r in con.execute("select table_schema || '.' || table_name from information_schema.tables")
              .fetchall()}
    assert {"kpi.kpi_daily", "core.fct_orders", "main.publication", "main.publication_tables"} <= tables
    assert not any(t.startswith("staging.") for t in tables)
    gen, run_id, start, end = con.execute(
        "select generation_id, run_id, data_interval_start, data_interval_end from publication").fetchone()
    assert (run_id, start, end) == ("run-1", "2025-06-30", "2025-07-01") and gen == rep["generation_id"]
    assert dict(con.execute("select table_name, row_count from publication_tables").fetchall()) == {
        "core.fct_orders": 100, "kpi.kpi_daily": 1}
    con.close()


def test_republishing_the_same_content_is_a_no_op(home):
    from cxw.publish import publish

    first = publish("run-1", "a", "b")
    checksum = _sha(home.published_db)
    again = publish("run-1", "a", "b")
    assert again["status"] == "unchanged" and again["generation_id"] == first["generation_id"]
    assert _sha(home.published_db) == checksum


def _reader(path, started, release, out):
    con = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
    out.put(con.execute("select value from kpi.kpi_daily").fetchone()[0])
    started.set()
    release.wait(30)
    out.put(con.execute("select value from kpi.kpi_daily").fetchone()[0])
    con.close()


def test_open_bi_reader_keeps_its_generation_while_a_new_one_is_published(home):
    from cxw.publish import publish

    publish("run-1", "a", "b")
    ctx = mp.get_context("spawn")
    started, release, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_reader, args=(str(home.published_db), started, release, out))
    proc.start()
    assert started.wait(30)
    _set_nps(home, 55.0)
    rep = publish("run-2", "a", "b")  # must not be blocked by the reader holding the file open
    assert rep["status"] == "published"
    new = duckdb.connect(str(home.published_db), read_only=True)
    assert new.execute("select value from kpi.kpi_daily").fetchone()[0] == 55.0
    new.close()
    release.set()
    proc.join(30)
    assert proc.exitcode == 0
    assert [out.get(timeout=5), out.get(timeout=5)] == [10.0, 10.0]


def test_rollback_switches_back_and_old_generations_are_pruned(home, monkeypatch):
    from cxw import publish as pub

    g1 = pub.publish("run-1", "a", "b")["generation_id"]
    _set_nps(home, 20.0)
    g2 = pub.publish("run-2", "a", "b")["generation_id"]
    assert g1 != g2 and pub.current_generation() == g2
    back = pub.rollback()
    assert back == {"from": g2, "to": g1, "path": str(home.published_db),
                    "audiences": ["admin", "analyst", "cx_agent", "executive"]}  # each switched too (issue 18.4)
    assert pub.current_generation() == g1
    monkeypatch.setattr(pub, "KEEP_GENERATIONS", 2)
    for v in (30.0, 40.0):
        _set_nps(home, v)
        pub.publish(f"run-{v}", "a", "b")
    assert len(pub.generations()) == 2


def test_orphans_of_an_interrupted_publish_are_removed_next_run(home):
    from cxw.publish import publish

    publish("run-1", "a", "b")
    checksum = _sha(home.published_db)
    orphan = home.generations_dir / ".tmp-20990101T000000-deadbeef.duckdb"
    orphan.write_bytes(b"half-written")
    switch = home.published_dir / ".cx_warehouse.duckdb.switch"
    switch.write_bytes(b"half-linked")
    assert _sha(home.published_db) == checksum  # BI still sees the complete old generation
    _set_nps(home, 99.0)
    publish("run-2", "a", "b")
    assert not orphan.exists() and not switch.exists()


# --- SIGKILL of the publishing process -------------------------------------------------------------------------

_PUBLISHER = r"""
import os, signal, sys, time
import cxw.publish as pub
kill_at = os.environ.get("KILL_AT")
def mark(m):
    print(m, flush=True)
    if kill_at == m:
        os.kill(os.getpid(), signal.SIGKILL)
real_replace, real_switch, real_connect = os.replace, pub._switch, None
def replace(a, b):
    mark("before_rename_generation" if ".tmp-" in str(a) else "before_rename_switch")
    real_replace(a, b)
    mark("after_rename_generation" if ".tmp-" in str(a) else "after_rename_switch")
pub.os.replace = replace
def switch(g, p):
    mark("before_switch")
    real_switch(g, p)
pub._switch = switch
print("READY", flush=True)
pub.publish(sys.argv[1], "a", "b")
mark("DONE")
"""


def _bi_view(path):
    """What a new BI connection sees: the generation, and whether every table matches its publication record."""
    con = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
    try:
        gen = con.execute("select generation_id from publication").fetchone()[0]
        from cxw.publish import table_fingerprint

        mismatched = [t for t, n, fp in con.execute("select * from publication_tables").fetchall()
                      if table_fingerprint(con, t) != (n, fp)]
        value = con.execute("select value from kpi.kpi_daily").fetchone()[0]
    finally:
        con.close()
    return gen, mismatched, value


def test_sigkill_of_the_publishing_process_leaves_bi_on_old_or_new_and_orphans_are_cleaned(home):
    """A real publisher process is SIGKILLed many times: at each rename point of the protocol (deterministic) and
    at random moments of the copy (timed). After every kill a new BI connection sees one complete generation — the
    old or the new one, never a mix — and the next publish removes the orphans and publishes."""
    import random
    import subprocess
    import sys
    import time
    from pathlib import Path

    from cxw.publish import publish

    repo = Path(__file__).resolve().parents[2]
    con = duckdb.connect(str(home.build_db))  # a bigger table, so the copy takes measurable time
    con.execute("create table core.fct_web_sessions as select range as session_key, md5(range::varchar) as h "
                "from range(600000)")
    con.close()
    publish("run-0", "a", "b")
    rng = random.Random(20261123)
    env = {**__import__("os").environ}

    def run(kill_at=None, delay=None, value=0.0):
        _set_nps(home, value)
        e = dict(env, KILL_AT=kill_at or "")
        proc = subprocess.Popen([sys.executable, "-c", _PUBLISHER, f"run-{value}"], cwd=repo, env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "READY"
        if delay is not None:
            time.sleep(delay)
            proc.kill()
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out.split(), err

    t0 = time.perf_counter()
    rc, marks, err = run(value=1.0)
    full = time.perf_counter() - t0
    assert rc == 0 and marks[-1] == "DONE", err[-2000:]
    points = ["before_rename_generation", "after_rename_generation", "before_switch", "before_rename_switch",
              "after_rename_switch"]
    trials = [(p, None) for p in points] + [(None, rng.uniform(0.05, full)) for _ in range(6)]
    killed_mid_publish = 0
    for i, (point, delay) in enumerate(trials):
        before_gen, _, before_value = _bi_view(home.published_db)
        new_value = 50.0 + i
        rc, marks, err = run(point, delay, new_value)
        if rc == 0:
            continue  # the timed kill came after the end: nothing to check
        assert rc == -9, (rc, err[-2000:])
        killed_mid_publish += 1
        gen, mismatched, value = _bi_view(home.published_db)
        assert not mismatched, f"kill at {point or delay}: BI sees a mix: {mismatched}"
        assert value in (before_value, new_value) and (gen == before_gen) == (value == before_value)
        if point in ("before_rename_generation", "after_rename_generation", "before_switch",
                     "before_rename_switch"):
            assert gen == before_gen, f"kill at {point}: BI must still see the old generation"
        if point == "after_rename_switch":
            assert value == new_value
        # Next run: orphans removed, a clean publish.
        rep = publish(f"clean-{i}", "a", "b")
        assert rep["status"] in ("published", "unchanged")
        assert not list(home.generations_dir.glob(".tmp-*")), "orphaned temp generation not cleaned"
        assert not list(home.published_dir.glob(".*.switch")), "orphaned switch link not cleaned"
        assert _bi_view(home.published_db)[1] == []
    assert killed_mid_publish >= len(points)


# --- issue 15: BI never goes back in time; tasks wait for the build database's lock --------------------------------

D26, D27 = "2025-06-26T00:00:00+00:00", "2025-06-27T00:00:00+00:00"


def test_a_build_of_an_older_interval_never_replaces_a_newer_published_generation(home):
    """Two runs at once: the run for the interval ending 06-27 publishes first, the one ending 06-26 (different
    content) finishes last. Its publish does not move BI back: status superseded, the reason in the report and the
    summary, BI still on the 06-27 generation; a newer interval publishes again.

    The superseded run goes through the publish task (`cxw.tasks.publish`: no publication recorded, no docs); the
    runs that do publish call `cxw.publish.publish`, where the interval rule lives: through the task each would also
    generate the generation's dbt docs, a dbt compile of the whole project on this hand-made build database (about
    17 of this file's 81 CPU-s, issue 16.8), which tests/cxw/test_docs.py and every DAG run test."""
    from cxw import tasks
    from cxw.publish import current_generation, publish
    from cxw.summary import build_summary, render

    new = publish("run-27", "2025-06-26T00:00:00+00:00", D27)
    assert new["status"] == "published"
    _set_nps(home, 11.0)  # the older run's build differs
    old = tasks.publish("run-26", "2025-06-25T00:00:00+00:00", D26)
    assert old["status"] == "superseded" and old["generation_id"] == new["generation_id"]
    assert "2025-06-26" in old["reason"] and "2025-06-27" in old["reason"] and "not published" in old["reason"]
    assert current_generation() == new["generation_id"]
    con = duckdb.connect(str(home.published_db), read_only=True)
    assert con.execute("select value from kpi.kpi_daily").fetchone()[0] == 10.0
    assert con.execute("select data_interval_end from publication").fetchone()[0] == D27
    con.close()
    s = build_summary("run-26", [], None, {"results": {}}, None, old, alerts={"new_alerts": 0})
    assert s["status"] == "superseded" and "NOT PUBLISHED (superseded)" in render(s)
    # the same or a newer interval publishes
    assert publish("run-28", D27, "2025-06-28T00:00:00+00:00")["status"] == "published"


def test_the_generation_records_the_interval_its_build_covers(home):
    """dbt_build records the interval its marts cover in the build database (`_cxw.build_info`); publish labels
    the generation with it, even when the publishing run's own interval differs (another run built in between)."""
    from cxw import buildstate
    from cxw.publish import publish

    con = duckdb.connect(str(home.build_db))
    buildstate.write_build_info(con, "run-27", D27, [None, "2025-06-27"], "fp")
    con.close()
    publish("run-26", "2025-06-25T00:00:00+00:00", D26)
    con = duckdb.connect(str(home.published_db), read_only=True)
    row = con.execute("select data_interval_end, run_data_interval_end, built_by_run from publication").fetchone()
    con.close()
    assert row == (D27, D26, "run-27")


def test_a_run_of_an_older_interval_builds_to_the_published_end_and_finds_nothing_new(home, monkeypatch):
    """A re-run of an old interval (or a backfill run) after the 06-27 generation was published: dbt_build builds
    to the published interval end, not its own, so with no new raw content it is skipped instead of rebuilding the
    KPIs to 06-26 and publishing them."""
    import os

    from cxw import buildstate, tasks

    for k in ("CXW_FORCE_BUILD", "CXW_KPI_WINDOW_START", "CXW_KPI_WINDOW_END", "CXW_HISTORY_START"):
        monkeypatch.delenv(k, raising=False)
    con = duckdb.connect(str(home.build_db))
    con.execute("create schema _cxw; create schema raw_erp")
    con.execute("create table _cxw.raw_table_loads (source varchar, entity varchar, load_id varchar, "
                "new_content_rows bigint)")
    con.execute("insert into _cxw.raw_table_loads values ('erp', 'orders', 'erp-20250627T000000-a', 100)")
    con.execute("create table raw_erp.orders as select range as id from range(100)")
    con.close()
    monkeypatch.setenv("CXW_KPI_WINDOW_END", "2025-06-27")  # the 06-27 run's build
    buildstate.record_build(buildstate.build_fingerprint()["fingerprint"], "run-27")
    tasks.publish("run-27", "2025-06-26T00:00:00+00:00", D27)
    monkeypatch.delenv("CXW_KPI_WINDOW_END")
    assert tasks.build_interval_end(D26).isoformat() == D27
    rep = tasks.dbt_build(D26, run_id="rerun-26")
    assert rep["kpi_window"][1] == "2025-06-27" and "CXW_KPI_WINDOW_END" not in os.environ  # --vars, not the env
    assert rep["skipped"] is True and rep["rebuilt_to"] == D27, rep


_HOLD_LOCK = r"""
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])          # the write lock: a concurrent run's loader or dbt
print("HOLDING", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_build_db(path, seconds):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "HOLDING"
    return proc


def test_publish_and_the_build_fingerprint_wait_for_the_build_database_lock(home, monkeypatch):
    """Another process (a concurrent run without the pool) holds the build database: publish and the build
    fingerprint dbt_build starts with wait for it (CXW_BUILD_DB_LOCK_WAIT_S) instead of failing; past the budget
    they fail with DuckDB's lock error."""
    from cxw import buildstate
    from cxw.publish import publish

    monkeypatch.setenv("CXW_BUILD_DB_LOCK_WAIT_S", "60")
    holder = _hold_build_db(home.build_db, 2)
    rep = publish("run-1", "a", "b")
    assert rep["status"] == "published" and rep["lock_wait_s"] > 1, rep
    assert holder.wait(30) == 0
    holder = _hold_build_db(home.build_db, 2)
    # the fingerprint opens the file (read-only) to read the raw bookkeeping (none here): it waits too
    assert buildstate.raw_content_fingerprint() is None
    assert holder.wait(30) == 0
    monkeypatch.setenv("CXW_BUILD_DB_LOCK_WAIT_S", "0.5")
    holder = _hold_build_db(home.build_db, 2)
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            publish("run-2", "a", "b")
    finally:
        holder.wait(30)


def test_dbt_waits_for_the_build_database_lock_instead_of_failing(home, monkeypatch, caplog):
    """dbt_build's dbt (a subprocess opening the DuckDB file through dbt-duckdb) waits while a concurrent run holds
    the build database, like the loader: before, `dbt_build` failed at once on DuckDB's lock. `dbt debug` opens the
    same connection `dbt build` does, in a few seconds. The holder lets go one second after the wait began (or
    when dbt has already finished: then it did not wait)."""
    import logging
    import subprocess
    import sys
    import threading
    import time

    from cxw.dbt import run_dbt

    monkeypatch.setenv("CXW_BUILD_DB_LOCK_WAIT_S", "120")
    caplog.set_level(logging.INFO, logger="cxw.loader")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('HOLDING', flush=True); sys.stdin.readline(); c.close()", str(home.build_db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "HOLDING"
    out: dict = {}

    def build():
        try:
            out["report"] = run_dbt(["debug"])  # raises DbtError when dbt fails
        except Exception as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    t = threading.Thread(target=build)
    t.start()
    deadline = time.monotonic() + 120
    while t.is_alive() and not any("held by another process" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    holder.communicate("\n", timeout=30)
    t.join(120)
    assert "error" not in out, out.get("error")
    rep = out["report"]
    assert rep["returncode"] == 0 and rep["lock_wait_s"] >= 0.9, rep


def test_the_marts_gate_checks_freshness_against_the_interval_the_build_covers(tmp_path):
    """A re-run of the interval ending 06-26 after 06-27 was published builds to 06-27 (its KPIs reach 06-26): the
    marts gate's freshness check (newest KPI day 1-3 days before the interval end) measures from the build's
    interval end in `_cxw.build_info`, not from the run's own, which would call the newest day "in the future"."""
    from cxw import buildstate
    from cxw.gate import validate_marts as validate

    build = tmp_path / "build.duckdb"
    con = duckdb.connect(str(build))
    con.execute("create schema kpi")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 10.0 as value, 40 as n, "
                "date '2025-06-20' + cast(i as integer) as kpi_date from range(7) as t(i)")  # up to 06-26
    buildstate.write_build_info(con, "rerun-26", D27, [None, "2025-06-27"], "fp")
    con.close()
    rep = validate("rerun-26", "2025-06-25T00:00:00+00:00", D26, build_db=build, out_dir=tmp_path / "run",
                   published_db=tmp_path / "none.duckdb")
    assert rep["status"] == "passed", rep

def test_a_rerun_that_rereads_the_same_records_keeps_the_generation_and_a_newer_event_makes_a_new_one(home):
    """At-least-once (issue 20 freshness): a run that re-reads records it already had (a lookback window, a retried
    task) stages them again with a later `_extracted_at`; nothing BI reads changed, so publish keeps the generation,
    whose `publication_freshness` says how fresh it is. A newer event staged is new content: a new generation."""
    from cxw.publish import publish

    con = duckdb.connect(str(home.build_db))
    con.execute("create table staging.stg_trustpilot__reviews as select timestamp '2025-06-30 16:48:22' as created_at, "
                "cast(null as timestamp) as updated_at, timestamp '2026-12-06 22:13:34' as _extracted_at")
    con.close()
    first = publish("run-1", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00")
    con = duckdb.connect(str(home.build_db))
    con.execute("update staging.stg_trustpilot__reviews set _extracted_at = timestamp '2026-12-06 22:15:45'")
    con.close()
    again = publish("run-2", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00")
    assert again["status"] == "unchanged" and again["generation_id"] == first["generation_id"], again
    con = duckdb.connect(str(home.build_db))
    con.execute("insert into staging.stg_trustpilot__reviews values (timestamp '2025-06-30 20:01:00', null, "
                "timestamp '2026-12-06 22:16:00')")
    con.close()
    newer = publish("run-3", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00")
    assert newer["status"] == "published" and newer["generation_id"] != first["generation_id"], newer
    con = duckdb.connect(str(home.published_db), read_only=True)
    assert con.execute("select max_event_at, loaded_at from publication_freshness where source = 'trustpilot'") \
        .fetchone() == (datetime(2025, 6, 30, 20, 1), datetime(2026, 12, 6, 22, 16))
    con.close()


# --- atomicity checked on the files themselves (no DuckDB cache involved) ---------------------------------------

_READ_VALUE = ("import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
               "print(con.execute('select value from kpi.kpi_daily').fetchone()[0])")


def _value_in_fresh_process(path) -> float:
    """The NPS value a brand-new process reads from `path` (no connection, no cache shared with this process)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _READ_VALUE, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.strip())


def test_publish_switches_by_atomic_rename_to_a_new_inode_and_never_writes_the_old_generation(home, tmp_path):
    """The switch is a rename of a new file onto the published path, never a write into the file BI has open:
    * after publishing, the published path is a new inode, the new generation's file (a hard link to it);
    * the previous generation's file is byte-for-byte what it was;
    * a reader that opened the published path before the switch reads, through that open descriptor, exactly the
      old generation's bytes — and a fresh process opening a copy of those bytes sees the old value.
    A publish that copies the new generation onto the published path in place fails all three."""
    import os

    from cxw.publish import publish

    first = publish("run-1", "a", "b")
    gen1 = home.generations_dir / f"{first['generation_id']}.duckdb"
    gen1_bytes = gen1.read_bytes()
    ino_before = os.stat(home.published_db).st_ino
    assert ino_before == os.stat(gen1).st_ino
    assert _value_in_fresh_process(home.published_db) == 10.0

    reader = open(home.published_db, "rb")  # a BI reader holding the published file open across the switch
    try:
        _set_nps(home, 55.0)
        second = publish("run-2", "a", "b")
        assert second["status"] == "published"
        gen2 = home.generations_dir / f"{second['generation_id']}.duckdb"
        st = os.stat(home.published_db)
        assert st.st_ino != ino_before, "published path kept its inode: the new generation was written in place"
        assert st.st_ino == os.stat(gen2).st_ino, "published path is not the new generation's file"
        assert home.published_db.read_bytes() == gen2.read_bytes()
        assert gen1.read_bytes() == gen1_bytes, "the previous generation's file changed during publish"
        reader.seek(0)
        seen = reader.read()
    finally:
        reader.close()
    assert seen == gen1_bytes, "a reader opened before the switch sees bytes of the new generation"
    snapshot = tmp_path / "reader_snapshot.duckdb"
    snapshot.write_bytes(seen)
    assert _value_in_fresh_process(snapshot) == 10.0
    assert _value_in_fresh_process(home.published_db) == 55.0
    assert _value_in_fresh_process(gen1) == 10.0
