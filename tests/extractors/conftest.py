"""Shared fixtures for the extractor tests: a generated demo company, the loopback DemoServer with a fake
clock (no real sleeping), run directories and the data fingerprint oracle."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo_company.server import DemoServer  # noqa: E402
from extractors.common.http import HttpConfig  # noqa: E402

UTC = timezone.utc
HISTORY_START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2025, 7, 1, tzinfo=UTC)


class FakeClock:
    """Drives both the DemoServer's rate limits / Retry-After and the extractor's sleeps."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """XS demo company (deterministic, ~0.5 s to generate)."""
    out = tmp_path_factory.mktemp("demo") / "XS-42"
    subprocess.run([sys.executable, "-m", "demo_company", "generate", "--scale", "XS", "--seed", "42",
                    "--out", str(out)], check=True, cwd=REPO, capture_output=True)
    return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(demo_dir, clock):
    with DemoServer(demo_dir, port=0, clock=clock, realism=False) as srv:
        yield srv


@pytest.fixture
def dirs(tmp_path):
    d = {k: tmp_path / k for k in ("raw", "state", "deadletter")}
    for p in d.values():
        p.mkdir()
    return d


def http_cfg(clock: FakeClock, **kw) -> HttpConfig:
    base = dict(timeout=10.0, max_attempts=4, backoff_base=0.5, backoff_max=4.0, retry_after_cap=30.0,
                sleep=clock.sleep, clock=clock)
    base.update(kw)
    return HttpConfig(**base)


def run_kwargs(dirs, start=HISTORY_START, end=WINDOW_END, mode="incremental"):
    return dict(raw_root=str(dirs["raw"]), state_root=str(dirs["state"]), deadletter_root=str(dirs["deadletter"]),
                window_start=start, window_end=end, mode=mode)


META = {"_load_id", "_extracted_at", "_record_seq"}


def read_load(path: str):
    """(rows as dicts without metadata columns, _load.json)."""
    meta = json.loads(Path(path, "_load.json").read_text())
    rows = []
    for f in meta["files"]:
        t = pq.read_table(os.path.join(path, f["path"]))
        rows.extend({k: v for k, v in r.items() if k not in META} for r in t.to_pylist())
    return rows, meta


def fingerprint(rows) -> tuple[int, int]:
    """count + order-independent sum of row hashes (equal duplicates do not cancel out)."""
    total = 0
    for r in rows:
        h = hashlib.sha256(json.dumps(r, sort_keys=True, default=str).encode()).digest()
        total = (total + int.from_bytes(h[:8], "big")) % (1 << 64)
    return len(rows), total


def visible_loads(raw_root, source, entity):
    return sorted(p for p in glob.glob(os.path.join(str(raw_root), source, entity, "*"))
                  if os.path.basename(p)[0] != ".")


def all_text_under(*roots) -> str:
    chunks = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(str(root)):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as fh:
                    chunks.append(fh.read().decode("utf-8", "replace"))
    return "\n".join(chunks)
