"""Shared by the GA4 re-delivery tests: two generations of the demo company (XS) between which BigQuery re-exports
an OLD export day, and which export files a process really opened (Linux inotify, so DuckDB's own reads count).

    a, b, day = old_redelivery(seed)       # as_of A < re-export instant <= as_of B; `day` ended >= 6 days before A
"""
from __future__ import annotations

import ctypes
import os
import struct
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from demo_company.config import DEFAULT_DAYS, DEFAULT_START, scaled_dirt
from demo_company.ga4 import redelivery_schedule
from demo_company.generator import generate
from demo_company.util import date_to_us, us_to_dt

UTC = timezone.utc
SEED = 42


def old_redelivery(seed: int = SEED) -> tuple[datetime, datetime, date]:
    """(as_of A, as_of B = A + 14 days, the re-delivered day): the first day the demo re-exports at an instant R at
    least 30 days into the history; A = midnight of the day before R, so the day ended >= 6 days before A (older than
    the old 3-day lookback at the second extraction) and R falls between A and B."""
    start = date_to_us(DEFAULT_START)
    sched = redelivery_schedule(seed, start, DEFAULT_DAYS, scaled_dirt())
    ymd, at = min(((d, r) for d, r in sched.items() if r >= start + 30 * 86_400 * 1_000_000), key=lambda x: x[1])
    r = us_to_dt(at)
    a = datetime(r.year, r.month, r.day, tzinfo=UTC) - timedelta(days=1)
    return a, a + timedelta(days=14), datetime.strptime(ymd, "%Y%m%d").date()


def generate_at(out: Path, as_of: datetime, seed: int = SEED) -> dict:
    return generate(out, scale="XS", seed=seed, as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"), workers=1)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """{file name: (size, mtime_ns)} of the export files."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(folder).iterdir()
            if p.name.startswith("events_")}


def day_of(name: str) -> date:
    return datetime.strptime(name[len("events_"):len("events_") + 8], "%Y%m%d").date()


IN_OPEN = 0x20
IN_NONBLOCK = os.O_NONBLOCK


class OpenedFiles:
    """Names of the files opened in ``folder`` while the block ran (inotify IN_OPEN: any reader, DuckDB included;
    listing the folder opens only the folder itself, which is not reported as a name)."""

    def __init__(self, folder: Path) -> None:
        self.folder = os.fspath(folder)
        self.names: set[str] = set()

    def __enter__(self) -> "OpenedFiles":
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self._fd = self._libc.inotify_init1(IN_NONBLOCK)
        if self._fd < 0 or self._libc.inotify_add_watch(self._fd, self.folder.encode(), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify unavailable")
        return self

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            i = 0
            while i < len(data):
                _wd, _mask, _cookie, n = struct.unpack_from("iIII", data, i)
                name = data[i + 16:i + 16 + n].split(b"\0", 1)[0].decode()
                if name:
                    self.names.add(name)
                i += 16 + n

    def __exit__(self, *exc) -> None:
        self._drain()
        os.close(self._fd)
