"""GA4 export extractor on generated daily NDJSON files (in-memory DuckDB, never the warehouse)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from conftest import fingerprint, read_load, run_kwargs
from extractors import ga4

UTC = timezone.utc
D = lambda y, m, d: datetime(y, m, d, tzinfo=UTC)  # noqa: E731


@pytest.fixture
def export(demo_dir, tmp_path):
    """Ten days of the demo export (2025-03-01..10), one of them gzipped."""
    out = tmp_path / "export"
    out.mkdir()
    for day in range(1, 11):
        src = demo_dir / "ga4" / f"events_202503{day:02d}.json"
        if day == 5:
            with open(src, "rb") as fi, gzip.open(out / f"events_202503{day:02d}.json.gz", "wb") as fo:
                fo.write(fi.read())
        else:
            shutil.copy(src, out / src.name)
    return out


def settings(export, **kw):
    return ga4.Ga4Settings(export_url=str(export), history_start=D(2025, 3, 1), **kw)


def lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [l for l in fh if l.strip()]


def test_full_then_incremental_and_redelivery(export, dirs):
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
    assert len(rep["loads"]) == 10
    total = sum(len(lines(p)) for p in export.iterdir())
    assert sum(l["rows"] for l in rep["loads"]) == total
    assert all(l["rows_per_s"] for l in rep["loads"])
    # every day has the same, explicit schema; INT64 kept as strings; nested params preserved
    schemas = {pq.read_schema(os.path.join(l["path"], "part-00000.parquet")).remove_metadata().to_string()
               for l in rep["loads"]}
    assert len(schemas) == 1
    rows, meta = read_load(rep["loads"][0]["path"])
    assert isinstance(rows[0]["event_timestamp"], str) and rows[0]["_export_date"].isoformat() == "2025-03-01"
    assert isinstance(rows[0]["event_params"], list) and "value" in rows[0]["event_params"][0]
    state = json.loads((dirs["state"] / "ga4.json").read_text())
    assert state["entities"]["events"]["cursor"] == "2025-03-10" and len(state["entities"]["events"]["days"]) == 10

    # nothing changed: one empty load for accounting, cursor unchanged
    rep2 = ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
    assert [(l["rows"], l["cursor_after"]) for l in rep2["loads"]] == [(0, "2025-03-10")]
    assert json.loads(open(os.path.join(rep2["loads"][0]["path"], "_load.json")).read())["files"] == []

    # day 9 re-delivered with late rows (inside the 3-day lookback) -> landed again as a new load
    day9 = export / "events_20250309.json"
    extra = lines(export / "events_20250308.json")[:5]
    with open(day9, "a") as fh:
        fh.writelines(extra)
    rep3 = ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
    assert len(rep3["loads"]) == 1
    rows9, meta9 = read_load(rep3["loads"][0]["path"])
    assert meta9["export_date"] == "2025-03-09" and len(rows9) == len(lines(day9))


def test_bad_line_dead_lettered_good_lines_continue(export, dirs):
    day = export / "events_20250302.json"
    good = lines(day)
    with open(day, "w") as fh:
        fh.writelines(good[:3] + ['{"event_date": "20250302", "event_name": "trunc\n'] + good[3:])
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 2), D(2025, 3, 3), mode="window"))
    [load] = rep["loads"]
    assert load["rows"] == len(good) and load["dead_letters"] == 1
    [dl] = list((dirs["deadletter"] / "ga4" / load["load_id"]).iterdir())
    letter = json.loads(dl.read_text())
    assert letter["line"] == 4 and letter["file"].endswith("events_20250302.json")
    assert letter["payload"].startswith('{"event_date": "20250302"')


def test_unknown_fields_kept_in_extra_json(export, dirs):
    day = export / "events_20250303.json"
    rows = [json.loads(l) for l in lines(day)]
    rows[0]["brand_new_field"] = {"x": 1}
    rows[0].setdefault("device", {})["new_device_attr"] = "abc"
    with open(day, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 3), D(2025, 3, 4), mode="window"))
    out, _ = read_load(rep["loads"][0]["path"])
    extras = [json.loads(r["_extra_json"]) for r in out if r["_extra_json"]]
    assert extras == [{"brand_new_field": {"x": 1}, "device": {"new_device_attr": "abc"}}]


def test_a_number_the_line_path_cannot_type_is_named_never_landed_as_a_silent_null(export, dirs):
    """json_transform (the line path) turns a DOUBLE it cannot read into NULL: event_value_in_usd '1,5' and a param's
    double_value 'abc' used to land as NULL with nothing to tell. The row lands with the top-level fields named in
    _type_error_fields and their JSON as delivered in _type_error_values (staging quarantines the event); the other
    rows, and a number given as text that parses ('2.5'), land as they are."""
    day = export / "events_20250304.json"
    rows = [json.loads(l) for l in lines(day)]
    rows[1]["event_value_in_usd"] = "1,5"
    rows[1]["event_params"].append({"key": "price", "value": {"double_value": "abc"}})
    rows[2]["event_value_in_usd"] = "2.5"
    with open(day, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 4), D(2025, 3, 5), mode="window"))
    out, _ = read_load(rep["loads"][0]["path"])
    assert len(out) == len(rows)
    assert out[1]["_type_error_fields"] == "event_params,event_value_in_usd"
    assert json.loads(out[1]["_type_error_values"]) == {"event_params": rows[1]["event_params"],
                                                         "event_value_in_usd": "1,5"}
    assert out[1]["event_value_in_usd"] is None
    assert [r["_type_error_fields"] for i, r in enumerate(out) if i != 1] == [None] * (len(out) - 1)
    assert out[2]["event_value_in_usd"] == 2.5


def test_a_json_boolean_in_a_double_field_is_named_never_read_as_1(export, dirs):
    """JSON true in a DOUBLE field was typed 1.0 by both paths (read_json and json_transform) and landed as a real
    value. The day goes to the line path, which names the field in _type_error_fields (staging quarantines the
    event); a boolean in a text field stays the text it always was."""
    day = export / "events_20250304.json"
    rows = [json.loads(l) for l in lines(day)]
    rows[1]["event_value_in_usd"] = True
    rows[2]["event_params"].append({"key": "price", "value": {"double_value": False}})
    rows[3].setdefault("device", {})["is_limited_ad_tracking"] = True
    with open(day, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 4), D(2025, 3, 5), mode="window"))
    out, _ = read_load(rep["loads"][0]["path"])
    assert len(out) == len(rows)
    assert out[1]["_type_error_fields"] == "event_value_in_usd"
    assert json.loads(out[1]["_type_error_values"]) == {"event_value_in_usd": True}
    assert out[2]["_type_error_fields"] == "event_params"
    assert [r["_type_error_fields"] for i, r in enumerate(out) if i not in (1, 2)] == [None] * (len(out) - 2)
    assert out[3]["device"]["is_limited_ad_tracking"] == "true"


def test_window_backfill_idempotent_and_cursor_kept(export, dirs):
    ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
    kw = run_kwargs(dirs, D(2025, 3, 4), D(2025, 3, 6), mode="window")
    a = ga4.extract(settings=settings(export), **kw)
    b = ga4.extract(settings=settings(export), **kw)
    assert [l["rows"] for l in a["loads"]] == [l["rows"] for l in b["loads"]] and len(a["loads"]) == 2
    for x, y in zip(a["loads"], b["loads"]):
        assert fingerprint(read_load(x["path"])[0]) == fingerprint(read_load(y["path"])[0])
    assert json.loads((dirs["state"] / "ga4.json").read_text())["entities"]["events"]["cursor"] == "2025-03-10"


def test_sharded_day_folder_and_gzip(export, dirs, demo_dir):
    folder = export / "events_20250311"
    folder.mkdir()
    src = lines(demo_dir / "ga4" / "events_20250311.json")
    half = len(src) // 2
    with gzip.open(folder / "000000000000.json.gz", "wt") as fh:
        fh.writelines(src[:half])
    with open(folder / "000000000001.json", "w") as fh:
        fh.writelines(src[half:])
    (export / "README.txt").write_text("not an export file")
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 11), D(2025, 3, 12), mode="window"))
    [load] = rep["loads"]
    rows, meta = read_load(load["path"])
    assert len(rows) == len(src) and meta["export_files"] == ["000000000000.json.gz", "000000000001.json"]
    assert [r["event_timestamp"] for r in rows] == [json.loads(l)["event_timestamp"] for l in src]  # file order


def test_a_gzip_day_of_several_members_reads_like_the_plain_day(export, dirs, demo_dir, tmp_path):
    # the demo's compressed export (scale L) appends a day's midnight-crossing sessions as a second gzip member
    src = (demo_dir / "ga4" / "events_20250312.json").read_bytes()
    cut = src.index(b"\n", len(src) // 3) + 1
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "events_20250312.json.gz").write_bytes(gzip.compress(src[:cut]) + gzip.compress(src[cut:]))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "events_20250312.json").write_bytes(src)
    got = []
    for folder in (gz, plain):
        d = {k: tmp_path / folder.name / k for k in ("raw", "state", "deadletter")}
        rep = ga4.extract(settings=ga4.Ga4Settings(export_url=str(folder), history_start=D(2025, 3, 12)),
                          **run_kwargs(d, D(2025, 3, 12), D(2025, 3, 13), mode="window"))
        [load] = rep["loads"]
        got.append(read_load(load["path"])[0])
    assert len(got[0]) == src.count(b"\n") and fingerprint(got[0]) == fingerprint(got[1])


def _by_day(rep):
    out = {}
    for l in rep["loads"]:
        rows, meta = read_load(l["path"])
        out[meta["export_date"]] = (fingerprint(rows), meta["duplicates_in_load"], meta["read_path"],
                                    pq.read_schema(os.path.join(l["path"], "part-00000.parquet")))
    return out


def test_fast_path_lands_exactly_what_the_line_path_lands(export, dirs, tmp_path):
    """The Arrow/DuckDB fast path (typed read_json over batches of days) and the line path produce the same rows,
    duplicate counts and one Parquet schema; duplicates are counted alike (a repeated line is added to one day)."""
    day = export / "events_20250304.json"
    with open(day, "a") as fh:
        fh.writelines(lines(day)[:2])
    fast = _by_day(ga4.extract(settings=settings(export, batch_days=4), **run_kwargs(dirs, end=D(2025, 3, 11))))
    other = {k: tmp_path / "line" / k for k in dirs}
    line = _by_day(ga4.extract(settings=settings(export, fast_path=False), **run_kwargs(other, end=D(2025, 3, 11))))
    assert sorted(fast) == sorted(line) and len(fast) == 10
    assert {v[2] for v in fast.values()} == {"fast"} and {v[2] for v in line.values()} == {"line"}
    for d in fast:
        assert fast[d][:2] == line[d][:2], d
        assert fast[d][3].remove_metadata().equals(line[d][3].remove_metadata()), d
    assert fast["2025-03-04"][1] >= 2


def test_fast_path_hands_doubtful_days_to_the_line_path(export, dirs):
    """In one batch: a truncated line (day 2), an unknown field inside an event_params element (day 3) and a
    known name at the wrong depth (day 6) each send only their own day to the line path; nothing is dropped."""
    d2, d3, d6 = (export / f"events_2025030{d}.json" for d in (2, 3, 6))
    with open(d2, "a") as fh:
        fh.write('{"event_date": "20250302", "event_name": "trunc\n')
    rows3 = [json.loads(l) for l in lines(d3)]
    rows3[5]["event_params"][0]["value"]["brand_new_value"] = 7
    d3.write_text("".join(json.dumps(r) + "\n" for r in rows3))
    rows6 = [json.loads(l) for l in lines(d6)]
    rows6[2]["hostname"] = "top-level.example.com"   # 'hostname' is only known inside device.web_info / event_dimensions
    d6.write_text("".join(json.dumps(r) + "\n" for r in rows6))
    rep = ga4.extract(settings=settings(export, batch_days=10), **run_kwargs(dirs, end=D(2025, 3, 11)))
    paths = {json.loads(open(os.path.join(l["path"], "_load.json")).read())["export_date"]: l for l in rep["loads"]}
    meta = {d: json.loads(open(os.path.join(l["path"], "_load.json")).read()) for d, l in paths.items()}
    assert {d for d, m in meta.items() if m["read_path"] == "line"} == {"2025-03-02", "2025-03-03", "2025-03-06"}
    assert paths["2025-03-02"]["dead_letters"] == 1 and paths["2025-03-02"]["rows"] == len(lines(d2)) - 1
    out3, _ = read_load(paths["2025-03-03"]["path"])
    assert [json.loads(r["_extra_json"]) for r in out3 if r["_extra_json"]] == [rows3[5]]  # whole line kept
    assert meta["2025-03-03"]["unknown_fields"] == ["brand_new_value"]
    out6, _ = read_load(paths["2025-03-06"]["path"])
    assert [json.loads(r["_extra_json"]) for r in out6 if r["_extra_json"]] == [{"hostname": "top-level.example.com"}]
    assert len(out6) == len(rows6)


# ------------------------------------------------------------------ re-delivered export days (issue 14, item 3)
def _redelivery_runs(tmp_path, dirs):
    """Extract the demo company as of A, then generate it as of B (BigQuery re-exported an old day in between,
    recent days got their late rows, new days arrived) and extract again, recording which files were opened."""
    from ga4_redelivery import OpenedFiles, generate_at, old_redelivery, snapshot

    a, b, day = old_redelivery()
    demo = tmp_path / "company"
    generate_at(demo, a)
    export = demo / "ga4"
    cfg = ga4.Ga4Settings(export_url=str(export), history_start=D(2025, 1, 1))
    first = ga4.extract(settings=cfg, **run_kwargs(dirs, end=a))
    before = snapshot(export)
    generate_at(demo, b)
    after = snapshot(export)
    with OpenedFiles(export) as opened:
        second = ga4.extract(settings=cfg, **run_kwargs(dirs, end=b))
    return dict(a=a, b=b, day=day, export=export, cfg=cfg, first=first, second=second, before=before,
                after=after, opened=opened.names)


def test_a_redelivered_day_older_than_the_lookback_is_reloaded_and_only_changed_days_are_read(tmp_path, dirs):
    from ga4_redelivery import day_of

    r = _redelivery_runs(tmp_path, dirs)
    a, day, before, after = r["a"], r["day"], r["before"], r["after"]
    name = f"events_{day:%Y%m%d}.json"
    assert (a.date() - day).days >= 6, "the re-delivered day must be older than any lookback"
    changed = {n for n in before if before[n] != after.get(n)}
    new = {n for n in after if n not in before and day_of(n) < r["b"].date()}
    # the demo: the old day changed (re-exported with its missing sessions); days older than the late-row span
    # keep their size and mtime unless re-exported, so only they can look re-delivered
    assert name in changed
    old_changed = {n for n in changed if day_of(n) < a.date() - timedelta(days=4)}
    assert name in old_changed and len(old_changed) < len(before) // 4

    # exactly the changed and the new days were opened - never an unchanged one
    assert r["opened"] == changed | new
    loads = {l["path"]: json.loads(open(os.path.join(l["path"], "_load.json")).read()) for l in r["second"]["loads"]}
    landed = {m["export_date"] for m in loads.values()}
    assert landed == {day_of(n).isoformat() for n in changed | new}
    # the re-delivered day landed again with every line of its new delivery (the first load had fewer)
    [(path, meta)] = [(p, m) for p, m in loads.items() if m["export_date"] == day.isoformat()]
    [old] = [l for l in r["first"]["loads"]
             if json.loads(open(os.path.join(l["path"], "_load.json")).read())["export_date"] == day.isoformat()]
    assert len(read_load(path)[0]) == len(lines(r["export"] / name)) > old["rows"]
    assert meta["redelivered"] is True
    assert sorted(d["export_date"] for d in r["second"]["redelivered_days"]) == \
        sorted(day_of(n).isoformat() for n in changed)
    state = json.loads((dirs["state"] / "ga4.json").read_text())["entities"]["events"]
    assert state["days"][f"{day:%Y%m%d}"] == meta["fingerprint"]


def test_a_run_with_nothing_changed_opens_no_export_file(tmp_path, dirs):
    from ga4_redelivery import OpenedFiles

    r = _redelivery_runs(tmp_path, dirs)
    with OpenedFiles(r["export"]) as opened:
        rep = ga4.extract(settings=r["cfg"], **run_kwargs(dirs, end=r["b"]))
    assert opened.names == set()
    assert [l["rows"] for l in rep["loads"]] == [0] and rep["redelivered_days"] == []


def test_a_day_redelivered_within_the_same_second_gets_a_load_id_that_sorts_after_its_earlier_load(export, dirs):
    """Staging keeps the max _load_id of an export day; ids order by UTC second, then random hex. Re-deliveries
    landed in quick succession must still sort in delivery order."""
    day = export / "events_20250303.json"
    extra = lines(export / "events_20250302.json")
    ids = []
    for i in range(8):
        if i:
            with open(day, "a") as fh:
                fh.write(extra[i])
        rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
        ids.append(max(l["load_id"] for l in rep["loads"]
                       if json.loads(open(os.path.join(l["path"], "_load.json")).read())["export_date"] == "2025-03-03"))
    assert ids == sorted(ids) and len(set(ids)) == 8


KILL_MID_EXTRACT = """
import os, signal, sys
from datetime import datetime, timezone
sys.path.insert(0, os.getcwd())
from extractors import ga4
real = ga4.write_day_table

def write_then_die(*a, **kw):
    n = real(*a, **kw)
    os.kill(os.getpid(), signal.SIGKILL)   # killed like an OOM kill or a worker loss: no cleanup runs
    return n

ga4.write_day_table = write_then_die
raw, state, dl, export = sys.argv[1:5]
ga4.extract(raw_root=raw, state_root=state, deadletter_root=dl,
            window_start=datetime(2025, 1, 1, tzinfo=timezone.utc), window_end=datetime(2025, 3, 11, tzinfo=timezone.utc),
            settings=ga4.Ga4Settings(export_url=export, history_start=datetime(2025, 3, 1, tzinfo=timezone.utc)))
"""


def test_temp_dirs_of_a_killed_extract_are_removed_by_the_next_successful_run(export, dirs):
    """SIGKILL in the middle of landing leaves .tmp-<load_id> dirs (their parts half written); the next run of the
    source removes them at once (their writer process is gone), not an hour later; a live writer's dir stays."""
    import signal
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", KILL_MID_EXTRACT, str(dirs["raw"]), str(dirs["state"]),
                           str(dirs["deadletter"]), str(export)], cwd=repo, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    edir = dirs["raw"] / "ga4" / "events"
    left = [p for p in os.listdir(edir) if p.startswith(".tmp-")]
    assert left, "the killed extract should have left its temp dirs"
    # a concurrent run's temp dir, written by a live process on this host: kept
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ticks = open(f"/proc/{live.pid}/stat").read().rsplit(")", 1)[-1].split()[19]   # its start time
        busy = edir / ".tmp-ga4-20990101T000000-0000aaaa"
        busy.mkdir()
        (busy / "_owner").write_text(f"{__import__('socket').gethostname()} {live.pid} {ticks}")
        rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, end=D(2025, 3, 11)))
        assert sum(l["rows"] for l in rep["loads"]) == sum(len(lines(p)) for p in export.iterdir())
        assert sorted(p for p in os.listdir(edir) if p.startswith(".tmp-")) == [busy.name]
    finally:
        live.kill()
        live.wait()
    # every load dir holds only its parts and _load.json (the owner file is not published)
    for p in os.listdir(edir):
        if not p.startswith("."):
            assert sorted(os.listdir(edir / p)) in (["_load.json"], ["_load.json", "part-00000.parquet"])


def test_a_non_utf8_byte_dead_letters_its_line_and_the_rest_of_the_day_lands(export, dirs, caplog):
    """One byte that is not UTF-8 (a Latin-1 'é') used to fail all of GA4 with a DuckDB CSV error quoting the event
    line (user_pseudo_id included) into the task log. Now that line is dead-lettered, exactly and owner-only, and
    the day's other lines (and the other days) land; no log record holds the line or its identifiers."""
    import base64
    import logging
    import stat

    day = export / "events_20250302.json"
    raw = day.read_bytes().split(b"\n")
    raw[3] = raw[3].replace(b'"event_name": "', b'"event_name": "caf\xe9 ', 1)
    day.write_bytes(b"\n".join(raw))
    ident = json.loads(raw[3].decode("latin-1"))["user_pseudo_id"]
    caplog.set_level(logging.DEBUG)
    rep = ga4.extract(settings=settings(export), **run_kwargs(dirs, D(2025, 3, 1), D(2025, 3, 4), mode="window"))
    by_day = {read_load(l["path"])[1]["export_date"]: l for l in rep["loads"]}
    assert sorted(by_day) == ["2025-03-01", "2025-03-02", "2025-03-03"]
    load = by_day["2025-03-02"]
    assert load["rows"] == len([l for l in raw if l.strip()]) - 1 and load["dead_letters"] == 1
    ldir = dirs["deadletter"] / "ga4" / load["load_id"]
    [dl] = list(ldir.iterdir())
    letter = json.loads(dl.read_text())
    assert letter["line"] == 4 and letter["file"].endswith("events_20250302.json")
    assert base64.b64decode(letter["payload_base64"]) == raw[3]
    assert letter["reason"] == "GA4 export line is not valid UTF-8"
    assert stat.S_IMODE(dl.stat().st_mode) == 0o600
    assert stat.S_IMODE(ldir.stat().st_mode) == 0o700 and stat.S_IMODE(ldir.parent.stat().st_mode) == 0o700
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert ident not in logged and "event_params" not in logged


def test_a_duckdb_read_error_is_reported_without_the_line_it_quotes(tmp_path):
    """The message of a DuckDB CSV error quotes the offending line; what the extractor reports keeps none of it."""
    import duckdb

    from extractors.ga4.helpers import safe_duck_error

    f = tmp_path / "events_20250302.json"
    f.write_bytes(b'{"user_pseudo_id": "319293963.1740874724", "event_name": "caf\xe9"}\n')
    with pytest.raises(duckdb.Error) as exc:
        duckdb.sql(f"SELECT * FROM read_csv('{f}', columns={{'line': 'VARCHAR'}}, header=false, delim=E'\\x01', "
                   "quote='', escape='', auto_detect=false)").fetchall()
    assert "319293963" in str(exc.value)      # what DuckDB says ...
    safe = safe_duck_error(exc.value)
    assert "319293963" not in safe and "caf" not in safe and "CSV Error" in safe   # ... and what we report


def test_intraday_tables_are_read_only_for_days_without_a_daily_table(demo_dir, dirs, tmp_path):
    """CXW_GA4_INTRADAY: a day whose daily table has not landed is read from events_intraday_YYYYMMDD (rows marked
    with `_export_table`); a day listed with both is read from its daily table only; without the setting intraday
    tables are ignored (as before)."""
    out = tmp_path / "intraday_export"
    out.mkdir()
    shutil.copy(demo_dir / "ga4" / "events_20250301.json", out / "events_20250301.json")
    day2 = lines(demo_dir / "ga4" / "events_20250302.json")
    (out / "events_intraday_20250301.json").write_text("".join(day2[:3]).replace('"20250302"', '"20250301"'))
    (out / "events_intraday_20250302.json").write_text("".join(day2[:40]))
    rep = ga4.extract(settings=settings(out, intraday=True), **run_kwargs(dirs, end=D(2025, 3, 2) + timedelta(hours=15)))
    assert rep["intraday_days"] == ["2025-03-02"]
    got = {}
    for load in rep["loads"]:
        rows, meta = read_load(load["path"])
        got[meta["export_date"]] = (meta["export_table"], {r["_export_table"] for r in rows}, len(rows))
    assert got == {"2025-03-01": ("events_20250301", {"events_20250301"}, len(lines(out / "events_20250301.json"))),
                   "2025-03-02": ("events_intraday_20250302", {"events_intraday_20250302"}, 40)}
    # the intraday table grew: landed again; then the daily table landed (intraday deleted): landed as the day's load
    (out / "events_intraday_20250302.json").write_text("".join(day2[:60]))
    rep = ga4.extract(settings=settings(out, intraday=True), **run_kwargs(dirs, end=D(2025, 3, 2) + timedelta(hours=16)))
    assert [(load["rows"], read_load(load["path"])[1]["export_table"]) for load in rep["loads"]] == \
        [(60, "events_intraday_20250302")]
    (out / "events_intraday_20250302.json").unlink()
    shutil.copy(demo_dir / "ga4" / "events_20250302.json", out / "events_20250302.json")
    rep = ga4.extract(settings=settings(out, intraday=True), **run_kwargs(dirs, end=D(2025, 3, 3) + timedelta(hours=6)))
    assert [(load["rows"], read_load(load["path"])[1]["export_table"]) for load in rep["loads"]] == \
        [(len(day2), "events_20250302")]
    assert ga4.Ga4Settings.intraday_from_env({"CXW_SCHEDULE": "hourly"}) is True
    assert ga4.Ga4Settings.intraday_from_env({"CXW_SCHEDULE": "hourly", "CXW_GA4_INTRADAY": "0"}) is False
    assert ga4.Ga4Settings.intraday_from_env({}) is False


def test_without_the_intraday_setting_intraday_tables_are_ignored(demo_dir, dirs, tmp_path):
    out = tmp_path / "intraday_export"
    out.mkdir()
    shutil.copy(demo_dir / "ga4" / "events_20250301.json", out / "events_20250301.json")
    shutil.copy(demo_dir / "ga4" / "events_20250302.json", out / "events_intraday_20250302.json")
    rep = ga4.extract(settings=settings(out), **run_kwargs(dirs, end=D(2025, 3, 3)))
    assert [read_load(load["path"])[1]["export_date"] for load in rep["loads"]] == ["2025-03-01"]
