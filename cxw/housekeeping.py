"""Housekeeping of `$CXW_HOME/runs` (issue 17.6): every DAG run leaves a directory there (its summary, the gates'
results and Data Docs, a configuration error's record) and every `./cx run` day a log file; without pruning they
grow by one per run for ever (a run's Data Docs are a few MB).

`prune_runs` keeps the run directories of the newest `CXW_KEEP_RUNS` runs (default 30) and as many `cx-run-*.log`
files, newest by modification time, never the current run's; `0` keeps everything. Other files (`latest-summary.txt`,
the demo's logs) are one each and stay. Called by the `summarize` task at the end of every run."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from extractors.common.settings import ConfigError

from .config import paths

log = logging.getLogger(__name__)

DEFAULT_KEEP_RUNS = 30
RUN_LOG = re.compile(r"^cx-run-.*\.log$")


def keep_runs() -> int:
    from .settings import settings

    value = settings().keep_runs
    if not value:
        return DEFAULT_KEEP_RUNS
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ConfigError("CXW_KEEP_RUNS must be a whole number of runs to keep (0 = keep every run directory)")
    return n


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def prune_runs(current: str | None = None, keep: int | None = None, runs_dir: Path | None = None) -> dict:
    """Remove all but the newest ``keep`` (default `CXW_KEEP_RUNS`) run directories and `cx-run-*.log` files of
    ``runs_dir`` (default `$CXW_HOME/runs`); ``current`` (a directory name) is always kept. Returns
    ``{"kept": n, "removed_dirs": [...], "removed_logs": [...]}`` (names only)."""
    keep = keep_runs() if keep is None else keep
    root = runs_dir or paths().runs
    out = {"keep": keep, "removed_dirs": [], "removed_logs": []}
    if keep == 0 or not root.is_dir():
        return out
    entries = list(root.iterdir())
    dirs = sorted((p for p in entries if p.is_dir() and not p.is_symlink() and p.name != current),
                  key=lambda p: (_mtime(p), p.name), reverse=True)
    logs = sorted((p for p in entries if p.is_file() and RUN_LOG.match(p.name)),
                  key=lambda p: (_mtime(p), p.name), reverse=True)
    keep_dirs = keep - 1 if current and (root / current).is_dir() else keep
    for p in dirs[max(keep_dirs, 0):]:
        shutil.rmtree(p, ignore_errors=True)
        out["removed_dirs"].append(p.name)
    for p in logs[keep:]:
        p.unlink(missing_ok=True)
        out["removed_logs"].append(p.name)
    if out["removed_dirs"] or out["removed_logs"]:
        log.info("housekeeping: removed %d run directories (Data Docs, results) and %d run logs beyond the newest "
                 "%d (CXW_KEEP_RUNS)", len(out["removed_dirs"]), len(out["removed_logs"]), keep)
    return out
