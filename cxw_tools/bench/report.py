"""The benchmark's report: the figures (medians over repetitions) of a result, the targets they are held against,
and the result written as JSON and Markdown (bench/results/<date>-<scale>.{json,md})."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from cxw_tools.bench.attribution import is_met, markdown_lines, unmet_targets

# (key in "figures", label, comparison, target) — the targets of issue 20 point 4 (the figures' names are those of
# the first targets, issue "Benchmarks")
TARGETS = [
    ("r1_dbt_efficiency", "dbt efficiency R1 = floor / dbt build", ">=", 0.8),
    ("pipeline_over_floor", "full pipeline (e2e) / floor", "<=", 3.0),
    ("incremental_over_full", "incremental run / full run (wall)", "<=", 0.10),
    ("noop_wall_s", "no-op run wall (s)", "<=", 10.0),
    ("loader_over_duckdb", "loader rows/s / DuckDB read_parquet CTAS rows/s", ">=", 0.9),
    ("validation_share", "validation share of the full run (wall; raw + marts gate)", "<=", 0.10),
    ("hourly_e2e_s", "hourly run with one hour of new data, e2e wall (s)", "<=", 30.0),
]

EXECUTORS = ("local", "in-process")
EXECUTOR_TEXT = {
    "local": "under LocalExecutor (`airflow dags test --use-executor` with an execution API server): independent "
             "tasks in parallel, as in a deployment; per-stage CPU and RSS are the task's own processes",
    "in-process": "one at a time inside `airflow dags test` (no executor); per-stage CPU and RSS are everything "
                  "sampled while the task ran",
}


def _median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 4) if xs else None


WAREHOUSE_STAGES = ("load_raw", "validate_raw", "dbt_build", "analyze", "validate", "publish")
STAGES = ("extract_odoo", "extract_hubspot", "extract_ga4", "extract_google_reviews", "extract_trustpilot",
          "load_odoo", "load_hubspot", "load_ga4", "load_google_reviews", "load_trustpilot",
          "load_raw", "validate_raw", "dbt_build", "analyze", "validate", "publish", "export_alerts", "summarize")


RUN_KINDS = ("full", "incremental", "noop", "hourly")


def figures(result: dict) -> dict:
    reps = result["reps"]
    f: dict = {}

    def med(fn):
        vals = []
        for r in reps:
            try:
                v = fn(r)
            except (KeyError, TypeError, ZeroDivisionError):
                continue
            if v is not None:  # a skipped task has no rows / samples
                vals.append(v)
        return {"median": _median(vals), "min": min(vals) if vals else None, "max": max(vals) if vals else None,
                "n": len(vals)}

    f["full_e2e_s"] = med(lambda r: r["full"]["e2e_wall_s"])
    f["full_extract_span_s"] = med(lambda r: r["full"]["extract_span_s"])
    f["incremental_e2e_s"] = med(lambda r: r["incremental"]["e2e_wall_s"])
    f["noop_wall_s"] = med(lambda r: r["noop"]["e2e_wall_s"])
    f["hourly_e2e_s"] = med(lambda r: r["hourly"]["e2e_wall_s"])
    f["hourly_airflow_overhead_s"] = med(lambda r: r["hourly"]["airflow_overhead_s"])
    f["hourly_cpu_s"] = med(lambda r: r["hourly"]["cpu_s"])
    f["dbt_build_s"] = med(lambda r: r["full"]["tasks"]["dbt_build"]["wall_s"])
    f["dbt_elapsed_s"] = med(lambda r: r["full"]["dbt_elapsed_s"])
    f["floor_models_s"] = med(lambda r: r["floor"]["models_s"])
    f["floor_tests_s"] = med(lambda r: r["floor"]["tests_s"])
    f["r1_dbt_efficiency"] = med(lambda r: round(r["floor"]["models_s"] / r["full"]["tasks"]["dbt_build"]["wall_s"], 4))
    f["r1_with_tests"] = med(lambda r: round((r["floor"]["models_s"] + r["floor"]["tests_s"])
                                             / r["full"]["tasks"]["dbt_build"]["wall_s"], 4))
    f["pipeline_over_floor"] = med(lambda r: round(r["full"]["e2e_wall_s"] / r["floor"]["models_s"], 3))
    # the same ratio without the extract tasks (vendor APIs and their rate limits are not transforms): land raw,
    # both gates, dbt, the analyses and publish over the floor
    f["warehouse_stages_over_floor"] = med(lambda r: round(
        sum(r["full"]["tasks"][t]["wall_s"] for t in WAREHOUSE_STAGES) / r["floor"]["models_s"], 3))
    f["incremental_over_full"] = med(lambda r: round(r["incremental"]["e2e_wall_s"] / r["full"]["e2e_wall_s"], 4))
    f["loader_over_duckdb"] = med(lambda r: r["loader"]["ratio"])
    f["loader_rows_per_s"] = med(lambda r: r["loader"]["loader_rows_per_s"])
    f["duckdb_rows_per_s"] = med(lambda r: r["loader"]["native_rows_per_s"])
    f["load_raw_task_rows_per_s"] = med(lambda r: round(r["full"]["tasks"]["load_raw"]["rows"]
                                                        / r["full"]["tasks"]["load_raw"]["wall_s"]))
    # both gates: the raw gate (validate_raw) and the marts gate (validate)
    f["validation_share"] = med(lambda r: round((r["full"]["tasks"]["validate_raw"]["wall_s"]
                                                 + r["full"]["tasks"]["validate"]["wall_s"]) / r["full"]["e2e_wall_s"], 4))
    f["incremental_validation_share"] = med(lambda r: round((r["incremental"]["tasks"]["validate_raw"]["wall_s"]
                                                             + r["incremental"]["tasks"]["validate"]["wall_s"])
                                                            / r["incremental"]["e2e_wall_s"], 4))
    f["incremental_dbt_build_s"] = med(lambda r: r["incremental"]["tasks"]["dbt_build"]["wall_s"])
    f["noop_airflow_overhead_s"] = med(lambda r: r["noop"]["airflow_overhead_s"])
    f["airflow_overhead_s"] = med(lambda r: r["full"]["airflow_overhead_s"])
    f["full_cpu_s"] = med(lambda r: r["full"]["cpu_s"])
    f["full_peak_rss_mb"] = med(lambda r: r["full"]["peak_rss_mb"])
    f["dbt_peak_spill_bytes"] = med(lambda r: r["full"]["tasks"]["dbt_build"]["peak_spill_bytes"])
    f["floor_peak_spill_bytes"] = med(lambda r: r["floor"]["peak_spill_bytes"])
    for stage in STAGES:
        for kind in RUN_KINDS:
            f[f"{kind}.{stage}.wall_s"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["wall_s"])
            f[f"{kind}.{stage}.cpu_s"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["cpu_s"])
            f[f"{kind}.{stage}.peak_rss_mb"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["peak_rss_mb"])
            f[f"{kind}.{stage}.rows"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["rows"])
    return f


def _write(result: dict, out_dir: Path, partial: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['started_at'][:10]}-{result['scale']}"
    result["partial"] = partial
    if result["reps"]:
        result["figures"] = figures(result)
        result["unmet_targets"] = unmet_targets(result, TARGETS)
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    if result["reps"]:
        (out_dir / f"{stem}.md").write_text(render_markdown(result))
    result["files"] = [str(out_dir / f"{stem}.json"), str(out_dir / f"{stem}.md")]
    return result


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render_markdown(r: dict) -> str:
    f = r["figures"]
    m = r["machine"]
    lines = [f"# Benchmark {r['started_at'][:10]} — scale {r['scale']} (seed {r['seed']})", "",
             *([f"**Partial result** ({len(r['reps'])} of {r['repeat']} repetitions"
                + (f"; stopped by: {r['error'][:300]}" if r.get("error") else "") + ").", ""]
               if r.get("partial") else []),
             f"{len(r['reps'])} repetition(s); medians (min–max). Machine: {m['cpus']} cores, {m['mem_gb']} GiB, "
             f"Python {m['python']}, DuckDB {m.get('duckdb')}; load average at start {_la(m['load_avg_start'])}, "
             f"at end {_la(m.get('load_avg_end'))}. DuckDB memory_limit for dbt: {r['memory_limit'] or 'default (80%)'}."
             f" Started {r['started_at']}, finished {r.get('finished_at')}."
             + (f" Speed probe (DuckDB 100M-row aggregate / 10M-step Python loop, s): start {_probe(m.get('speed_probe_start'))},"
                f" end {_probe(m.get('speed_probe_end'))}." if m.get("speed_probe_start") else "")
             + f" Tasks ran {EXECUTOR_TEXT.get(r.get('executor') or 'in-process')}.", "",
             "| figure | measured (median) | min–max | target | met |", "|---|---|---|---|---|"]
    for key, label, op, target in TARGETS:
        v = f[key]
        ok = is_met(v["median"], op, target)
        lines.append(f"| {label} | {_fmt(v['median'])} | {_fmt(v['min'])}–{_fmt(v['max'])} | {op} {target} | "
                     f"{'–' if ok is None else ('yes' if ok else 'NO')} |")
    if r["scale"] != "L":
        oom, met = "not measured (only at scale L)", "–"
    elif r.get("partial"):
        oom, met = f"did not finish: {(r.get('error') or 'partial')[:120]}", "NO"
    else:
        oom, met = f"finished; dbt peak spill {_fmt(f['dbt_peak_spill_bytes']['median'])} bytes", "yes"
    lines.append(f"| no OOM at L (memory_limit {r['memory_limit']}) | {oom} | | finishes | {met} |")
    lines += ["", "| figure | median | min–max |", "|---|---|---|"]
    for key in ("warehouse_stages_over_floor", "full_e2e_s", "full_extract_span_s", "incremental_e2e_s", "noop_wall_s", "hourly_e2e_s",
                "hourly_airflow_overhead_s", "hourly_cpu_s", "dbt_build_s",
                "dbt_elapsed_s", "floor_models_s", "floor_tests_s", "r1_with_tests", "loader_rows_per_s", "duckdb_rows_per_s", "load_raw_task_rows_per_s",
                "incremental_dbt_build_s", "incremental_validation_share", "airflow_overhead_s",
                "noop_airflow_overhead_s", "full_cpu_s", "full_peak_rss_mb", "dbt_peak_spill_bytes",
                "floor_peak_spill_bytes"):
        v = f[key]
        lines.append(f"| {key} | {_fmt(v['median'])} | {_fmt(v['min'])}–{_fmt(v['max'])} |")
    lines += ["", "Per stage (median wall s / CPU s / peak summed RSS MB / rows):", "",
              "| stage | full | incremental | no-op | hourly |", "|---|---|---|---|---|"]
    for stage in STAGES:
        cells = []
        for kind in RUN_KINDS:
            g = lambda x: f[f"{kind}.{stage}.{x}"]["median"]  # noqa: E731
            cells.append(f"{_fmt(g('wall_s'))} / {_fmt(g('cpu_s'))} / {_fmt(g('peak_rss_mb'))} / {_fmt(g('rows'))}")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    fr = r.get("full_refresh") or {}
    checks = [f"- incremental marts = full refresh (fingerprints of {fr.get('tables_compared')} published tables): "
              + ("not run" if not fr else "equal" if not fr.get("mismatches_vs_incremental") else
                 f"DIFFER: {fr.get('mismatches_vs_incremental')}"),
              f"- full refresh ({fr.get('kind', 'DAG run')}): "
              + (f"dbt build --full-refresh {_fmt(fr.get('wall_s'))} s" if "wall_s" in fr else
                 f"e2e {_fmt(fr.get('e2e_wall_s'))} s, dbt_build "
                 f"{_fmt(((fr.get('tasks') or {}).get('dbt_build') or {}).get('wall_s'))} s")]
    if r.get("full_only"):
        checks = ["- `--full-only`: one full run, its floor and the DuckDB load per repetition; no incremental or "
                  "no-op run and no full-refresh check"]
    for rep in r["reps"]:
        fl = rep["floor"]
        checks.append(f"- rep {rep['rep']}: floor = dbt on {fl['published_tables_compared']} published tables: "
                      + ("equal" if not fl["fingerprint_mismatches"] else f"DIFFER: {fl['fingerprint_mismatches']}")
                      + ("" if "noop" not in rep else
                         f"; no-op run changed tables: {rep['noop_changed_tables'] or 'none'}"
                         f"; no-op run skipped the build: {'yes' if rep['noop'].get('dbt_skipped') else 'NO'}")
                      + _hourly_check(rep))
    notes = sorted({n for rep in r["reps"] for n in rep["floor"]["notes"] if not n.startswith(("seed", "snapshot"))})
    inputs = sorted({n.split()[0] for rep in r["reps"] for n in rep["floor"]["notes"]
                     if n.startswith(("seed", "snapshot"))})
    if r["reps"]:
        lines += ["", "Where a target is not met (the stages with the largest share of the figure's time, medians; "
                  "tasks in parallel overlap, so shares can add up to more than 100 %):", "",
                  *markdown_lines(r.get("unmet_targets") or [])]
    lines += ["", "Checks:", ""] + checks + [
        "", "Notes: timings on a shared machine are noisy; see bench/README.md for what each figure means. "
        f"Floor inputs besides sources: {', '.join(inputs) or 'none'} "
        f"({'read from the build database' if r['reps'] and r['reps'][0]['floor']['prep'].get('attach') else 'copied'}). " + " ".join(notes)]
    return "\n".join(lines) + "\n"


def _hourly_check(rep: dict) -> str:
    h = rep.get("hourly")
    if not h:
        return ""
    return (f"; hourly run (logical date {h['logical_date']}, interval [{h.get('data_interval', ['?', '?'])[0]}, "
            f"{h.get('data_interval', ['?', '?'])[1]})): {h['state']}, publication {h.get('publication_status')}, "
            f"published tables changed vs the no-op run: {len(rep.get('hourly_changed_tables') or [])}, "
            f"GA4 intraday rows in raw: {_fmt(h.get('ga4_intraday_rows'))}, published as_of "
            f"{', '.join(h.get('published_as_of') or []) or '–'}")


def _probe(p) -> str:
    return "–" if not p else f"{p['duckdb_s']:.2f} / {p['python_s']:.2f}"


def _la(v) -> str:
    return "–" if not v else "/".join(f"{x:.1f}" for x in v)


