"""Where a target is not met, which stage holds it and why: for each unmet target of ``report.TARGETS`` the stages
that take the largest share of that figure's time, computed from the measured per-stage walls (medians over the
repetitions) and the Airflow overhead, with a fixed sentence per stage kind where its cause is known. No figure here
is written by hand: every number comes from the result's measurements."""

from __future__ import annotations

import statistics

OVERHEAD = "(Airflow overhead)"

# (task id or its prefix, known cause of that kind of stage's time). First match wins; a sentence, never a figure.
WHY = (
    ("extract_hubspot", "HubSpot's API paged under its rate limit (CXW_HUBSPOT_RATE_LIMIT)"),
    ("extract_ga4", "the GA4 export files listed, read and parsed"),
    ("extract_odoo", "the ERP's tables read since the cursor minus the mapping's lookback"),
    ("extract_", "a review API's pages (its re-read window)"),
    ("load_raw", "the landed Parquet loaded into the build database, one writer at a time"),
    ("load_", "the landed Parquet loaded into the build database (waits for the writer lock of the other loads)"),
    ("validate_raw", "the raw gate"),
    ("dbt_build", "dbt: start-up, parse, seeds, snapshots, models and data tests"),
    ("validate", "the marts gate"),
    ("analyze", "the analyses"),
    ("publish", "the published tables copied into a new generation"),
    ("export_alerts", "the alert export"),
    ("summarize", "the run summary"),
    (OVERHEAD, "Airflow: `dags test` start-up, DAG parse and the gaps between tasks (no task running)"),
    ("dbt's own run", "dbt's own `elapsed`: models, seeds, snapshots, data and unit tests (the floor runs models "
                      "only; its test queries are `floor_tests_s`)"),
    ("outside dbt's run", "the task and dbt's start-up and project parse around dbt's own run"),
)

# the run whose end-to-end wall a figure is made of
RUN_OF = {"pipeline_over_floor": "full", "incremental_over_full": "incremental", "noop_wall_s": "noop",
          "hourly_e2e_s": "hourly"}
RUN_TEXT = {"full": "the full run", "incremental": "the incremental run", "noop": "the no-op run",
            "hourly": "the hourly run"}
TOP = 3


def why(stage: str) -> str:
    return next((text for key, text in WHY if stage == key or (key.endswith("_") and stage.startswith(key))), "")


def _median(xs) -> float | None:
    xs = [float(x) for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def _ranked(walls: dict[str, float | None], of_s: float | None) -> list[dict]:
    """Stages by their share of ``of_s``, largest first (ties by name)."""
    rows = [{"stage": k, "wall_s": v, "share": round(v / of_s, 3) if of_s else None, "why": why(k)}
            for k, v in walls.items() if v is not None]
    return sorted(rows, key=lambda r: (-r["wall_s"], r["stage"]))


def run_stage_walls(reps: list[dict], kind: str) -> tuple[float | None, dict[str, float | None]]:
    """(median e2e wall, {stage: median wall}) of the runs ``kind`` of the repetitions, the Airflow overhead as the
    stage OVERHEAD. The per-source tasks a stage aggregates (load_<source> in load_raw) are left out: the aggregate
    is their wall without counting the time they waited for each other twice."""
    runs = [r[kind] for r in reps if isinstance(r.get(kind), dict)]
    per: dict[str, list] = {}
    for run in runs:
        tasks = run.get("tasks") or {}
        parts = {p for t in tasks.values() for p in (t.get("aggregate_of") or ())}
        for tid, t in tasks.items():
            if tid not in parts:
                per.setdefault(tid, []).append(t.get("wall_s"))
        per.setdefault(OVERHEAD, []).append(run.get("airflow_overhead_s"))
    return _median(r.get("e2e_wall_s") for r in runs), {k: _median(v) for k, v in per.items()}


def breakdown(result: dict, key: str) -> dict | None:
    """What figure ``key``'s time is made of: {"of": what the shares are of, "of_s", "stages": largest first,
    "compare": the other side of a ratio}; None for a figure without a breakdown."""
    reps = result.get("reps") or []
    if key in RUN_OF:
        kind = RUN_OF[key]
        e2e, walls = run_stage_walls(reps, kind)
        return {"of": f"{RUN_TEXT[kind]}'s e2e wall", "of_s": e2e, "stages": _ranked(walls, e2e),
                "compare": ({"full run e2e": run_stage_walls(reps, "full")[0]} if key == "incremental_over_full" else
                            {"floor models": _median(r.get("floor", {}).get("models_s") for r in reps)}
                            if key == "pipeline_over_floor" else {})}
    if key == "validation_share":
        e2e, walls = run_stage_walls(reps, "full")
        return {"of": "the full run's e2e wall", "of_s": e2e,
                "stages": _ranked({k: walls.get(k) for k in ("validate_raw", "validate")}, e2e), "compare": {}}
    if key == "r1_dbt_efficiency":
        wall = _median(r.get("full", {}).get("tasks", {}).get("dbt_build", {}).get("wall_s") for r in reps)
        own = _median(r.get("full", {}).get("dbt_elapsed_s") for r in reps)
        parts = {"dbt's own run": own, "outside dbt's run": round(wall - own, 3) if wall and own else None}
        return {"of": "the full run's dbt_build wall", "of_s": wall, "stages": _ranked(parts, wall),
                "compare": {"floor models": _median(r.get("floor", {}).get("models_s") for r in reps),
                            "floor tests": _median(r.get("floor", {}).get("tests_s") for r in reps)}}
    if key == "loader_over_duckdb":
        _, walls = run_stage_walls(reps, "full")
        loads = {}
        for r in reps:
            for tid, t in (r.get("full", {}).get("tasks") or {}).items():
                if tid.startswith("load_") and not t.get("aggregate_of"):
                    loads.setdefault(tid, []).append(t.get("wall_s"))
        of_s = walls.get("load_raw")
        return {"of": "the full run's load_raw wall", "of_s": of_s,
                "stages": _ranked({k: _median(v) for k, v in loads.items()}, of_s),
                "compare": {"DuckDB CTAS": _median(r.get("loader", {}).get("native_s") for r in reps)}}
    return None


def is_met(value, op: str, target: float) -> bool | None:
    if value is None:
        return None
    return value >= target if op == ">=" else value <= target


def unmet_targets(result: dict, targets) -> list[dict]:
    """For every target the medians miss: the figure, its target and the stages holding it (the TOP largest)."""
    out = []
    f = result.get("figures") or {}
    for key, label, op, target in targets:
        v = (f.get(key) or {}).get("median")
        if is_met(v, op, target) is not False:
            continue
        b = breakdown(result, key) or {"of": None, "of_s": None, "stages": [], "compare": {}}
        out.append({"figure": key, "label": label, "measured": v, "op": op, "target": target, "of": b["of"],
                    "of_s": b["of_s"], "stages": b["stages"][:TOP], "compare": b["compare"]})
    return out


def _s(v) -> str:
    return "–" if v is None else f"{v:,.1f} s"


def markdown_lines(unmet: list[dict]) -> list[str]:
    """One bullet per unmet target: 'incremental run / full run 0.21 (target <= 0.1): of the incremental run's e2e
    wall 38.6 s: dbt_build 14.8 s (38 %; dbt: …), …'."""
    if not unmet:
        return ["Every target with a measurement is met."]
    lines = []
    for u in unmet:
        stages = "; ".join(f"**{s['stage']}** {_s(s['wall_s'])}"
                           + (f" ({s['share']:.0%})" if s["share"] is not None else "")
                           + (f" — {s['why']}" if s["why"] else "") for s in u["stages"]) or "no stage measured"
        cmp = ", ".join(f"{k} {_s(v)}" for k, v in u["compare"].items())
        lines.append(f"- {u['label']}: {u['measured']} (target {u['op']} {u['target']}). Held by, of "
                     f"{u['of'] or 'its time'} {_s(u['of_s'])}: {stages}." + (f" Against: {cmp}." if cmp else ""))
    return lines
