"""`python -m cxw_dashboard [--port P] [--host H] [--published PATH]` (what `./cx dashboard` runs)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from cxw.config import paths

    ap = argparse.ArgumentParser(prog="cx dashboard", description="Serve the CX dashboard on the published file "
                                 "(read-only; a newly published generation shows without a restart).")
    ap.add_argument("--port", type=int, default=8050, help="port (default 8050; 0 = any free port)")
    ap.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1: this machine only)")
    ap.add_argument("--published", default=None, metavar="PATH",
                    help="the published DuckDB file (default $CXW_HOME/published/cx_warehouse.duckdb)")
    args = ap.parse_args(argv)
    path = args.published or str(paths().published_db)

    import socket

    import uvicorn
    from a2wsgi import WSGIMiddleware

    from .app import create_app

    app = create_app(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"cx dashboard: http://{host}:{port}/ reading {path} (read-only)", flush=True)
    config = uvicorn.Config(WSGIMiddleware(app.server), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
