"""The raw gate: the new raw loads, read from their Parquet files (pyarrow → pandas, never through the warehouse),
after the `load_<source>` tasks and before dbt.

Per entity, its pending loads (`_pending_loads`) get a row in the load log (`volume.volume_log_rows`); those that
repeat validated content keep the verdict of what they copy (`_mark_repeats`); the others' rows are read
(`_read_new_rows`) and checked against the entity's suite (`raw_suites.raw_suite`). Then the volume suite runs once
over the load log (`_check_volume`), and each load's verdict is recorded (`_record_verdicts`) in the gate's verdicts
file, `$CXW_HOME/state/raw_gate.json` (`RawGateVerdicts`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ge import Gate, finish, run_dir
from .raw_suites import REQUIRED, raw_suite
from .volume import VolumeRule, offending_loads, rows_vs_min_rows_only, volume_log_rows, volume_suite

VERDICTS_FILE = "raw_gate.json"  # under the state directory; the name predates "verdicts" and stays (stored state)


class RawGateVerdicts:
    """The raw gate's verdicts, `<state>/raw_gate.json` (replaced atomically):

    * ``passed`` — {load_id: the run that passed it, or "<run> (accepted)", "(superseded)", "(repeats validated
      content)"}: a load listed here is not checked again;
    * ``schemas`` — {`<source>__<entity>`: digests of the Parquet schemas (columns and Arrow types) of loads whose
      rows the gate has read and passed}."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {"passed": {}}
        self.passed: dict[str, str] = self.data.setdefault("passed", {})
        self.schemas: dict[str, list[str]] = self.data.setdefault("schemas", {})

    def save(self) -> None:
        f = self.path
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
        with tmp.open("w") as fh:
            json.dump(self.data, fh, indent=0, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, f)


def accepted_loads_from_env() -> set[str]:
    """`CXW_GATE_ACCEPT_LOADS`: comma-separated load ids accepted after review."""
    from ..settings import settings

    return {x.strip() for x in settings().gate_accept_loads.split(",") if x.strip()}


def validate_raw(run_id: str, load_ids: list[str] | None = None, raw_root: Path | None = None,
                 out_dir: Path | None = None, state_dir: Path | None = None, build_db: Path | None = None,
                 rule: VolumeRule | None = None, accepted: set[str] | None = None) -> dict:
    """Audit the raw loads not yet passed by the gate (and, if given, the loads of this run) before dbt.

    A load that failed stays pending: every later run checks it again (it is already in the raw tables and would
    otherwise be built into the marts), until a newer load of the same GA4 export day supersedes it or it is
    accepted by listing its id in `CXW_GATE_ACCEPT_LOADS` (comma-separated) after review.

    A load that repeats validated content (`_repeats_validated_content`: a re-read that brought nothing new) is not
    read or validated again — its verdict is that of the loads it copies — unless its row count is below its volume
    threshold; it still counts in the volume baselines of later loads. A run whose new loads all repeat validated
    content at their usual volume does not start Great Expectations at all (no raw Data Docs for that run).

    Defaults (the task passes none): the raw root, state directory and run directory of `cxw.config.paths()`, the
    build database when the target is DuckDB (the loader's bookkeeping of new content), the volume rule
    (`VolumeRule.from_env`) and accepted loads (`CXW_GATE_ACCEPT_LOADS`) from the environment.
    """
    from ..config import dbt_target, paths

    p = paths()
    if build_db is None and dbt_target() == "duckdb":
        build_db = p.build_db
    return audit_raw(run_id, set(load_ids or []), raw_root or p.raw, out_dir or run_dir(run_id),
                     RawGateVerdicts((state_dir or p.state) / VERDICTS_FILE), rule or VolumeRule.from_env(),
                     accepted_loads_from_env() if accepted is None else accepted, _new_content_by_load(build_db))


@dataclass
class _RawAudit:
    """What one raw gate run gathers across entities."""
    out_dir: Path
    gate: Gate | None = None  # started on the first check: a run without any starts no GE at all
    results: list[dict] = field(default_factory=list)
    new_count: int = 0
    read_s: float = 0.0
    rows_read: int = 0
    log_rows: list[dict] = field(default_factory=list)  # the load log: one row per new load
    checked_ids: list[str] = field(default_factory=list)  # loads GX checks (rows and/or volume)
    inherited_ids: list[str] = field(default_factory=list)  # loads keeping the verdict of the content they repeat
    repeated_ids: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    read_schemas: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # load_id → (entity, digests)

    def ge(self) -> Gate:
        if self.gate is None:
            self.gate = Gate(self.out_dir, "raw")
        return self.gate


def audit_raw(run_id: str, wanted: set[str], raw_root: Path, out_dir: Path, verdicts: RawGateVerdicts,
              rule: VolumeRule, accepted: set[str], new_content: dict[str, int]) -> dict:
    """The raw gate on explicit inputs (see `validate_raw`)."""
    from ..loader import complete_loads

    t0 = time.perf_counter()
    a = _RawAudit(out_dir)
    volume_only = rows_vs_min_rows_only(volume_suite())
    by_entity: dict[tuple[str, str], list] = {}
    for ld in complete_loads(raw_root):
        by_entity.setdefault((ld.source, ld.entity), []).append(ld)
    for (source, entity), group in sorted(by_entity.items()):
        group.sort(key=lambda ld: ld.load_id)
        new, superseded = _pending_loads(group, verdicts.passed, accepted, wanted)
        a.superseded += superseded
        if not new:
            continue
        a.new_count += len(new)
        name = f"{source}__{entity}"
        log_rows = volume_log_rows(source, entity, group, new, rule)
        repeat_ids = _mark_repeats(log_rows, new, group, new_content, set(verdicts.passed) | accepted,
                                   verdicts.schemas.get(name, []), volume_only)
        a.repeated_ids += sorted(repeat_ids)
        for row in log_rows:
            (a.checked_ids if row["gx"] else a.inherited_ids).append(row["load_id"])
        a.log_rows += log_rows
        # Rows: schema and ranges, on the Parquet files of the new loads that do not repeat validated content (only
        # the columns the suite needs).
        rows_new = [ld for ld in new if ld.load_id not in repeat_ids]
        if not any(ld.files for ld in rows_new) or not any(int(ld.meta.get("rows") or 0) for ld in rows_new):
            continue  # no row to check: an entity without rows (yet) is a valid state, whatever its files' schema
        t1 = time.perf_counter()
        df, schemas = _read_new_rows(name, rows_new)
        a.read_schemas.update(schemas)
        a.read_s += time.perf_counter() - t1
        a.rows_read += len(df)
        days = sorted({str(ld.meta["export_date"]).replace("-", "") for ld in rows_new
                       if ld.meta.get("export_date")})
        checks = raw_suite(name, list(df.columns), days or None)
        if checks:
            a.results += a.ge().run(f"raw.{name}", f"raw.{source}.{entity}", df, checks, run_id,
                                    {"loads": [ld.load_id for ld in rows_new]})
    a.results = _check_volume(a, rule, run_id) + a.results
    blocked = _record_verdicts(a, verdicts, accepted, run_id)
    hint = (f"If the data is right (a real quiet day, a vendor's fix), accept after review: run again with "
            f"CXW_GATE_ACCEPT_LOADS={','.join(blocked)} (the gate records accepted loads and does not check "
            f"them again).") if blocked else None
    return finish("raw", run_id, a.results, out_dir, a.gate, t0,
                  {"new_loads": a.new_count, "rows_read": a.rows_read, "read_seconds": round(a.read_s, 2),
                   "loads_validated": len(a.checked_ids), "loads_repeating_validated_content": len(a.repeated_ids),
                   "loads_with_inherited_verdict": len(a.inherited_ids), "accept_hint": hint}, hint=hint,
                  # in validation_raw.json only (not in the task's XCom: a first GA4 run has hundreds of loads):
                  # each new load's volume inputs — kind, rows, baseline (basis, loads, median), threshold, blocking,
                  # whether it repeats validated content and whether GX checked it — and which loads GX checked
                  file_only={"volume": a.log_rows, "validated_loads": a.checked_ids,
                             "inherited_verdict_loads": a.inherited_ids})


def _pending_loads(group: list, passed: dict, accepted: set[str], wanted: set[str]) -> tuple[list, list[str]]:
    """(the loads of ``group`` the gate checks now, the ids of loads a newer delivery of their GA4 export day made
    moot): loads without a verdict, plus ``wanted`` (this run's), minus accepted ones."""
    new = [ld for ld in group if (ld.load_id not in passed or ld.load_id in wanted)
           and ld.load_id not in accepted]
    # A newer load of the same GA4 export day replaces an older one in staging: the older one is moot.
    latest_of_day = {ld.meta.get("export_date"): ld.load_id for ld in group if ld.meta.get("export_date")}
    keep, superseded = [], []
    for ld in new:
        day = ld.meta.get("export_date")
        if day and latest_of_day.get(day) != ld.load_id and ld.load_id not in wanted:
            superseded.append(ld.load_id)
            continue
        keep.append(ld)
    return keep, superseded


def _mark_repeats(log_rows: list[dict], new: list, group: list, new_content: dict[str, int], settled_ids: set[str],
                  schemas: list[str], volume_only: bool) -> set[str]:
    """Loads that repeat validated content (`_repeats_validated_content`): their rows are not read again. Their
    volume is still judged: one below its threshold goes through the volume suite like any other load (a truncated
    re-read brings no new row, yet it is a broken feed); at or above it, the suite — rows ≥ min_rows — passes by
    construction, so the load keeps the verdict its content already has and GX is not started for it (``gx`` False
    in its load log row). Returns the repeating loads' ids."""
    repeats = _repeats_validated_content(new, group, new_content, settled_ids, schemas)
    repeat_ids = {ld.load_id for ld in repeats}
    for row in log_rows:
        row["repeats_validated_content"] = row["load_id"] in repeat_ids
        row["gx"] = not (row["repeats_validated_content"] and volume_only and row["rows"] >= row["min_rows"])
    return repeat_ids


def _read_new_rows(name: str, rows_new: list):
    """(the rows of ``rows_new`` — the columns the entity's suite reads — as one pandas frame, {load_id: (name,
    digests of its files' schemas)}). int64 is read as pandas Int64 so that nulls keep it integer."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

    files = [str(f) for ld in rows_new for f in ld.files]
    req = REQUIRED.get(name, {})
    int_as_nullable = {pa.int64(): pd.Int64Dtype()}.get
    schemas = [frag.physical_schema for frag in pads.dataset(files, format="parquet").get_fragments()]
    file_schema = dict(zip(files, (_schema_digest(sc) for sc in schemas)))
    read_schemas = {ld.load_id: (name, {file_schema[str(f)] for f in ld.files}) for ld in rows_new}
    names = {n for sc in schemas for n in sc.names}
    cols = [c for c in req if c in names] + [
        c for c in ("stars", "starRating", "properties__hs_survey_type", "properties__hs_value", "event_date")
        if c in names and c not in req]
    if not cols:
        return pd.DataFrame(index=range(sum(int(ld.meta.get("rows") or 0) for ld in rows_new))), read_schemas
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        df = pads.dataset(files, format="parquet", schema=schema).to_table(columns=cols) \
            .to_pandas(types_mapper=int_as_nullable)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # A column changed type between loads: read each file as delivered, so the type check sees
        # both types instead of the read failing.
        frames = []
        for f, sc in zip(files, schemas):
            frames.append(pads.dataset(f, format="parquet").to_table(
                columns=[c for c in cols if c in sc.names]).to_pandas(types_mapper=int_as_nullable))
        df = pd.concat(frames, ignore_index=True)
    return df, read_schemas


def _check_volume(a: _RawAudit, rule: VolumeRule, run_id: str) -> list[dict]:
    """Volume: one suite over the load log of the new loads GX checks (one row per load), so a run with many small
    entities pays GE's per-validation overhead once. A failed check names its offending loads."""
    gx_log_rows = [r for r in a.log_rows if r["gx"]]
    if not gx_log_rows:
        return []
    import pandas as pd

    log_df = pd.DataFrame(gx_log_rows)
    vol = a.ge().run("raw.load_log", "raw load log (new loads)", log_df, volume_suite(), run_id)
    for r in vol:
        r["rows"] = int(len(log_df))
        if not r["success"]:
            r["offending_loads"] = offending_loads(log_df, r, rule)
    return vol


def _record_verdicts(a: _RawAudit, verdicts: RawGateVerdicts, accepted: set[str], run_id: str) -> list[str]:
    """Record the run's verdicts and save them: a checked load passes unless an error-severity failure blames it (a
    failure that cannot be attributed to loads — e.g. the expectation itself errored — blames all checked loads);
    repeats, accepted and superseded loads are recorded as such. Returns the blocked load ids."""
    passed = verdicts.passed
    errors_by_load = set()
    for r in a.results:
        if not r["success"] and r["severity"] == "error":
            blamed = [x.split(":")[0] for x in r["offending_loads"]] if r.get("offending_loads") \
                else (r.get("loads") or [])
            errors_by_load.update(blamed or a.checked_ids)
    for lid in a.checked_ids:
        if lid not in errors_by_load:
            passed[lid] = run_id
            if lid in a.read_schemas:  # rows read and passed: its schema is validated for later repeats
                ent, digests = a.read_schemas[lid]
                verdicts.schemas[ent] = sorted(set(verdicts.schemas.get(ent, [])) | digests)
    for lid in a.inherited_ids:
        passed[lid] = f"{run_id} (repeats validated content)"
    for lid in accepted | set(a.superseded):
        passed.setdefault(lid, f"{run_id} ({'accepted' if lid in accepted else 'superseded'})")
    verdicts.save()
    return sorted(errors_by_load & set(a.checked_ids))


def _repeats_validated_content(new: list, group: list, fresh: dict[str, int], settled_ids: set[str],
                               schemas: list[str]) -> list:
    """The loads of ``new`` whose content equals content the gate already validated, so their rows need no check.

    "Equal" means all of:
      * the loader found no row of the load new (``_cxw.raw_table_loads.new_content_rows = 0``): every row, on all
        columns but `_load_id`, `_extracted_at` and `_record_seq`, is an exact copy (DuckDB `hash` of every column) of
        a row of an earlier load of the entity — for an `__ids` snapshot: the same ids as the previous snapshot; an
        empty load qualifies trivially; a GA4 export-day delivery with rows never does (it replaces its day);
      * every earlier load of the entity has a verdict (``settled_ids``: passed, accepted after review or superseded,
        in the gate's verdicts) or is itself such a repeat — a copy of a load that failed, or of one not validated
        yet, is checked as usual;
      * each of its Parquet files has a schema (column names and Arrow types) the gate has read and passed for this
        entity before (``schemas``, digests in the gate's verdicts): a re-read whose values hash alike but whose column
        changed type is validated again.
    Without the loader's bookkeeping (PostgreSQL target, no build database) no load qualifies."""
    out = []
    settled = True  # every load of `group` before the current one has a verdict
    wanted = {ld.load_id for ld in new}
    known = set(schemas)
    digests = None
    for ld in group:
        if ld.load_id in wanted and settled and fresh.get(ld.load_id) == 0:
            if ld.files:
                if digests is None:
                    import pyarrow.parquet as pq

                    digests = lambda f: _schema_digest(pq.read_schema(f))  # noqa: E731 - footer only
                ok = all(digests(f) in known for f in ld.files)
            else:
                ok = True
            if ok:
                out.append(ld)
        settled = settled and (ld.load_id in settled_ids or bool(out and out[-1] is ld))
    return out


def _schema_digest(schema) -> str:
    """Digest of a Parquet file's columns and Arrow types, without the load metadata columns."""
    import hashlib

    from ..loader import META_COLUMNS

    cols = sorted(f"{f.name}:{f.type}" for f in schema if f.name not in META_COLUMNS)
    return hashlib.sha256("\n".join(cols).encode()).hexdigest()[:16]


def _new_content_by_load(build_db: Path | None) -> dict[str, int]:
    """{load_id: rows that are new content} from the DuckDB loader's bookkeeping in ``build_db`` (empty without one —
    another target — or before the first load). The raw gate runs after the `load_<source>` tasks and holds the build
    database's pool, so reading is safe."""
    import duckdb

    if build_db is None or not build_db.exists():
        return {}
    from ..loader import connect_build_db

    try:
        con, _ = connect_build_db(build_db, read_only=True)  # waits while another run writes it (issue 15)
    except duckdb.Error:
        return {}
    try:
        return dict(con.execute("select load_id, new_content_rows from _cxw.raw_table_loads").fetchall())
    except duckdb.Error:
        return {}
    finally:
        con.close()
