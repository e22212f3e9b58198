"""CLI: python -m demo_company generate --scale S --seed 42 --out DIR [--as-of ISO] [--start D --days N] [--ga4-days N]."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .config import DEFAULT_DAYS, DEFAULT_START, SCALES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo_company")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate the demo company's source-system files")
    g.add_argument("--scale", default="S", choices=list(SCALES))
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True)
    g.add_argument("--as-of", default=None, help="ISO date/datetime (UTC); default: window end")
    g.add_argument("--start", default=DEFAULT_START.isoformat())
    g.add_argument("--days", type=int, default=DEFAULT_DAYS)
    g.add_argument("--dirt-scale", type=float, default=1.0, help="multiplies every dirt rate; 0 = clean data")
    g.add_argument("--dirt", default=None, help='JSON object overriding single dirt rates, e.g. {"ga4_late_rate": 0.1}')
    g.add_argument("--workers", type=int, default=None, help="GA4 worker processes (default: CPU count)")
    g.add_argument("--ga4-gzip", default=None, action=argparse.BooleanOptionalAction,
                   help="write the GA4 export as events_YYYYMMDD.json.gz (default: only at scale L)")
    g.add_argument("--ga4-days", type=int, default=None,
                   help="the GA4 export covers only the last N days of the window (linked later than the ERP went "
                        "live): keeps a long history's GA4 files bounded; default: the whole window")
    g.add_argument("--erp-schema", default="odoo17", choices=["odoo17", "webshop"],
                   help="the ERP's tables: Odoo 17 (odoo/odoo.sqlite) or the same records in a webshop schema "
                        "(odoo/webshop.sqlite, read with extractors/odoo/mappings/webshop.yml)")
    g.add_argument("--inject-fault", default=None, choices=["gate"],
                   help="break the source files afterwards to demo the quality gate (demo_company/faults.py)")
    args = ap.parse_args(argv)
    from .generator import generate
    t0 = time.perf_counter()
    manifest = generate(args.out, scale=args.scale, seed=args.seed, as_of=args.as_of, start=args.start,
                        days=args.days, dirt=json.loads(args.dirt) if args.dirt else None,
                        dirt_scale=args.dirt_scale, workers=args.workers, inject_fault=args.inject_fault,
                        ga4_gzip=args.ga4_gzip, ga4_days=args.ga4_days, erp_schema=args.erp_schema)
    ga4_rows = sum(manifest["counts"]["ga4"].values())
    print(f"generated {args.scale}/{args.seed} into {args.out} in {time.perf_counter() - t0:.1f}s "
          f"(window {manifest['window']['start']}..{manifest['window']['end']}, as_of {manifest['as_of']}, "
          f"{ga4_rows} GA4 rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
