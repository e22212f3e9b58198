"""Source-side faults for demonstrating the quality gate (`generate(..., inject_fault=...)`, `--inject-fault`).

Kept apart from the generator: a fault is applied to the files after they were written, so the generated world,
the answer key (the truth) and every other file stay exactly as without the fault.

    gate   GA4 re-delivers the last export day truncated: `events_<last day>.json` keeps only its first 5% of
           lines (a partial BigQuery export job — the day's table is rewritten for up to 3 days, so a short
           re-delivery really happens). The extractor lands the changed day as a new load; the raw gate must see a
           volume drop of ≥ 90% against the previous days and block publication.
"""
from __future__ import annotations

import os

FAULTS = ("gate",)
KEEP_SHARE = 0.05


def apply_fault(out_dir: str, fault: str) -> dict:
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
    ga4_dir = os.path.join(out_dir, "ga4")
    days = sorted(n for n in os.listdir(ga4_dir) if n.startswith("events_") and n.endswith(".json"))
    if not days:
        raise RuntimeError("inject_fault='gate' needs GA4 export files")
    path = os.path.join(ga4_dir, days[-1])
    with open(path, "rb") as fh:
        lines = fh.readlines()
    keep = max(1, int(len(lines) * KEEP_SHARE))
    tmp = path + ".fault-tmp"
    with open(tmp, "wb") as fh:
        fh.writelines(lines[:keep])
    os.replace(tmp, path)
    return {"fault": fault, "file": f"ga4/{days[-1]}", "rows_before": len(lines), "rows_after": keep,
            "what": "GA4 export day re-delivered truncated (volume drop ≥ 90%)"}
