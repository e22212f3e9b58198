"""Local sign-in for the dashboard (issue 18.4): users in a file, each with an audience and a salted password hash.

    $CXW_DASHBOARD_USERS (default $CXW_HOME/access/dashboard_users), one user per line:
    <name>:<audience>:<password hash>       (werkzeug.security: scrypt with a random salt)

The file holds no plaintext password and lives under CXW_HOME, never in the repository; `./cx dashboard --add-user
NAME --audience A` writes it (the password from a prompt or stdin). A signed-in user reads only their audience's
published file (published/audiences/<audience>/cx_warehouse.duckdb). For SSO, put an authenticating reverse proxy
in front and let it pass the audience (docs/operations.md "Dashboard behind single sign-on")."""

from __future__ import annotations

import os
import re
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# checked when no such user exists, so a wrong name takes as long as a wrong password
_DUMMY_HASH = generate_password_hash("not a password")


def users_file() -> Path:
    from cxw.config import paths

    return Path(os.environ.get("CXW_DASHBOARD_USERS") or paths().home / "access" / "dashboard_users")


def read_users(path: Path) -> dict[str, tuple[str, str]]:
    """{name: (audience, hash)}; a malformed line is an error (never a user without a password)."""
    users = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not USER_NAME.match(parts[0]) or not parts[2].strip():
            raise ValueError(f"{path}:{i}: expected <name>:<audience>:<password hash>")
        users[parts[0]] = (parts[1], parts[2].strip())
    return users


def add_user(path: Path, name: str, audience: str, password: str) -> None:
    """Add or replace ``name`` in the users file (written to a temp file and renamed; mode 0600)."""
    from cxw.access import load_audiences

    if not USER_NAME.match(name):
        raise ValueError(f"user name {name!r} must match {USER_NAME.pattern}")
    if audience not in load_audiences():
        raise ValueError(f"audience {audience!r} is not configured (access/audiences.yml)")
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    path = Path(path)
    users = read_users(path) if path.exists() else {}
    users[name] = (audience, generate_password_hash(password))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# name:audience:password hash (cxw_dashboard/auth.py)\n")
        f.writelines(f"{n}:{a}:{h}\n" for n, (a, h) in sorted(users.items()))
    os.replace(tmp, path)


def authenticate(path: Path, name: str, password: str) -> str | None:
    """The audience of ``name`` when ``password`` is theirs, else None."""
    users = read_users(path)
    audience, hashed = users.get(name, (None, _DUMMY_HASH))
    ok = check_password_hash(hashed, password or "")
    return audience if ok and audience is not None else None


def ensure_demo_users(path: Path | None = None) -> str | None:
    """`./cx demo`: when there is no users file yet, one demo user per configured audience (named after it) with one
    random password, returned once to be printed (only its hash is stored). None when a users file exists."""
    import secrets

    from cxw.access import load_audiences

    path = Path(path) if path else users_file()
    if path.exists():
        return None
    password = secrets.token_urlsafe(12)
    for audience in load_audiences():
        add_user(path, audience, audience, password)
    return password
