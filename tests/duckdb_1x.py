"""A real DuckDB 1.x client for the tests (issue 18.5): BI drivers bundle older DuckDB releases, so a published file
must open in one. The newest 1.x release on the package index is pip-installed once into a cache directory
(`pip install --target`) and run in a subprocess with PYTHONPATH pointing there, beside the project's DuckDB 2.x.

When it cannot be installed the test skips with the reason - a failure under CXW_REQUIRE_SERVICES=1 (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# the newest 1.x release on the index (`pip index versions duckdb`: 2.0.1, 2.0.0, 1.5.6, ...)
DUCKDB_1X = "1.5.6"


def duckdb_1x_dir() -> Path:
    """Directory holding the `duckdb` package of release DUCKDB_1X (installed on first use)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cxw" / f"duckdb-{DUCKDB_1X}"
    if (cache / "duckdb").is_dir():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
                           "--target", str(tmp), f"duckdb=={DUCKDB_1X}"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"cannot pip-install duckdb=={DUCKDB_1X} (the DuckDB 1.x client): {proc.stderr[-500:]}")
    try:
        tmp.rename(cache)  # atomic: a parallel worker that got there first wins
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


_SCRIPT = """
import json, sys
import duckdb
assert duckdb.__version__ == sys.argv[2], ("not the 1.x client", duckdb.__version__)
con = duckdb.connect(sys.argv[1], read_only=True)
out = [con.execute(q).fetchall() for q in json.loads(sys.argv[3])]
print(json.dumps({"version": duckdb.__version__, "results": out}, default=str))
"""


def query_with_duckdb_1x(db: Path, queries: list[str]) -> dict:
    """Open ``db`` read-only with the DuckDB 1.x client and run ``queries``: {"version", "results"}. Raises
    AssertionError with the client's error (e.g. "database file with version number 69 ...") when it cannot."""
    env = {**os.environ, "PYTHONPATH": str(duckdb_1x_dir())}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(db), DUCKDB_1X, json.dumps(queries)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"DuckDB {DUCKDB_1X} could not read {db}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)
