"""Whether the `analyze` task computes the analyses or keeps the tables an earlier run computed (issue 20: an hourly
run in seconds; docs/analytics.md "Once per as-of day").

The analyses run as of the build's data interval end *date*, so every hourly run of one UTC day asks the same
question. With `CXW_ANALYZE_EVERY=day` (the default when `CXW_SCHEDULE=hourly`) the first successful analyze of an
as-of date computes them, and a later run with the same record keeps their tables in the build database (validate
audits them, publish carries them over) and says so. `run` (the default of a daily schedule) computes every time.

The record, `_cxw.analyzed_with` in the build database (beside `_cxw.dbt_built_from`, cxw.dbt_select): the as-of
date, and every input besides the marts' rows that changes the tables - which analyses and output tables, their code
(the cxw/analytics package and each analysis' module) and the library versions, the seed, the target, and what the
dbt build the analyses read was made from (`_cxw.dbt_built_from`'s inputs: the dbt project, the KPI window `--vars`,
the settings the models read; a dbt var such as `driver_lookback_days` changes it; a window end derived from the
data interval counts as one value, `dbt_key`). It also says which run computed them and when. It is removed before the analyses start and written in the transaction that writes their tables, so a
failed analyze leaves none. An erasure removes it (cxw.erase_stores.rebuild_and_republish), so the next analyze
refits without the erased person; so does a failed marts gate (cxw.tasks.validate), so tables computed from marts
the gate rejected are not kept. Missing output tables, a different record, `CXW_FORCE_BUILD=1`: computed again.

What is kept on purpose: the rows the marts gained since the earlier run of that as-of date (the hours of the day
after it). The first hourly run of a day ends at its midnight, so it holds every row of the days before the as-of
date: the kept tables are those a daily run would compute, a day's rows later than the marts at most.
DuckDB only: on PostgreSQL the analyses run every time (the reason says so).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..buildstate import clear_kv_record, read_kv_record, write_kv_record

RECORD = "_cxw.analyzed_with"
EVERY = ("run", "day")
LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "duckdb")
_NAMES = {"analyses": "the analyses / their tables", "code": "the analyses' code or library versions",
          "seed": "the seed", "target": "the target", "dbt": "what the dbt build was made from (project, vars, settings)"}


def analyze_every(s=None) -> str:
    """CXW_ANALYZE_EVERY, or its default: `day` for an hourly schedule, `run` for a daily one."""
    from ..settings import settings

    s = s or settings()
    value = s.analyze_every or ("day" if s.schedule == "hourly" else "run")
    if value not in EVERY:
        raise ValueError(f"CXW_ANALYZE_EVERY={value!r}: expected one of {list(EVERY)}")
    return value


def code_key(analyses) -> str:
    """The analyses' code: every file of the cxw/analytics package and each analysis' own module (one outside the
    package too), and the versions of the libraries they compute with."""
    import inspect
    from importlib.metadata import PackageNotFoundError, version

    files = set(Path(__file__).parent.glob("*.py"))
    for a in analyses:
        src = inspect.getsourcefile(a.run)
        if src:
            files.add(Path(src))
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.name + "\n" + str(p)):
        h.update(f"{f.name}\n".encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    for lib in LIBRARIES:
        try:
            h.update(f"{lib}=={version(lib)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{lib}==?\n".encode())
    return h.hexdigest()


def dbt_key(dbt_inputs: dict[str, str], as_of: date) -> str:
    """The dbt build's inputs (`_cxw.dbt_built_from`), with a KPI window end the pipeline derived from the data
    interval (the as-of date: a daily run, an hourly run's last hour; the day after: every other hour, whose window
    takes in the day so far) counted as one value: that end moves with the data, like the marts' rows, and the
    first hour of a day would otherwise compute the analyses a second time. An explicit other end, the window's
    start, the project, the vars, the settings and the versions count as they are."""
    ins = dict(dbt_inputs)
    derived = {as_of.isoformat(), (as_of + timedelta(days=1)).isoformat()}
    try:
        args = json.loads(ins.get("args") or "[]")
        for i in range(len(args) - 1):
            if args[i] == "--vars":
                v = json.loads(args[i + 1])
                if isinstance(v, dict) and v.get("kpi_window_end") in derived:
                    args[i + 1] = json.dumps({**v, "kpi_window_end": "<from the as-of date>"}, sort_keys=True)
        ins["args"] = json.dumps(args)
        env = json.loads(ins.get("env") or "{}")
        if isinstance(env, dict) and env.get("CXW_KPI_WINDOW_END") in derived:
            ins["env"] = json.dumps({**env, "CXW_KPI_WINDOW_END": "<from the as-of date>"}, sort_keys=True)
    except (ValueError, TypeError):  # another shape: compared as it is
        ins = dict(dbt_inputs)
    return hashlib.sha256(json.dumps(ins, sort_keys=True).encode()).hexdigest()


def inputs(con, analyses, seed: int, target: str, as_of: date) -> dict[str, str]:
    """What the tables depend on besides the marts' rows and the as-of date (see the module's doc)."""
    from ..dbt_select import read_record

    dbt = read_record(con)
    return {"analyses": ";".join(f"{a.name}:{','.join(a.outputs)}" for a in analyses),
            "code": code_key(analyses), "seed": str(seed), "target": target,
            "dbt": dbt_key(dbt["input"], as_of) if dbt else "none"}


def _exists(con, schema: str, table: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]).fetchone()[0])


def read(con) -> dict | None:
    rec = {"input": {}, "meta": {}, **(read_kv_record(con, RECORD) or {})}
    return rec if rec["input"] and rec["meta"].get("as_of") else None


def clear(con) -> None:
    clear_kv_record(con, RECORD)


def write(con, as_of: date, ins: dict[str, str], run_id: str | None) -> None:
    """After the analyses' tables are written, in the same transaction."""
    meta = {"as_of": as_of.isoformat(), "run_id": run_id or "", "computed_at":
            datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_kv_record(con, RECORD,
                    [["input", k, v] for k, v in ins.items()] + [["meta", k, v] for k, v in meta.items()])


def decide(con, as_of: date, ins: dict[str, str], outputs: list[str], schema: str, *, every: str,
           force: bool = False, target: str = "duckdb") -> dict:
    """{"compute": bool, "reason": str, "kept_from": the record's meta (when kept)}."""
    if every not in EVERY:
        raise ValueError(f"CXW_ANALYZE_EVERY={every!r}: expected one of {list(EVERY)}")

    def compute(reason: str) -> dict:
        return {"compute": True, "reason": reason}

    if every == "run":
        return compute("CXW_ANALYZE_EVERY=run: computed in every run")
    if target != "duckdb":
        return compute(f"target {target}: keeping the analyses of an earlier run is implemented for DuckDB")
    if force:
        return compute("CXW_FORCE_BUILD=1")
    rec = read(con)
    if rec is None:
        return compute("no record of an earlier analyze (first run, or removed by a failed analyze, a failed marts gate or an erasure)")
    if rec["meta"]["as_of"] != as_of.isoformat():
        return compute(f"the as-of date changed: {rec['meta']['as_of']} -> {as_of.isoformat()}")
    differ = [k for k in sorted(set(ins) | set(rec["input"])) if ins.get(k) != rec["input"].get(k)]
    if differ:
        return compute("changed since the earlier analyze: " + ", ".join(_NAMES.get(k, k) for k in differ))
    missing = [t for t in outputs if not _exists(con, schema, t)]
    if missing:
        return compute(f"output tables missing: {', '.join(missing)}")
    meta = rec["meta"]
    return {"compute": False, "kept_from": meta,
            "reason": f"CXW_ANALYZE_EVERY=day: computed as of {meta['as_of']} by run {meta['run_id'] or '?'} at "
                      f"{meta['computed_at']} with the same code, seed and dbt build inputs"}
