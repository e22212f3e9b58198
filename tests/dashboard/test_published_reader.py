"""The dashboard's reader of the published file (cxw_dashboard/published.py) on real files published by
`cxw.publish`: a generation is read once, a new generation on the next request, the file is never held open, and a
missing file is reported, not crashed on."""

from __future__ import annotations

import os

import duckdb
import pytest

from cxw_dashboard.published import PublishedFile, PublishedFileMissing


@pytest.fixture
def home(empty_build_db):
    p, con = empty_build_db
    con.execute("create schema kpi")
    con.execute("create table kpi.kpi_period as select 'window' as grain, date '2025-01-01' as period_start, "
                "date '2025-02-01' as period_end, 'all' as channel, 'all' as segment, 'nps' as kpi, "
                "4.0 as numerator, 10.0 as denominator, 40.0 as value, 10::bigint as n, true as is_low_sample")
    con.close()
    return p


def _set_nps(p, value: float) -> None:
    con = duckdb.connect(str(p.build_db))
    con.execute("update kpi.kpi_period set value = ?", [value])
    con.close()


def _nps(snap) -> float:
    return float(snap.frame("kpi_period").set_index("kpi").loc["nps", "value"])


def _held(path) -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [link for link in links if link.startswith(str(path.parent))]


def test_a_generation_is_read_once_and_a_new_generation_on_the_next_request(home):
    from cxw.publish import publish

    first = publish("run-1", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    snap = reader.snapshot()
    assert snap.generation_id == first["generation_id"] and _nps(snap) == 40.0
    assert reader.snapshot() is snap and reader.opens == 1  # unchanged file: served from memory
    _set_nps(home, 55.5)
    second = publish("run-2", "2025-01-01", "2025-02-01")
    snap2 = reader.snapshot()
    assert snap2.generation_id == second["generation_id"] != first["generation_id"]
    assert _nps(snap2) == 55.5 and reader.opens == 2


def test_the_reader_keeps_no_descriptor_on_the_published_file(home):
    from cxw.publish import publish

    publish("run-1", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    reader.snapshot()
    assert _held(home.published_db) == []
    assert _held(home.generations_dir / "x") == []


def test_a_rollback_to_an_older_generation_is_followed_too(home):
    from cxw.publish import publish, rollback

    first = publish("run-1", "2025-01-01", "2025-02-01")
    _set_nps(home, 12.0)
    publish("run-2", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    assert _nps(reader.snapshot()) == 12.0
    rollback(first["generation_id"])
    snap = reader.snapshot()
    assert snap.generation_id == first["generation_id"] and _nps(snap) == 40.0


def test_tables_the_file_lacks_are_reported_missing_not_crashed_on(home):
    from cxw.publish import publish

    publish("run-1", "2025-01-01", "2025-02-01")
    snap = PublishedFile(home.published_db).snapshot()
    assert "alerts" in snap.missing and snap.frame("alerts") is None and "kpi_period" not in snap.missing


def test_no_published_file_yet_says_where_it_looks(tmp_path):
    with pytest.raises(PublishedFileMissing, match=str(tmp_path / "nothing.duckdb")):
        PublishedFile(tmp_path / "nothing.duckdb").snapshot()
