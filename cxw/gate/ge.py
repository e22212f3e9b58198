"""Great Expectations plumbing shared by both gates: one in-memory GE context per gate and run (`Gate`), the report
every gate writes and the `ValidationFailed` it raises (`finish`), and what keeps values of the data out of results,
messages and Data Docs.

GE's SQL engine fails on DuckDB (see docs/DECISIONLOG.md), so data reaches GE's pandas engine through Arrow. Severities:
`error` blocks publish (the task fails, naming suite, expectation, table and the count of offending rows), `warn`
publishes and reports.

Every run writes, pass or fail, under `runs/<run_id>/`:
    data_docs/index.html      links to each gate's GE Data Docs: data_docs/raw/, data_docs/marts/
    validation_raw.json       the raw gate's results, validation.json the marts gate's results
GE results keep counts only: `partial_unexpected_count = 0` drops the sample lists of unexpected values, so no value
(possibly personal data) is written to results, Data Docs or messages.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}
DOCS_SITE = "cxw_run"


class ValidationFailed(RuntimeError):
    pass


def _safe_run_id(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def run_dir(run_id: str, runs_root: Path | None = None) -> Path:
    """The run's directory under ``runs_root`` (default: `$CXW_HOME/runs`)."""
    if runs_root is None:
        from ..config import paths

        runs_root = paths().runs
    return runs_root / _safe_run_id(run_id)


class Gate:
    """GE for one gate of one run: an in-memory (ephemeral) context — a file-backed one rewrites its YAML config
    for every added asset, which made each validation ~5× slower — whose Data Docs site is a directory of the run:
    `<run dir>/data_docs/<kind>/` (raw, marts), linked from `<run dir>/data_docs/index.html`."""

    def __init__(self, out_dir: Path, kind: str):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.execution_engine import pandas_execution_engine

        # GE hashes every dataframe under 1 GB (pd.util.hash_pandas_object) only to put a `pandas_data_fingerprint`
        # batch marker in the Data Docs: 8 of the marts gate's 22 s at M. Each result already names its table, run and
        # row count; the published tables' own fingerprints are taken by publish.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.gx = gx
        self.out_dir = out_dir
        self.kind = kind
        self.docs_dir = out_dir / "data_docs" / kind
        out_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        ctx = gx.get_context(mode="ephemeral")
        try:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:  # progress bars are cosmetic
            pass
        ctx.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)}})
        self.ctx = ctx
        self.ds = ctx.data_sources.add_pandas("cxw")

    def run(self, suite_name: str, table: str, df, checks, run_id: str, extra: dict | None = None) -> list[dict]:
        gx = self.gx
        expectations = []
        for chk in checks:
            cls = getattr(gx.expectations, chk.expectation)
            expectations.append(cls(**chk.kwargs, meta={"severity": chk.severity, "why": chk.why}))
        suite = self.ctx.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
        bd = self.ds.add_dataframe_asset(name=suite_name).add_batch_definition_whole_dataframe("whole")
        vd = self.ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}:{_safe_run_id(run_id)}", data=bd, suite=suite))
        res = vd.run(batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT)
        out = []
        for er in res.results:
            cfg = er.expectation_config
            r = er.result or {}
            out.append({
                "suite": suite_name, "table": table, "expectation": cfg.type,
                "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                "row_condition": _condition(cfg.kwargs.get("row_condition")),
                "severity": cfg.meta.get("severity", "error"), "why": cfg.meta.get("why", ""),
                "success": bool(er.success), "rows": int(len(df)),
                "unexpected_count": r.get("unexpected_count"),
                "observed_value": _safe_observed(cfg.type, cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                                                 r.get("observed_value")),
                "expected": {k: _scalar(v) for k, v in cfg.kwargs.items()
                             if k in ("min_value", "max_value", "mostly", "type_")},
                "exception": _exception_text(er.exception_info) if not er.success else None,
                **(extra or {}),
            })
        return out

    def build_docs(self) -> Path:
        shutil.rmtree(self.docs_dir, ignore_errors=True)  # a retried task re-renders its gate from scratch
        _mask_stored_results(self.ctx.validation_results_store)
        self.ctx.build_data_docs(site_names=[DOCS_SITE])
        top = self.out_dir / "data_docs" / "index.html"
        gates = [d.name for d in sorted(top.parent.iterdir()) if (d / "index.html").exists()]
        links = "".join(f'<li><a href="{g}/index.html">{g} gate</a></li>' for g in gates)
        tmp = top.with_name(".index.html.tmp")
        tmp.write_text(f"<!doctype html><meta charset=utf-8><title>CX warehouse gates — {self.out_dir.name}</title>"
                       f"<h1>Great Expectations Data Docs — run {self.out_dir.name}</h1><ul>{links}</ul>")
        os.replace(tmp, top)
        return self.docs_dir / "index.html"


def finish(kind: str, run_id: str, results: list[dict], out_dir: Path, gate: Gate | None, t0: float,
           extra: dict | None = None, hint: str | None = None, file_only: dict | None = None) -> dict:
    """Close a gate: render its Data Docs, write `validation.json` (marts) or `validation_raw.json` (raw) into
    ``out_dir`` and return the report; raise `ValidationFailed` when an error-severity check failed."""
    docs = None
    if gate is not None:
        try:
            docs = str(gate.build_docs())
        except Exception as exc:  # docs are a report; a rendering problem must not hide the verdict
            log.warning("could not build Data Docs: %s", exc)
    errors = [r for r in results if not r["success"] and r["severity"] == "error"]
    warnings = [r for r in results if not r["success"] and r["severity"] != "error"]
    fname = "validation.json" if kind == "marts" else "validation_raw.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"run_id": run_id, "gate": kind, "status": "failed" if errors else "passed",
              "checked_tables": sorted({r["table"] for r in results}), "expectations": len(results),
              "errors": len(errors), "warnings": len(warnings), "seconds": round(time.perf_counter() - t0, 2),
              "results_path": str(out_dir / fname), "data_docs": docs,
              "failed_checks": [_describe(e) for e in errors[:50]],
              "warned_checks": [_describe(w) for w in warnings[:50]], **(extra or {})}
    (out_dir / fname).write_text(json.dumps({**report, **(file_only or {}), "results": results}, indent=1,
                                            default=str))
    for w in warnings:
        log.warning("validation warning: %s", _describe(w))
    if errors:
        raise ValidationFailed(
            f"{kind} gate: {len(errors)} error-severity check(s) failed; publish blocked, the published "
            f"generation is unchanged.\n  " + "\n  ".join(_describe(e) for e in errors[:20])
            + f"\nData Docs: {docs}\nResults: {out_dir / fname}" + (f"\n{hint}" if hint else ""))
    return report


def _condition(c):
    if c is None or isinstance(c, str):
        return c
    if isinstance(c, dict):
        return c.get("pass_through_filter") or str(c)
    return getattr(c, "pass_through_filter", None) or str(c)


def _scalar(v):
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)[:200]


# Columns whose values identify a person or a record (keys, ids, hashes, contact data, names, pseudo ids): an
# observed value of theirs (a max, a most common value) is never reported, only that the check failed.
_IDENTIFYING_COLUMN = re.compile(r"(^|_)(id|ids|sk|key|email|e_mail|phone|mobile|name|hash|user|pseudo|recipient|"
                                 r"address|street|zip|ip|reference|referral)(_|s?$)", re.I)


def _redact(msg):
    """An exception text fit for a message: no quoted text (pandas and GE quote the offending value: "Could not
    convert 'jane@example.org' to numeric"), no e-mail, no run of digits (a phone, an id); first 300 characters."""
    from extractors.common.redact import mask_values

    return mask_values(msg) if isinstance(msg, str) else msg


def _exception_text(info) -> str | None:
    """GE puts an expectation's error at the top of `exception_info`, or per metric one level down
    ({metric id: {exception_message, exception_traceback}}): the messages, without values (`_redact`). The
    tracebacks are never kept (they repeat the message)."""
    if not isinstance(info, dict):
        return None
    msgs = [info.get("exception_message")] if info.get("exception_message") else \
        [v.get("exception_message") for v in info.values() if isinstance(v, dict) and v.get("exception_message")]
    msgs = list(dict.fromkeys(_redact(m) for m in msgs if isinstance(m, str)))
    return "; ".join(msgs)[:500] if msgs else None


def _safe_observed(expectation: str, column, value):
    """The observed value of an aggregate check (a row count, a type name, a min / max / mean) when it is a number of
    a column that does not identify anyone, or the observed type of a type check; else None (a most common value,
    a max of an id or e-mail column: data, possibly personal)."""
    if value is None:
        return None
    if "to_be_of_type" in expectation or "to_be_in_type_list" in expectation:
        return _scalar(value) if isinstance(value, str) and len(value) <= 40 else None
    if column and _IDENTIFYING_COLUMN.search(str(column)):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            value = value.item()  # numpy scalars
        except (TypeError, ValueError):
            return None
    return value if isinstance(value, (int, float, bool)) else None


# result fields that hold values of the data (GX's SUMMARY / COMPLETE formats; `details` holds e.g. value counts)
_VALUE_FIELDS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
                 "unexpected_list", "unexpected_index_list", "unexpected_index_query", "unexpected_rows", "details")


def _mask_stored_results(store) -> None:
    """Data Docs render what the validation results store holds: every result's observed value, unexpected values
    and exception message and traceback (issue 15.4: the run directory's Data Docs showed the max of a contact id, a
    most common id, the e-mail pandas could not convert). Before rendering, each stored result is reduced to what
    the gate reports itself: the observed value only as `_safe_observed` allows (else none), no value lists, the
    exception's message masked (`_redact`) and no traceback."""
    for key in store.list_keys():
        res = store.get(key)
        for er in getattr(res, "results", None) or []:
            cfg = er.expectation_config
            kwargs = getattr(cfg, "kwargs", None) or {}
            column = kwargs.get("column") or kwargs.get("column_A")
            result = er.result or {}
            if "observed_value" in result:
                result["observed_value"] = _safe_observed(cfg.type, column, result["observed_value"])
            for f in _VALUE_FIELDS:
                result.pop(f, None)
            er.result = result
            info = er.exception_info
            if isinstance(info, dict) and info:
                text = _exception_text(info)
                er.exception_info = {"raised_exception": bool(text), "exception_message": text or "",
                                     "exception_traceback": "(not kept: it can quote values of the data)"}
        store.set(key, res)


def _describe(r: dict) -> str:
    where = f" column {r['column']}" if r.get("column") else ""
    cond = f" where {r['row_condition']}" if r.get("row_condition") else ""
    count = r.get("unexpected_count")
    if r.get("offending_loads"):
        what = f"{len(r['offending_loads'])} offending load(s): " + "; ".join(r["offending_loads"][:5])
    elif count is not None:
        what = f"{count} offending row(s) of {r['rows']}"
    elif r.get("exception"):
        what = f"error: {r['exception']}"
    else:
        exp = r.get("expected") or {}
        observed = r.get("observed_value")
        what = ("observed value not reported (a value of the data)" if observed is None
                else f"observed {observed}") + (f", expected {exp}" if exp else "")
    return (f"suite {r['suite']}: {r['expectation']} on table {r['table']}{where}{cond} failed — {what}"
            + (f" ({r['why']})" if r.get("why") else ""))
