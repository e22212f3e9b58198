"""Housekeeping (issue 17.6): the run directories under $CXW_HOME/runs (summary, gate results, Data Docs) and the
`cx-run-*.log` files are pruned to the newest CXW_KEEP_RUNS by the summarize task of every run; the current run's
directory is never removed; 0 keeps everything."""
from __future__ import annotations

import os
import time

import pytest


def _home(tmp_path, monkeypatch, n_dirs: int, n_logs: int):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    runs = tmp_path / "runs"
    now = time.time()
    for i in range(n_dirs):                      # run-000 is the oldest
        d = runs / f"scheduled__2025-01-{i:03d}"
        (d / "data_docs" / "raw").mkdir(parents=True)
        (d / "data_docs" / "raw" / "index.html").write_text("<html/>")
        (d / "summary.json").write_text("{}")
        os.utime(d, (now - 10_000 + i, now - 10_000 + i))
    for i in range(n_logs):
        f = runs / f"cx-run-2025-02-{i:02d}.log"
        f.write_text("log")
        os.utime(f, (now - 10_000 + i, now - 10_000 + i))
    (runs / "latest-summary.txt").write_text("x")
    (runs / "demo-server.log").write_text("x")
    return runs


def test_summarize_prunes_run_directories_and_run_logs_beyond_cxw_keep_runs(tmp_path, monkeypatch):
    from cxw import tasks

    runs = _home(tmp_path, monkeypatch, n_dirs=8, n_logs=6)
    monkeypatch.setenv("CXW_KEEP_RUNS", "3")
    tasks.summarize("manual__2026-12-06T10:00:00+00:00", [], None, None, None, None)
    dirs = sorted(p.name for p in runs.iterdir() if p.is_dir())
    # the current run plus the two newest others: 3 run directories
    assert dirs == ["manual__2026-12-06T10_00_00_00_00", "scheduled__2025-01-006", "scheduled__2025-01-007"]
    assert (runs / "manual__2026-12-06T10_00_00_00_00" / "summary.txt").exists()
    logs = sorted(p.name for p in runs.glob("cx-run-*.log"))
    assert logs == ["cx-run-2025-02-03.log", "cx-run-2025-02-04.log", "cx-run-2025-02-05.log"]
    assert (runs / "latest-summary.txt").exists() and (runs / "demo-server.log").exists()


def test_the_default_keeps_30_runs_and_0_keeps_everything(tmp_path, monkeypatch):
    from cxw.housekeeping import prune_runs

    runs = _home(tmp_path, monkeypatch, n_dirs=33, n_logs=0)
    monkeypatch.setenv("CXW_KEEP_RUNS", "0")
    assert prune_runs()["removed_dirs"] == []
    assert sum(1 for p in runs.iterdir() if p.is_dir()) == 33
    monkeypatch.delenv("CXW_KEEP_RUNS")
    rep = prune_runs()
    assert rep["keep"] == 30 and sorted(rep["removed_dirs"]) == [f"scheduled__2025-01-{i:03d}" for i in range(3)]
    assert sum(1 for p in runs.iterdir() if p.is_dir()) == 30


def test_a_malformed_cxw_keep_runs_names_the_setting_and_the_run_still_summarizes(tmp_path, monkeypatch):
    from cxw import tasks
    from cxw.housekeeping import keep_runs
    from extractors.common.settings import ConfigError

    runs = _home(tmp_path, monkeypatch, n_dirs=4, n_logs=0)
    monkeypatch.setenv("CXW_KEEP_RUNS", "-2")
    with pytest.raises(ConfigError, match="CXW_KEEP_RUNS"):
        keep_runs()
    tasks.summarize("manual__x", [], None, None, None, None)
    assert sum(1 for p in runs.iterdir() if p.is_dir()) == 5
