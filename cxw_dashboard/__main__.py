"""`python -m cxw_dashboard [--port P] [--host H] [--published PATH | --users FILE]` (what `./cx dashboard` runs);
`--add-user NAME --audience A [--password-stdin]` adds a dashboard user."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cx dashboard", description="Serve the CX dashboard on the published file "
                                 "(read-only; a newly published generation shows without a restart).")
    ap.add_argument("--port", type=int, default=8050, help="port (default 8050; 0 = any free port)")
    ap.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1: this machine only)")
    ap.add_argument("--published", default=None, metavar="PATH",
                    help="serve this one published DuckDB file with no sign-in (e.g. $CXW_HOME/published/"
                         "cx_warehouse.duckdb); default: sign-in, each user reads their audience's file")
    ap.add_argument("--users", default=None, metavar="FILE",
                    help="users file (default $CXW_DASHBOARD_USERS or $CXW_HOME/access/dashboard_users)")
    ap.add_argument("--add-user", default=None, metavar="NAME", help="add or replace a user, then exit")
    ap.add_argument("--audience", default=None, help="the audience of --add-user (access/audiences.yml)")
    ap.add_argument("--password-stdin", action="store_true", help="read --add-user's password from stdin")
    args = ap.parse_args(argv)
    from pathlib import Path

    from . import auth

    users = Path(args.users) if args.users else auth.users_file()
    if args.add_user:
        if not args.audience:
            ap.error("--add-user needs --audience")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            import getpass

            password = getpass.getpass(f"password for {args.add_user}: ")
        try:
            auth.add_user(users, args.add_user, args.audience, password)
        except ValueError as exc:
            print(f"cx dashboard: {exc}", file=sys.stderr)
            return 2
        print(f"cx dashboard: user {args.add_user} ({args.audience}) written to {users}")
        return 0
    if args.published is None and not users.exists():
        from cxw.access import load_audiences

        print(f"cx dashboard: no users file at {users}. Add a user: ./cx dashboard --add-user NAME --audience "
              f"{'|'.join(load_audiences())} (or serve one file without sign-in: --published PATH)",
              file=sys.stderr)
        return 2

    import socket

    import uvicorn
    from a2wsgi import WSGIMiddleware

    from .app import create_app

    if args.published:
        app, what = create_app(args.published), f"{args.published} (read-only, no sign-in)"
    else:
        from cxw.access import audiences_dir

        app = create_app(audiences_dir=audiences_dir(), users_file=users)
        what = f"the signed-in audience's file under {audiences_dir()} (users: {users})"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"cx dashboard: http://{host}:{port}/ reading {what}", flush=True)
    config = uvicorn.Config(WSGIMiddleware(app.server), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
