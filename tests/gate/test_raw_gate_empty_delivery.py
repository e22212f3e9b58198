"""An empty GA4 export file is a finding (issue 15.1): a 0-byte ``events_YYYYMMDD.json`` lands as a 0-row load of
its export day, and the raw gate treats the FIRST delivery of a day with 0 rows as a 100 % volume drop - it warns on
a short baseline, blocks on a full one (7 comparable loads), and the message and the run summary name the day.
A later, empty delivery of a day that already landed rows is a re-read and passes."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_raw_gate import home  # noqa: E402,F401

UTC = timezone.utc


def _write_day(export: Path, day: date, n: int) -> Path:
    """A GA4 export file of ``n`` events (n = 0: a real 0-byte file)."""
    f = export / f"events_{day:%Y%m%d}.json"
    with f.open("w") as fh:
        for i in range(n):
            ts = int(datetime(day.year, day.month, day.day, 8, tzinfo=UTC).timestamp() * 1e6) + i * 1000
            fh.write(json.dumps({"event_date": f"{day:%Y%m%d}", "event_timestamp": str(ts), "event_name": "page_view",
                                 "user_pseudo_id": f"{1000 + i}.{ts // 1000000}", "stream_id": "1",
                                 "platform": "WEB", "event_params": [{"key": "ga_session_id",
                                                                      "value": {"int_value": str(ts // 1000000)}}]})
                     + "\n")
    return f


def _extract(home, export: Path, end: date):  # noqa: F811
    from extractors import ga4

    return ga4.extract(raw_root=home.raw, state_root=home.state, deadletter_root=home.deadletter,
                       window_start=datetime(2025, 5, 1, tzinfo=UTC),
                       window_end=datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1),
                       settings=ga4.Ga4Settings(export_url=str(export), history_start=datetime(2025, 5, 1, tzinfo=UTC)))


def test_a_zero_byte_ga4_export_day_warns_on_a_short_baseline_blocks_on_a_full_one_and_names_the_day(
        home, tmp_path, monkeypatch):  # noqa: F811
    from cxw import tasks
    from cxw.gate import ValidationFailed, validate_raw

    export = tmp_path / "export"
    export.mkdir()
    days = [date(2025, 5, 5) + timedelta(days=i) for i in range(10)]
    for i, d in enumerate(days):
        _write_day(export, d, 0 if i in (3, 9) else 80 + 3 * i)       # two empty files: day 4 and day 10
    assert (export / "events_20250508.json").stat().st_size == 0
    rep = _extract(home, export, days[-1])
    by_day = {json.loads((Path(l["path"]) / "_load.json").read_text())["export_date"]: l for l in rep["loads"]}
    assert by_day["2025-05-08"]["rows"] == 0 and by_day["2025-05-14"]["rows"] == 0   # 0-row loads of their day
    with pytest.raises(ValidationFailed) as exc:
        validate_raw("run-1")
    msg = str(exc.value)
    empty_late = by_day["2025-05-14"]["load_id"]
    empty_early = by_day["2025-05-08"]["load_id"]
    # day 10 has 7 comparable earlier days with rows: a full baseline, the 100 % drop blocks
    assert f"{empty_late}: raw.ga4__events export day 2025-05-14 has 0 rows vs median" in msg
    assert f"CXW_GATE_ACCEPT_LOADS={empty_late}" in msg
    res = json.loads((home.runs / "run-1" / "validation_raw.json").read_text())
    # day 4 has 3 earlier days: too short a baseline to block, it warns
    assert res["warnings"] == 1 and f"{empty_early}: raw.ga4__events export day 2025-05-08 has 0 rows" \
        in res["warned_checks"][0] and "warn only: a block needs 7 comparable loads" in res["warned_checks"][0]
    tasks.summarize("run-1", [rep], None, None, None, None, raw_validation=res)
    text = (home.runs / "run-1" / "summary.txt").read_text()
    assert "export day 2025-05-14 has 0 rows" in text and "export day 2025-05-08 has 0 rows" in text

    # reviewed (the site was down that day): accepted like any volume finding
    monkeypatch.setenv("CXW_GATE_ACCEPT_LOADS", empty_late)
    assert validate_raw("run-2")["status"] == "passed"
    monkeypatch.delenv("CXW_GATE_ACCEPT_LOADS")

    # a day that already landed rows may be re-read empty (its rows stay in staging): no finding
    _write_day(export, days[5], 0)
    rep3 = _extract(home, export, days[-1])
    [reread] = rep3["loads"]
    assert reread["rows"] == 0
    res3 = validate_raw("run-3")
    assert res3["status"] == "passed" and res3["warnings"] == 0
    vol = {v["load_id"]: v for v in json.loads((home.runs / "run-3" / "validation_raw.json").read_text())["volume"]}
    assert vol[reread["load_id"]]["export_date"] == days[5].isoformat() and vol[reread["load_id"]]["min_rows"] == 0
