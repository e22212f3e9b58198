"""Retention (`CXW_RETENTION_DAYS`, `./cx retention`, docs/contracts.md section 8): drop raw loads a newer load
supersedes and published generations older than the retention period; run by the DAG's load and publish tasks and
by `./cx retention` (under the warehouse lock)."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .config import paths
from .settings import settings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# retention
# ---------------------------------------------------------------------------------------------------------------

def retention_days() -> int | None:
    """CXW_RETENTION_DAYS: unset, empty or 0 = keep everything (the default)."""
    v = settings().retention_days.strip()
    if not v:
        return None
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"CXW_RETENTION_DAYS={v!r}: expected a whole number of days") from None
    if n < 0:
        raise ValueError(f"CXW_RETENTION_DAYS={v!r}: must not be negative")
    return n or None


def _utc(v) -> datetime | None:
    try:
        d = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


_KEYS = ("id", "reviewId")


def _superseded(con, ld, newer: list) -> bool:
    """Nothing in load `ld` is still current: every row has a newer delivery in `newer` (same key — `id` /
    `reviewId` —, or the same content for an entity without one). An `__ids` load is a full id snapshot: any newer
    snapshot supersedes it. A GA4 load is the export of its day: its events are the data, never re-delivered."""
    if ld.entity.endswith("__ids") or (ld.source, ld.entity) == ("ga4", "events") or not ld.files:
        return True
    new_files = [str(f) for n in newer for f in n.files]
    if not new_files:
        return False
    old = [str(f) for f in ld.files]
    cols = [r[0] for r in con.execute("describe select * from read_parquet(?, union_by_name = true)",
                                      [old]).fetchall()]
    new_cols = {r[0] for r in con.execute("describe select * from read_parquet(?, union_by_name = true)",
                                          [new_files]).fetchall()}
    key = next((k for k in _KEYS if k in cols and k in new_cols), None)
    if key:
        match = [key]
    else:
        match = [c for c in cols if not c.startswith("_")]
        if not match or not set(match) <= new_cols:
            return False
    on = " and ".join(f'o."{c}" is not distinct from n."{c}"' for c in match)
    left = con.execute(f"select count(*) from read_parquet(?, union_by_name = true) as o where not exists "
                       f"(select 1 from read_parquet(?, union_by_name = true) as n where {on})",
                       [old, new_files]).fetchall()[0][0]
    return left == 0


def drop_old_raw_loads(days: int | None = None, now: datetime | None = None,
                       sources: list[str] | None = None) -> list[str]:
    """Drop the raw loads extracted more than `days` days ago (`_load.json` extracted_at: the load time, not the
    data's date) whose content is no longer current (`_superseded`): a record the sources have not changed since
    keeps its load, whatever its age, because staging and the marts are rebuilt from raw; the newest load of a
    (source, entity) always stays. Each load goes with one rename out of sight, then its files. The loader sees the
    loads missing and rebuilds those raw tables from what is left; their rows in `_cxw.raw_loads` go here."""
    import duckdb

    from .loader import complete_loads, connect_writer

    days = retention_days() if days is None else days
    if not days:
        return []
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    p = paths()
    loads = [ld for ld in complete_loads(p.raw) if sources is None or ld.source in sources]
    groups: dict[tuple[str, str], list] = {}
    for ld in loads:
        groups.setdefault((ld.source, ld.entity), []).append(ld)
    dropped = []
    con = duckdb.connect(":memory:")
    try:
        for (source, entity), group in sorted(groups.items()):
            group.sort(key=lambda x: x.load_id)
            for i, ld in enumerate(group[:-1]):
                when = _utc(ld.meta.get("extracted_at"))
                if when is None or when >= cutoff or not _superseded(con, ld, group[i + 1:]):
                    continue
                gone = ld.path.with_name(f".tmp-retention-{ld.load_id}")
                os.rename(ld.path, gone)  # atomic: readers see the whole load or none of it
                shutil.rmtree(gone)
                dropped.append(f"{source}/{entity}/{ld.load_id}")
    finally:
        con.close()
    if dropped and p.build_db.exists():
        from .config import dbt_target

        if dbt_target() == "duckdb":
            wcon, _ = connect_writer(p.build_db)
            try:
                if wcon.execute("select count(*) from information_schema.tables where table_schema = '_cxw' "
                                "and table_name = 'raw_loads'").fetchall()[0][0]:
                    wcon.execute("delete from _cxw.raw_loads where list_contains(?, load_id)",
                                 [[d.split("/")[2] for d in dropped]])
            finally:
                wcon.close()
    if dropped:
        log.info("retention %d days: dropped %d raw loads extracted before %s", days, len(dropped),
                 cutoff.isoformat())
    return dropped


def generation_time(stem: str) -> datetime | None:
    """When a generation was published: its id starts with the UTC publication time (`cxw.publish`)."""
    try:
        return datetime.strptime(stem.split("-")[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def drop_old_generations(days: int | None = None, now: datetime | None = None) -> list[str]:
    """Drop kept generations published more than `days` days ago, never the one BI reads."""
    from .publish import current_generation, generations

    days = retention_days() if days is None else days
    if not days:
        return []
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    cur = current_generation()
    dropped = []
    for g in generations():
        when = generation_time(g.stem)
        if when is None or when >= cutoff or g.stem == cur:
            continue
        g.unlink()
        Path(str(g) + ".wal").unlink(missing_ok=True)
        dropped.append(g.stem)
    if dropped:
        log.info("retention %d days: dropped generations %s", days, dropped)
        from .access import sync

        sync()  # the audience files of the dropped generations go too
    return dropped


def apply_retention(days: int | None = None, now: datetime | None = None) -> dict:
    """`./cx retention`: both drops now (the DAG applies them in load_<source> and publish), holding the warehouse
    lock exclusively (cxw/warehouse_lock.py): no load, build or publish runs while loads and generations go, and no
    erasure; waits up to CXW_BUILD_DB_LOCK_WAIT_S, then WarehouseBusy with nothing dropped."""
    from .warehouse_lock import maintenance

    days = retention_days() if days is None else days
    with maintenance("retention"):
        return {"retention_days": days, "raw_loads_dropped": drop_old_raw_loads(days, now),
                "generations_dropped": drop_old_generations(days, now)}
