"""Command line: python -m cxw_tools {demo,run,doctor,rollback,erase,retention,airflow,bench,up,down,status} — used by ./cx."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _day(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cx")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="generate the demo company and run the pipeline DAG on it")
    d.add_argument("--scale", default="S", choices=["XS", "S", "M", "L"])
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--fresh", action="store_true", help="forget raw files, cursors and the build DB first")
    d.add_argument("--verbose", action="store_true", help="stream the Airflow log to the console")
    d.add_argument("--inject-fault", default=None, choices=["gate"],
                   help="after a good publication, feed the DAG broken source data (demo_company/faults.py): "
                        "the quality gate must block it and BI keep the previous generation")
    d.add_argument("--start", default=None, metavar="YYYY-MM-DD",
                   help="first day of the company's history (default 2025-01-01); the first run loads it all")
    d.add_argument("--days", type=int, default=None, help="length of the history in days (default 181)")
    d.add_argument("--as-of", default=None, metavar="ISO",
                   help="what the sources show and the day the DAG runs for (default: start + days)")
    d.add_argument("--ga4-days", type=int, default=None,
                   help="the GA4 export covers only the last N days (keeps a long history small); default: all")
    from cxw_tools.run import __doc__ as run_doc

    rn = sub.add_parser("run", help="run the pipeline on the configured sources, with live progress and the summary",
                        description=run_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    when = rn.add_mutually_exclusive_group()
    when.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD",
                      help="process the data interval of this day, [D 00:00, D+1 00:00) UTC = Airflow logical date "
                           "D+1 (default: the latest complete day, yesterday UTC)")
    when.add_argument("--since", type=_day, default=None, metavar="YYYY-MM-DD",
                      help="process each day from this one to the latest complete day, in order")
    rn.add_argument("--env-file", type=Path, default=None, metavar="PATH",
                    help="KEY=VALUE settings file (default: <repo>/.env when it exists); the environment wins")
    dr = sub.add_parser("doctor", help="check every configured source (one cheap request each), the warehouse "
                                       "path, free disk and the PII salt; one table with what to fix")
    dr.add_argument("--env-file", type=Path, default=None, metavar="PATH",
                    help="KEY=VALUE settings file (default: <repo>/.env when it exists); the environment wins")
    r = sub.add_parser("rollback", help="switch BI back to an earlier published generation")
    r.add_argument("generation", nargs="?")
    e = sub.add_parser("erase", help="remove one person from raw files, the build database, snapshots, dead letters, "
                                     "alert exports and every kept generation (docs/contracts.md section 8)")
    who = e.add_mutually_exclusive_group()
    who.add_argument("--email", help="the person's e-mail address (matched normalised, like the identity graph)")
    who.add_argument("--crm-id", help="a HubSpot contact id of the person")
    who.add_argument("--erp-id", help="an Odoo partner id of the person")
    e.add_argument("--google-review-id", action="append", default=[], metavar="ID",
                   help="a Google review the person wrote (its reviewId, the last part of the review's resource "
                        "name); repeatable; alone or with one of the options above. Google reviews carry no "
                        "identifier of their author, so they are never matched otherwise")
    sub.add_parser("retention", help="drop raw loads and generations older than CXW_RETENTION_DAYS days")
    dc = sub.add_parser("docs", help="print the path of the dbt docs of the published generation (--serve: serve them)")
    dc.add_argument("--serve", action="store_true", help="serve them on 127.0.0.1 (dbt's docs site)")
    dc.add_argument("--port", type=int, default=8081)
    a = sub.add_parser("airflow", help="run an airflow CLI command with the project's AIRFLOW_HOME")
    a.add_argument("args", nargs=argparse.REMAINDER)
    b = sub.add_parser("bench", help="stage timings under Airflow and ratios against the DuckDB floor "
                                     "(bench/README.md)")
    from cxw_tools.bench.harness import add_arguments

    add_arguments(b)
    from cxw_tools.up import add_parsers as add_up_parsers

    add_up_parsers(sub)
    args = ap.parse_args(argv)

    if args.cmd == "demo":
        from cxw_tools.demo import run_demo

        shape = {"start": args.start, "days": args.days, "as_of": args.as_of, "ga4_days": args.ga4_days}
        run_demo(scale=args.scale, seed=args.seed, fresh=args.fresh, echo=args.verbose,
                 inject_fault=args.inject_fault, shape=shape)
        return 0
    if args.cmd == "run":
        from cxw_tools.run import main as run_main

        return run_main(on=args.date, since=args.since, env_file=args.env_file)
    if args.cmd == "doctor":
        from cxw_tools.doctor import main as doctor_main

        return doctor_main(env_file=args.env_file)
    if args.cmd == "rollback":
        from cxw.publish import rollback
        from cxw.warehouse_lock import WarehouseBusy

        try:
            print(json.dumps(rollback(args.generation), indent=1))
        except WarehouseBusy as exc:  # a DAG run or an erasure is active: nothing switched (EX_TEMPFAIL)
            print(str(exc), file=sys.stderr)
            return 75
        return 0
    if args.cmd == "erase":
        import logging

        from cxw.erase import erase
        from cxw.warehouse_lock import WarehouseBusy

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            if not (args.email or args.crm_id or args.erp_id or args.google_review_id):
                e.error("one of --email, --crm-id, --erp-id or --google-review-id is required")
            record = erase(email=args.email, crm_id=args.crm_id, erp_id=args.erp_id,
                           google_review_ids=args.google_review_id)
        except (LookupError, ValueError) as exc:
            print(str(exc), file=sys.stderr)
            return 1
        except WarehouseBusy as exc:  # a DAG run is active: nothing changed, try again later (EX_TEMPFAIL)
            print(str(exc), file=sys.stderr)
            return 75
        print(json.dumps(record, indent=1, default=str))
        return 0
    if args.cmd == "retention":
        from cxw.retention import apply_retention
        from cxw.warehouse_lock import WarehouseBusy

        try:
            print(json.dumps(apply_retention(), indent=1))
        except WarehouseBusy as exc:  # a DAG run or an erasure is active: nothing dropped (EX_TEMPFAIL)
            print(str(exc), file=sys.stderr)
            return 75
        return 0
    if args.cmd == "docs":
        from cxw import docs

        try:
            if args.serve:
                docs.serve(args.port)
            else:
                print(docs.current_docs())
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        return 0
    if args.cmd == "airflow":
        import os

        from cxw_tools.airflow_local import airflow_env

        os.execvpe(sys.executable, [sys.executable, "-m", "airflow", *args.args], airflow_env())
    if args.cmd == "bench":
        from cxw_tools.bench.harness import run_from_args

        return run_from_args(args)
    if args.cmd in ("up", "down", "status"):
        from cxw_tools.up import run_from_args as up_from_args

        return up_from_args(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
