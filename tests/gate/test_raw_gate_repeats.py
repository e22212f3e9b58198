"""The raw gate on re-read loads (issue 14, the no-op run): a load whose content repeats content the gate already
validated is not read or validated again (its verdict is the earlier loads'), while a re-read that changed a record,
changed a column's type, or came back short is validated and can block. Real landed files, the real loader
(`load_into_duckdb`, which counts each load's new-content rows) and the real gate (GX pandas engine)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    for k in ("CXW_GATE_ACCEPT_LOADS", "CXW_GATE_VOLUME_MIN_ROWS", "CXW_GATE_VOLUME_DROP", "CXW_GATE_VOLUME_LOOKBACK",
              "CXW_BUILD_DB", "CXW_DBT_TARGET", "CXW_HISTORY_START"):
        monkeypatch.delenv(k, raising=False)
    from cxw.config import paths

    return paths()


def _reviews(stars: list, ids: list[str] | None = None, stars_type=pa.int64()) -> pa.Table:
    ids = ids or [f"r{i}" for i in range(len(stars))]
    return pa.table({"id": pa.array(ids), "stars": pa.array(stars, stars_type),
                     "createdAt": pa.array(["2025-05-20T10:00:00Z"] * len(stars)),
                     "title": pa.array([f"review {i}" for i in ids])})


def _land(home, seq: int, table: pa.Table, cursor_before="2025-06-01T00:00:00Z", source="trustpilot",
          entity="reviews") -> str:
    """One complete load (Parquet part + _load.json, contracts §4), its re-read window 90 days like Trustpilot's."""
    load_id = f"{source}-20250601T{seq:06d}-{seq:08x}"
    d = home.raw / source / entity / load_id
    d.mkdir(parents=True)
    n = table.num_rows
    t = table.append_column("_load_id", pa.array([load_id] * n)).append_column(
        "_record_seq", pa.array(range(n), pa.int64()))
    pq.write_table(t, d / "part-00000.parquet")
    (d / "_load.json").write_text(json.dumps({
        "load_id": load_id, "source": source, "entity": entity, "extracted_at": "2025-06-01T00:00:00Z",
        "window_start": "2025-03-03T00:00:00Z", "window_end": "2025-06-01T00:00:00Z", "cursor_before": cursor_before,
        "cursor_after": "x", "rows": n, "files": [{"path": "part-00000.parquet", "rows": n, "sha256": "x"}],
        "dead_letters": 0, "duplicates_in_load": 0, "mode": "incremental"}))
    return load_id


def _run(home, run_id: str, load_id: str) -> tuple[dict, dict]:
    """The DAG's order: load_<source> (the loader), then validate_raw with this run's load ids."""
    from cxw.loader import load_into_duckdb
    from cxw.gate import validate_raw

    load_into_duckdb(home.raw, home.build_db)
    rep = validate_raw(run_id, [load_id])
    return rep, json.loads((home.runs / run_id / "validation_raw.json").read_text())


def _verdicts(home) -> dict:
    return json.loads((home.state / "raw_gate.json").read_text())["passed"]


STARS = [5, 4, 3, 5, 1, 2, 5, 4, 4, 5] * 4  # 40 reviews


def test_a_reread_repeating_validated_content_is_not_validated_again_but_a_changed_review_is_and_can_block(home):
    from cxw.gate import ValidationFailed

    first = _land(home, 1, _reviews(STARS), cursor_before=None)  # the history load: validated, rows read
    rep, out = _run(home, "run-1", first)
    assert rep["status"] == "passed" and rep["rows_read"] == 40 and _verdicts(home)[first] == "run-1"

    # The next run re-reads the same 40 reviews, unchanged: nothing in it is new, so GX does not see it at all
    # (no expectation ran, no Data Docs) and the gate's verdicts record the earlier one, not a validation.
    same = _land(home, 2, _reviews(STARS))
    rep, out = _run(home, "run-2", same)
    assert rep["status"] == "passed" and rep["new_loads"] == 1 and rep["rows_read"] == 0
    assert rep["expectations"] == 0 and rep["data_docs"] is None
    assert _verdicts(home)[same] == "run-2 (repeats validated content)"
    assert (rep["loads_validated"], rep["loads_with_inherited_verdict"]) == (0, 1)
    assert out["validated_loads"] == [] and out["inherited_verdict_loads"] == [same]
    assert [v["repeats_validated_content"] for v in out["volume"]] == [True]
    from cxw.summary import build_summary, render

    assert "Raw gate: passed — 0 expectations on 0 tables" in render(build_summary("run-2", [], None, None, None, None,
                                                                                   raw_validation=rep))
    assert ("1 of 1 new loads repeat content the gate validated before: not read again, their earlier verdict kept"
            in render(build_summary("run-2", [], None, None, None, None, raw_validation=rep)))

    # One review edited (5 → 4 stars): a new version, so the load is validated (read, checked, recorded as such).
    edited = _land(home, 3, _reviews([4] + STARS[1:]))
    rep, out = _run(home, "run-3", edited)
    assert rep["status"] == "passed" and rep["rows_read"] == 40 and "raw.trustpilot.reviews" in rep["checked_tables"]
    assert _verdicts(home)[edited] == "run-3" and out["validated_loads"] == [edited]

    # A re-read whose reviews changed to stars outside 1–5 (a broken feed): validated, and it blocks.
    broken = _land(home, 4, _reviews([0] * 10 + STARS[10:]))
    with pytest.raises(ValidationFailed) as exc:
        _run(home, "run-4", broken)
    assert "raw.trustpilot__reviews" in str(exc.value) and "column stars" in str(exc.value)
    assert broken not in _verdicts(home)

    # An unchanged copy of validated content re-read after the broken load is checked too: the broken load has no
    # verdict yet (it keeps blocking until re-delivered or accepted), so nothing after it inherits one.
    again = _land(home, 5, _reviews(STARS))
    with pytest.raises(ValidationFailed, match=broken):
        _run(home, "run-5", again)
    out = json.loads((home.runs / "run-5" / "validation_raw.json").read_text())
    assert again in out["validated_loads"] and out["inherited_verdict_loads"] == []


def test_a_reread_with_equal_values_but_a_retyped_column_is_validated_and_blocks(home):
    """The loader compares values (a string '5' hashes like the integer 5 once the table's column is widened), so
    "equal content" also needs the schema the gate passed: a re-read delivering `stars` as text is checked again."""
    from cxw.gate import ValidationFailed

    first = _land(home, 1, _reviews(STARS), cursor_before=None)
    assert _run(home, "run-1", first)[0]["status"] == "passed"
    retyped = _land(home, 2, _reviews([str(s) for s in STARS], stars_type=pa.string()))
    with pytest.raises(ValidationFailed) as exc:
        _run(home, "run-2", retyped)
    assert "column stars" in str(exc.value) and retyped in str(exc.value)


def test_a_short_reread_of_validated_content_still_meets_the_volume_check(home):
    """A re-read that brings only copies of validated rows but far fewer than its comparable loads (a truncated
    listing) keeps its volume check through GX: copies or not, a 90 % drop on a full baseline blocks."""
    from cxw.gate import ValidationFailed

    _land(home, 1, _reviews([5] * 10, ids=[f"h{i}" for i in range(10)]), cursor_before=None)
    ids = []
    for k in range(7):  # seven ordinary deltas of 120 new reviews each: a full baseline
        ids = [f"d{k}-{i}" for i in range(120)]
        lid = _land(home, 10 + k, _reviews([4] * 120, ids=ids))
        assert _run(home, f"run-{k}", lid)[0]["status"] == "passed"
    short = _land(home, 30, _reviews([4] * 5, ids=ids[:5]))  # 5 rows, all copies of the last delta's
    with pytest.raises(ValidationFailed) as exc:
        _run(home, "run-short", short)
    assert f"{short}: raw.trustpilot__reviews has 5 rows vs median 120" in str(exc.value)
    out = json.loads((home.runs / "run-short" / "validation_raw.json").read_text())
    assert out["volume"][0]["repeats_validated_content"] is True and out["validated_loads"] == [short]
