"""Command line: python -m cxw {demo,rollback,airflow,bench} — used by ./cx."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cx")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="generate the demo company and run the pipeline DAG on it")
    d.add_argument("--scale", default="S", choices=["XS", "S", "M", "L"])
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--fresh", action="store_true", help="forget raw files, cursors and the build DB first")
    d.add_argument("--verbose", action="store_true", help="stream the Airflow log to the console")
    r = sub.add_parser("rollback", help="switch BI back to an earlier published generation")
    r.add_argument("generation", nargs="?")
    a = sub.add_parser("airflow", help="run an airflow CLI command with the project's AIRFLOW_HOME")
    a.add_argument("args", nargs=argparse.REMAINDER)
    b = sub.add_parser("bench", help="benchmarks (not yet implemented: see issue 'Benchmarks')")
    b.add_argument("--scale", default="S")
    args = ap.parse_args(argv)

    if args.cmd == "demo":
        from .demo import run_demo

        run_demo(scale=args.scale, seed=args.seed, fresh=args.fresh, echo=args.verbose)
        return 0
    if args.cmd == "rollback":
        from .publish import rollback

        print(json.dumps(rollback(args.generation), indent=1))
        return 0
    if args.cmd == "airflow":
        import os

        from .demo import airflow_env

        os.execvpe(sys.executable, [sys.executable, "-m", "airflow", *args.args], airflow_env())
    if args.cmd == "bench":
        print("cx bench: the benchmark suite is not built yet (open issue: Benchmarks)", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
