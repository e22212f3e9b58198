"""Raw landing per docs/contracts.md section 4.

A load is written into ``<raw_root>/<source>/<entity>/.tmp-<load_id>/`` (Parquet parts, then ``_load.json``
last) and published with one ``os.rename`` to ``<load_id>/``.  Readers never see a partial load.

Zero-row loads: the directory holds only ``_load.json`` with ``rows: 0`` and ``files: []`` (no part file),
so accounting still sees the load.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets as _secrets
import shutil
import socket
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from extractors import EXTRACTOR_VERSION

log = logging.getLogger("cxw.extractors.landing")

META_COLUMNS = ("_load_id", "_extracted_at", "_record_seq")
STALE_TMP_SECONDS = 3600.0
OWNER_FILE = "_owner"    # in a .tmp-<load_id> dir while it is written: "<host> <pid> <process start ticks>"
SCRATCH_PREFIX = ".new-"   # a temp dir before its owner file is in it (renamed to .tmp-<load_id> at once)


def _start_ticks(pid: int) -> Optional[str]:
    """The start time of process ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), None if there is
    no such process or no /proc. With the pid it identifies one process (a pid is reused, a start time is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner_text() -> str:
    return f"{socket.gethostname()} {os.getpid()} {_start_ticks(os.getpid()) or '-'}"


def _owner_dead(path: str) -> bool:
    """True when the temp dir's writer was a process on this host that no longer runs (killed, crashed): its dir
    can go at once. False when it may still be writing, or when that cannot be told (no owner file from an older
    version, another host sharing the raw volume, no /proc): then only the age rule applies."""
    try:
        with open(os.path.join(path, OWNER_FILE), "r", encoding="ascii") as fh:
            host, pid_text, ticks = fh.read().split()
        pid = int(pid_text)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if host != socket.gethostname() or ticks == "-" or not os.path.isdir("/proc/self"):
        return False
    if pid == os.getpid() and ticks == _start_ticks(os.getpid()):
        return False
    return _start_ticks(pid) != ticks


def new_load_id(source: str, now: Optional[datetime] = None) -> str:
    """``<source>-<UTC yyyymmddThhmmss>-<8 hex>``. The 8 hex digits are the microsecond (5 digits) then 3 random
    ones, so two loads of one source made within the same second still sort in the order they were made (staging's
    "latest version" rule orders by load id) and two made in the same microsecond stay distinct."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{source}-{now:%Y%m%dT%H%M%S}-{now.microsecond:05x}{_secrets.token_hex(2)[:3]}"


def clean_stale(raw_root: str, source: str, older_than_s: float = STALE_TMP_SECONDS) -> List[str]:
    """Remove ``.tmp-*`` dirs whose writer is gone (a killed or crashed extract on this host: its owner process no
    longer runs) or that are older than ``older_than_s`` (a concurrent run's live temp dir is kept), and load dirs
    that lack ``_load.json`` (incomplete by contract)."""
    removed: List[str] = []
    base = os.path.join(os.fspath(raw_root), source)
    if not os.path.isdir(base):
        return removed
    now = time.time()
    for entity in os.listdir(base):
        edir = os.path.join(base, entity)
        if not os.path.isdir(edir):
            continue
        for name in os.listdir(edir):
            path = os.path.join(edir, name)
            if not os.path.isdir(path):
                continue
            if name.startswith((".tmp-", SCRATCH_PREFIX)):
                if _owner_dead(path) or now - os.path.getmtime(path) >= older_than_s:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            elif not os.path.exists(os.path.join(path, "_load.json")):
                if now - os.path.getmtime(path) >= older_than_s:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    if removed:
        log.info("%s: removed %d stale/incomplete load dirs", source, len(removed))
    return removed


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_meta_columns(table: pa.Table, load_id: str, extracted_at: datetime, seq_offset: int = 0) -> pa.Table:
    n = table.num_rows
    table = table.append_column("_load_id", pa.array([load_id] * n, pa.string()))
    table = table.append_column(
        "_extracted_at", pa.array([extracted_at] * n, pa.timestamp("us", tz="UTC")))
    table = table.append_column("_record_seq", pa.array(range(seq_offset, seq_offset + n), pa.int64()))
    return table


class LoadWriter:
    """Writes one load of one entity. Use ``write_table`` / ``add_file`` then ``commit``; ``abort`` on error."""

    def __init__(self, raw_root: str, source: str, entity: str, load_id: str, extracted_at: datetime) -> None:
        self.source = source
        self.entity = entity
        self.load_id = load_id
        self.extracted_at = extracted_at
        self.entity_dir = os.path.join(os.fspath(raw_root), source, entity)
        self.tmp_dir = os.path.join(self.entity_dir, f".tmp-{load_id}")
        self.final_dir = os.path.join(self.entity_dir, load_id)
        # the temp dir appears with its owner file already in it (made under a scratch name, then renamed): a
        # process killed between mkdir and the owner's write (another thread of the extract may be just there) would
        # otherwise leave an ownerless .tmp- dir that only the age rule removes. A scratch dir left by such a kill
        # holds no data; clean_stale removes it like a temp dir.
        os.makedirs(self.entity_dir, exist_ok=True)
        if os.path.exists(self.tmp_dir):
            raise FileExistsError(self.tmp_dir)
        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self.entity_dir)
        with open(os.path.join(scratch, OWNER_FILE), "w", encoding="ascii") as fh:
            fh.write(_owner_text())   # lets the next run remove this dir at once if this process is killed
        os.rename(scratch, self.tmp_dir)
        self.files: List[Dict[str, Any]] = []
        self.rows = 0

    def next_part_path(self) -> str:
        return os.path.join(self.tmp_dir, f"part-{len(self.files):05d}.parquet")

    def write_table(self, table: pa.Table) -> None:
        """Append metadata columns and write one Parquet part (skipped for 0 rows)."""
        if table.num_rows == 0:
            return
        table = add_meta_columns(table, self.load_id, self.extracted_at, self.rows)
        path = self.next_part_path()
        pq.write_table(table, path, compression="zstd")
        self.add_file(path, table.num_rows)

    def add_file(self, path: str, rows: int) -> None:
        """Register a part file written by someone else (e.g. DuckDB COPY) inside ``tmp_dir``."""
        self.files.append({"path": os.path.basename(path), "rows": int(rows), "sha256": sha256_file(path)})
        self.rows += int(rows)

    def commit(self, *, window_start: Optional[str], window_end: Optional[str], cursor_before: Any,
               cursor_after: Any, dead_letters: int, duplicates_in_load: int, extra: Optional[Dict] = None) -> str:
        meta = {
            "load_id": self.load_id,
            "source": self.source,
            "entity": self.entity,
            "extracted_at": self.extracted_at.isoformat(),
            "window_start": window_start,
            "window_end": window_end,
            "cursor_before": cursor_before,
            "cursor_after": cursor_after,
            "rows": self.rows,
            "files": self.files,
            "dead_letters": dead_letters,
            "duplicates_in_load": duplicates_in_load,
            "extractor_version": EXTRACTOR_VERSION,
        }
        if extra:
            clash = set(extra) & set(meta)
            if clash:
                raise ValueError(f"extra _load.json keys clash with the contract: {sorted(clash)}")
            meta.update(extra)
        path = os.path.join(self.tmp_dir, "_load.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.remove(os.path.join(self.tmp_dir, OWNER_FILE))    # a load dir holds its parts and _load.json only
        os.rename(self.tmp_dir, self.final_dir)  # the atomic publish
        return self.final_dir

    def abort(self) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def count_duplicates(ids: Iterable[Any]) -> int:
    seen = set()
    dups = 0
    for i in ids:
        if i is None:
            continue
        if i in seen:
            dups += 1
        else:
            seen.add(i)
    return dups
