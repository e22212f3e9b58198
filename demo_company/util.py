"""Deterministic random streams, timestamp formatting and file writing helpers."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Iterable

import numpy as np
import orjson

EPOCH = dt.datetime(1970, 1, 1)
US_PER_S = 1_000_000
US_PER_H = 3_600 * US_PER_S
US_PER_DAY = 86_400 * US_PER_S


def stream(seed: int, label: str) -> np.random.Generator:
    """A numpy Generator that depends only on (seed, label) - never on hash() or process state."""
    digest = hashlib.sha256(label.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *words])))


def hex_id(rng: np.random.Generator, nbytes: int) -> str:
    return rng.bytes(nbytes).hex()


def date_to_us(d: dt.date) -> int:
    return (d - EPOCH.date()).days * US_PER_DAY


def us_to_dt(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


def us_to_date(us: int) -> dt.date:
    return (EPOCH + dt.timedelta(microseconds=int(us))).date()


def parse_as_of(value: str | None) -> int | None:
    """ISO date or datetime (Z / offset / naive = UTC) → epoch µs."""
    if value is None:
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    if len(v) == 10:
        return date_to_us(dt.date.fromisoformat(v))
    t = dt.datetime.fromisoformat(v)
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def odoo_ts(us: int | None) -> str | None:
    if us is None:
        return None
    return us_to_dt(us).strftime("%Y-%m-%d %H:%M:%S.%f")


def hs_ts(us: int | None) -> str | None:
    """HubSpot ISO with milliseconds: 2025-03-05T11:09:12.825Z."""
    if us is None:
        return None
    t = us_to_dt(us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rfc3339_us(us: int) -> str:
    """Google style: 2025-06-17T14:26:41.433058Z."""
    return us_to_dt(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(us: int, offset_minutes: int = 0) -> str:
    """Trustpilot style: 2025-06-12T08:07:53Z, or the same instant as 2025-06-12T10:07:53+02:00."""
    if offset_minutes == 0:
        return us_to_dt(us).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = us_to_dt(us + offset_minutes * 60 * US_PER_S)
    sign = "+" if offset_minutes > 0 else "-"
    m = abs(offset_minutes)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{m // 60:02d}:{m % 60:02d}"


def dumps(obj) -> bytes:
    return orjson.dumps(obj)


def write_jsonl(path, rows: Iterable) -> int:
    n = 0
    with open(path, "wb") as fh:
        buf = []
        for row in rows:
            buf.append(orjson.dumps(row))
            n += 1
            if len(buf) >= 10_000:
                fh.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    return n


def cents_str(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    c = abs(int(cents))
    return f"{sign}{c // 100}.{c % 100:02d}"
