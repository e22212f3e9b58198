"""The raw gate on real landed files (contracts.md §4 layout, Parquet + _load.json): volume vs previous loads,
schema (missing column / changed type), ranges, fail-closed persistence, Data Docs, and no values in results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    for k in ("CXW_GATE_ACCEPT_LOADS", "CXW_GATE_VOLUME_MIN_ROWS", "CXW_GATE_VOLUME_DROP"):
        monkeypatch.delenv(k, raising=False)
    from cxw.config import paths

    return paths()


def _land(raw: Path, source: str, entity: str, n: int, seq: int, table_fn, cursor_before="2025-06-01T00:00:00Z",
          **meta) -> str:
    load_id = f"{source}-20250601T{seq:06d}-{seq:08x}"
    d = raw / source / entity / load_id
    d.mkdir(parents=True)
    files = []
    if n:
        pq.write_table(table_fn(n, load_id), d / "part-00000.parquet")
        files = [{"path": "part-00000.parquet", "rows": n, "sha256": "x"}]
    (d / "_load.json").write_text(json.dumps({
        "load_id": load_id, "source": source, "entity": entity, "extracted_at": "2025-06-01T00:00:00Z",
        "window_start": "2025-05-31T00:00:00Z", "window_end": "2025-06-01T00:00:00Z",
        "cursor_before": cursor_before, "cursor_after": "x", "rows": n, "files": files, "dead_letters": 0,
        "duplicates_in_load": 0, "mode": "incremental", **meta}))
    return load_id


def _feedback(n, load_id, drop=(), value=lambda i: str(i % 11), email_in_value=False):
    cols = {
        "id": pa.array([f"{load_id}-{i}" for i in range(n)]),
        "createdAt": pa.array(["2025-05-31T10:00:00Z"] * n), "updatedAt": pa.array(["2025-05-31T10:00:00Z"] * n),
        "archived": pa.array([False] * n),
        "properties__hs_survey_type": pa.array(["NPS"] * n),
        "properties__hs_value": pa.array(["jane.doe@example.com" if email_in_value else value(i) for i in range(n)]),
        "properties__hs_submission_timestamp": pa.array(["2025-05-31T10:00:00Z"] * n),
        "properties__hs_contact_email_rollup": pa.array([f"person{i}@example.com" for i in range(n)]),
        "_load_id": pa.array([load_id] * n), "_record_seq": pa.array(range(n), pa.int64()),
    }
    return pa.table({k: v for k, v in cols.items() if k not in drop})


def _history(raw, n_deltas=7, rows=120):
    _land(raw, "hubspot", "feedback_submissions", 5000, 1, _feedback, cursor_before=None)  # first (history) load
    for i in range(n_deltas):
        _land(raw, "hubspot", "feedback_submissions", rows + 7 * i, 10 + i, _feedback)


def test_a_90_percent_volume_drop_blocks_and_names_load_entity_and_counts(home):
    from cxw.gate import ValidationFailed, validate_raw

    _history(home.raw)
    assert validate_raw("run-1")["status"] == "passed"  # history + 7 normal deltas
    bad = _land(home.raw, "hubspot", "feedback_submissions", 12, 99, _feedback)  # median 141 → 12 is a 91% drop
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-2", [bad])
    msg = str(exc.value)
    assert "suite raw.load_log" in msg and "expect_column_pair_values_a_to_be_greater_than_b" in msg
    assert f"{bad}: raw.hubspot__feedback_submissions has 12 rows vs median 141" in msg
    assert "1 offending load(s)" in msg and "publish blocked" in msg
    docs = home.runs / "run-2" / "data_docs" / "raw" / "index.html"
    assert docs.exists() and f"Data Docs: {docs}" in msg
    assert 'href="raw/index.html"' in (home.runs / "run-2" / "data_docs" / "index.html").read_text()
    rep = json.loads((home.runs / "run-2" / "validation_raw.json").read_text())
    assert rep["status"] == "failed" and rep["errors"] == 1

    # Fail closed across runs: the bad load is already in the raw tables, so it keeps blocking until reviewed.
    with pytest.raises(ValidationFailed, match=bad):
        validate_raw("run-3", [])
    import os

    os.environ["CXW_GATE_ACCEPT_LOADS"] = bad
    try:
        assert validate_raw("run-4", [])["status"] == "passed"
    finally:
        del os.environ["CXW_GATE_ACCEPT_LOADS"]
    assert validate_raw("run-5", [])["new_loads"] == 0  # accepted: recorded in the gate's verdicts


def test_an_ordinary_dip_passes_and_a_small_baseline_only_warns(home, monkeypatch):
    from cxw.gate import validate_raw

    _history(home.raw)
    validate_raw("run-1")
    _land(home.raw, "hubspot", "feedback_submissions", 40, 50, _feedback)  # −72%: a bad day, not a broken feed
    assert validate_raw("run-2")["errors"] == 0
    monkeypatch.setenv("CXW_GATE_VOLUME_MIN_ROWS", "1000")  # baseline below the blocking minimum: warn only
    _land(home.raw, "hubspot", "feedback_submissions", 3, 51, _feedback)
    rep = validate_raw("run-3")
    assert rep["status"] == "passed" and rep["warnings"] == 1
    assert "has 3 rows vs median" in rep["warned_checks"][0]


def test_ga4_day_loads_are_compared_with_other_days_and_a_redelivered_good_day_supersedes(home):
    import datetime as dt

    from cxw.gate import ValidationFailed, validate_raw

    def day_load(day: dt.date, n: int, seq: int, first=False) -> str:
        def events(n, load_id):
            return pa.table({"event_date": [day.strftime("%Y%m%d")] * n, "event_timestamp": ["1"] * n,
                             "event_name": ["page_view"] * n, "user_pseudo_id": ["u"] * n,
                             "_export_date": pa.array([day] * n)})
        return _land(home.raw, "ga4", "events", n, seq, events, export_date=day.isoformat(),
                     cursor_before=None if first else "2025-05-19")

    days = [dt.date(2025, 5, 20) + dt.timedelta(days=i) for i in range(8)]
    for i, d in enumerate(days):
        day_load(d, 600 + 10 * i, 100 + i, first=(i == 0))
    assert validate_raw("run-1")["status"] == "passed"
    truncated = day_load(days[-1], 30, 200)  # the last day re-delivered with 5% of its events
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-2", [truncated])
    assert f"{truncated}: raw.ga4__events export day 2025-05-27 has 30 rows vs median" in str(exc.value)
    day_load(days[-1], 675, 201)  # the vendor re-delivers the full day: a newer load of the same day
    rep = validate_raw("run-3")
    assert rep["status"] == "passed"


def test_a_dropped_or_retyped_column_blocks_with_the_column_named(home):
    from cxw.gate import ValidationFailed, validate_raw

    _history(home.raw, n_deltas=1)
    validate_raw("run-1")
    lid = _land(home.raw, "hubspot", "feedback_submissions", 150, 60,
                lambda n, l: _feedback(n, l, drop=("properties__hs_value",)))
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-2", [lid])
    msg = str(exc.value)
    assert "suite raw.hubspot__feedback_submissions: expect_column_to_exist on table raw.hubspot.feedback_submissions" \
        " column properties__hs_value failed" in msg

    def retyped(n, load_id):
        t = _feedback(n, load_id)
        return t.set_column(t.schema.get_field_index("archived"), "archived", pa.array(["no"] * n))
    lid2 = _land(home.raw, "hubspot", "feedback_submissions", 150, 61, retyped)
    with pytest.raises(ValidationFailed, match="expect_column_values_to_be_of_type on table "
                                               "raw.hubspot.feedback_submissions column archived"):
        validate_raw("run-3", [lid2])


def test_out_of_range_feed_blocks_but_a_few_dirty_rows_pass_to_quarantine(home):
    from cxw.gate import ValidationFailed, validate_raw

    _history(home.raw, n_deltas=1)
    validate_raw("run-1")
    # 2% non-numeric scores: staging quarantines them, the gate lets the batch through.
    _land(home.raw, "hubspot", "feedback_submissions", 150, 70,
          lambda n, l: _feedback(n, l, value=lambda i: "ten" if i % 50 == 0 else str(i % 11)))
    assert validate_raw("run-2")["errors"] == 0
    # A feed of e-mail addresses where scores belong: broken, blocked — and no value in results, docs, message.
    lid = _land(home.raw, "hubspot", "feedback_submissions", 150, 71,
                lambda n, l: _feedback(n, l, email_in_value=True))
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-3", [lid])
    msg = str(exc.value)
    assert "expect_column_values_to_match_regex on table raw.hubspot.feedback_submissions column " \
           "properties__hs_value" in msg and "150 offending row(s) of 150" in msg
    assert not EMAIL.search(msg)
    run_dir = home.runs / "run-3"
    leaked = [f for f in run_dir.rglob("*") if f.suffix in (".json", ".html", ".yml", ".txt")
              and EMAIL.search(f.read_text(errors="ignore"))]
    assert not leaked, f"values leaked into GE results / Data Docs: {leaked[:5]}"


def test_volume_of_a_delta_is_judged_per_hour_of_its_window(home):
    """Re-running an interval whose cursor already reached its end extracts a window of minutes: 0 rows there is
    expected, not a 100% drop; the same 0 rows over a full day's window still blocks."""
    from cxw.gate import ValidationFailed, validate_raw

    _history(home.raw)
    assert validate_raw("run-1")["status"] == "passed"
    rerun = _land(home.raw, "hubspot", "feedback_submissions", 0, 98, _feedback,
                  window_start="2025-05-31T23:50:00Z", window_end="2025-06-01T00:00:00Z")
    rep = validate_raw("run-2", [rerun])
    assert rep["status"] == "passed"
    empty_day = _land(home.raw, "hubspot", "feedback_submissions", 0, 99, _feedback)
    with pytest.raises(ValidationFailed, match=f"{empty_day}: raw.hubspot__feedback_submissions has 0 rows vs median 141"):
        validate_raw("run-3", [empty_day])


# ----------------------------------------------------------------------------------- a quiet day is not a fault

def _daily(raw: Path, day, n: int, seq: int, overlap_hours: int = 1, **meta) -> str:
    """The load of a scheduled daily delta for `day`: cursor at the day's start (the previous interval's end), window
    from the cursor minus the overlap to the interval end."""
    import datetime as dt

    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    cursor = end - dt.timedelta(days=1)
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return _land(raw, "hubspot", "feedback_submissions", n, seq, _feedback, cursor_before=iso(cursor),
                 window_start=iso(cursor - dt.timedelta(hours=overlap_hours)), window_end=iso(end), **meta)


def _volume(home, run_id: str) -> list[dict]:
    """Each new load's volume inputs, as the run's validation_raw.json records them."""
    return json.loads((home.runs / run_id / "validation_raw.json").read_text())["volume"]


def _days(n: int, first=None):
    import datetime as dt

    first = first or dt.date(2025, 5, 5)  # a Monday
    return [first + dt.timedelta(days=i) for i in range(n)]


def test_a_95_percent_drop_after_3_normal_days_only_warns_and_the_summary_lists_it(home):
    """A baseline of 3 loads (the day after a second extraction has 1) is too short to tell a quiet day from a
    broken feed: the drop publishes with a warning, listed in the run summary."""
    from cxw import tasks
    from cxw.gate import validate_raw

    _land(home.raw, "hubspot", "feedback_submissions", 5000, 1, _feedback, cursor_before=None)  # history load
    days = _days(4)
    for i, d in enumerate(days[:3]):
        _daily(home.raw, d, 120 + 5 * i, 10 + i)
    assert validate_raw("run-1")["status"] == "passed"
    quiet = _daily(home.raw, days[3], 6, 20)  # 95% below the median 125
    rep = validate_raw("run-2", [quiet])
    assert rep["status"] == "passed" and rep["errors"] == 0 and rep["warnings"] == 1
    warned = rep["warned_checks"][0]
    assert f"{quiet}: raw.hubspot__feedback_submissions has 6 rows vs median 125 of its 3 previous comparable " \
           f"loads (warn only: a block needs 7 comparable loads)" in warned
    assert [v for v in _volume(home, "run-2") if v["load_id"] == quiet][0]["blocking"] is False
    tasks.summarize("run-2", [], None, None, None, None, raw_validation=rep)
    text = (home.runs / "run-2" / "summary.txt").read_text()
    assert "Raw gate: passed" in text and "1 warnings" in text and f"{quiet}: raw.hubspot__feedback_submissions " \
        "has 6 rows" in text


def test_a_95_percent_drop_after_14_normal_days_blocks_and_says_how_to_accept(home, monkeypatch):
    from cxw.gate import ValidationFailed, validate_raw

    _land(home.raw, "hubspot", "feedback_submissions", 5000, 1, _feedback, cursor_before=None)
    days = _days(15)
    for i, d in enumerate(days[:14]):
        _daily(home.raw, d, 120 + (i % 3) * 5, 10 + i)
    assert validate_raw("run-1")["status"] == "passed"
    quiet = _daily(home.raw, days[14], 6, 40)
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-2", [quiet])
    msg = str(exc.value)
    # the lower of the two medians: the Mondays so far (120, 125) and the last 7 days (125)
    assert f"{quiet}: raw.hubspot__feedback_submissions has 6 rows vs median 122.5 of its 2 previous same-weekday " \
           "loads (lower than the median of its last 7 comparable loads)" in msg and "warn only" not in msg
    assert f"accept after review: run again with CXW_GATE_ACCEPT_LOADS={quiet}" in msg
    assert json.loads((home.runs / "run-2" / "validation_raw.json").read_text())["accept_hint"].endswith(
        "does not check them again).")
    monkeypatch.setenv("CXW_GATE_ACCEPT_LOADS", quiet)  # what the message says
    assert validate_raw("run-3")["status"] == "passed"


def test_a_daily_delta_is_compared_with_the_same_weekday_once_there_are_enough_of_them(home):
    """Weekly seasonality: Sundays are quiet. With 7 weeks of daily deltas a Sunday is compared with the last 7
    Sundays (a normal Sunday passes, a broken one blocks); a weekday with a Sunday's volume blocks."""
    from cxw.gate import ValidationFailed, validate_raw

    days = _days(52)  # Monday 2025-05-05 .. Wednesday 2025-06-25: 7 full weeks, then Mon–Wed
    _land(home.raw, "hubspot", "feedback_submissions", 5000, 1, _feedback, cursor_before=None)
    for i, d in enumerate(days[:49]):
        _daily(home.raw, d, 100 + i % 3 if d.weekday() == 6 else 1000 + 10 * (i % 3), 10 + i)
    rep = validate_raw("run-1")
    # the first Sunday (6 loads before it) warns; every later Sunday is no drop against the Sundays before it
    assert rep["status"] == "passed" and rep["warnings"] == 1, rep["warned_checks"]
    assert "has 100 rows vs median 1010 of its 6 previous comparable loads (warn only" in rep["warned_checks"][0]
    assert "1 offending load(s)" in rep["warned_checks"][0]
    sunday = days[48]  # the 7th Sunday
    assert sunday.weekday() == 6
    # a re-run of the last Sunday's interval with its normal volume: vs the Sundays (median 101), not the week
    normal_sunday = _daily(home.raw, sunday, 97, 100)
    rep = validate_raw("run-2", [normal_sunday])
    row = [v for v in _volume(home, "run-2") if v["load_id"] == normal_sunday][0]
    assert (row["baseline"], row["baseline_loads"], row["blocking"]) == ("same-weekday", 7, True)
    assert rep["status"] == "passed" and rep["warnings"] == 0
    broken_sunday = _daily(home.raw, sunday, 5, 101)
    with pytest.raises(ValidationFailed, match=f"{broken_sunday}: raw.hubspot__feedback_submissions has 5 rows vs "
                                               f"median 101 of its 7 previous same-weekday loads"):
        validate_raw("run-3", [broken_sunday])
    monday = _daily(home.raw, days[49], 97, 102)  # a Monday with a Sunday's volume: 90% below the Mondays
    with pytest.raises(ValidationFailed, match=f"{monday}: raw.hubspot__feedback_submissions has 97 rows vs "
                                               f"median 1010 of its 7 previous same-weekday loads"):
        validate_raw("run-4", [monday])


def test_loads_are_compared_only_with_loads_of_their_kind(home, monkeypatch):
    """A history load (first run, or a full re-read from the history start) is never the baseline of a delta, a
    backfill window never a history load, a snapshot only a snapshot."""
    from cxw.gate import validate_raw

    monkeypatch.setenv("CXW_HISTORY_START", "2023-06-01")
    first = _land(home.raw, "hubspot", "feedback_submissions", 5000, 1, _feedback, cursor_before=None,
                  window_start="1970-01-01T00:00:00Z")
    backfill = _land(home.raw, "hubspot", "feedback_submissions", 100, 2, _feedback, cursor_before=None,
                     mode="window")
    reread = _land(home.raw, "hubspot", "feedback_submissions", 5100, 3, _feedback,
                   window_start="2023-06-01T00:00:00Z")
    snap = _land(home.raw, "hubspot", "feedback_submissions", 40, 4, _feedback, cursor_before=None,
                 snapshot=True)
    delta = _daily(home.raw, _days(1)[0], 120, 5)
    assert validate_raw("run-1")["status"] == "passed"
    kinds = {v["load_id"]: (v["kind"], v["baseline_loads"]) for v in _volume(home, "run-1")}
    assert kinds == {first: ("history", 0), backfill: ("window", 0), reread: ("history", 1),
                     snap: ("snapshot", 0), delta: ("delta", 0)}


def test_an_entity_that_never_delivered_a_row_passes(home):
    """Empty is a valid state: loads of 0 rows, with no file or with an empty file without columns, neither fail
    the schema checks nor the volume check."""
    from cxw.gate import validate_raw

    for i, d in enumerate(_days(10)):
        _daily(home.raw, d, 0, 10 + i)
    lid = "hubspot-20250601T000099-00000063"
    d = home.raw / "hubspot" / "feedback_submissions" / lid
    d.mkdir(parents=True)
    pq.write_table(pa.table({}), d / "part-00000.parquet")
    (d / "_load.json").write_text(json.dumps({
        "load_id": lid, "source": "hubspot", "entity": "feedback_submissions", "extracted_at": "2025-06-01T00:00:00Z",
        "window_start": "2025-05-15T00:00:00Z", "window_end": "2025-05-16T00:00:00Z",
        "cursor_before": "2025-05-15T00:00:00Z", "cursor_after": "x", "rows": 0, "mode": "incremental",
        "files": [{"path": "part-00000.parquet", "rows": 0, "sha256": "x"}], "dead_letters": 0,
        "duplicates_in_load": 0}))
    rep = validate_raw("run-1")
    assert rep["status"] == "passed" and rep["errors"] == 0 and rep["warnings"] == 0 and rep["new_loads"] == 11
