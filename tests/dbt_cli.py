"""`dbt` as the tests run it, with dbt's own partial parsing shared between the tests of a session (issue 16.8).

Every test builds its own database in its own target directory, so every `dbt` call used to parse the whole project
again: about 5 CPU-seconds of each call (a cold `dbt parse` 9.0 s user, the same call on a saved parse 3.9 s;
2026-12-06). dbt keeps its parse in `<target>/partial_parse.msgpack` and reuses it when nothing it depends on changed:
project files, `--vars`, the profile's rendered values (so the database PATH) and the env vars the project reads.
`run` gives every call the same profile: dbt runs in the database's directory with `CXW_BUILD_DB` set to the file's
name, and a new target directory gets the saved parse of an earlier call with the same settings. dbt itself checks that
saved parse against the project and the settings and parses in full when anything differs (a changed model, other
vars, another target): the cache can make a call slower never wrong. `CXW_DBT_PARSE_CACHE=0` turns it off.

The calls of one test process go to one long-lived dbt process (tests/dbt_server.py: dbt's `dbtRunner`, what the
`dbt` command runs, with the call's environment, directory, arguments and exit code): a call no longer starts Python
and imports dbt (2026-12-07: about 3 of the 6 CPU-seconds of a review-staging build on a saved parse).
`CXW_TEST_DBT_SERVER=0` runs each call as its own `dbt` process again.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
PARSE_FILE = "partial_parse.msgpack"
SERVER = Path(__file__).with_name("dbt_server.py")
RESULT_PREFIX = "@@dbt-result@@ "  # the answer line of tests/dbt_server.py
# settings that differ per test but are not part of dbt's parse state (CXW_BUILD_DB is made relative below)
_PER_TEST = {"CXW_HOME", "DBT_TARGET_PATH", "DBT_LOG_PATH"}
_cache_dir: Path | None = None


def _cache() -> Path:
    """The session's CXW_DBT_PARSE_CACHE_DIR (tests/conftest.py sets one per session; `./cx mutate` one per slot, kept
    from one mutation's copy to the next at the same path), else a directory of this process."""
    global _cache_dir
    if _cache_dir is None:
        if os.environ.get("CXW_DBT_PARSE_CACHE_DIR"):
            _cache_dir = Path(os.environ["CXW_DBT_PARSE_CACHE_DIR"]) / "dbt_cli"
        else:
            _cache_dir = Path(tempfile.mkdtemp(prefix="cxw-dbt-parse-"))
            atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def _key(env: dict, args: tuple[str, ...]) -> str:
    """What dbt's parse depends on besides the project files (which dbt checks itself): the CXW_* / DBT_* settings
    (the profile and project read them) and the `--vars` and `--target` of the command."""
    settings = sorted((k, v) for k, v in env.items() if k.startswith(("CXW_", "DBT_")) and k not in _PER_TEST)
    vars_ = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--vars", "--target")]
    return hashlib.sha256(repr((settings, vars_)).encode()).hexdigest()[:16]


class _Server:
    """The test process's dbt process (tests/dbt_server.py), started at its first call; a call that times out or
    loses it kills it (the next call starts another)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def call(self, cmd: list[str], env: dict, cwd: str, timeout: float) -> subprocess.CompletedProcess:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-u", str(SERVER)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1)
            atexit.register(self.stop)
        reply: list[str] = []

        def exchange() -> None:
            self.proc.stdin.write(json.dumps({"args": cmd[1:], "env": env, "cwd": cwd}) + "\n")
            self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith(RESULT_PREFIX):
                    reply.append(line[len(RESULT_PREFIX):])
                    return

        t = threading.Thread(target=exchange, daemon=True)
        t.start()
        t.join(timeout)
        if not reply:
            self.stop()
            if t.is_alive():
                raise subprocess.TimeoutExpired(cmd, timeout)
            raise RuntimeError(f"the dbt process of {cmd} ended without an answer")
        res = json.loads(reply[0])
        return subprocess.CompletedProcess(cmd, res["returncode"], res["stdout"], res["stderr"])

    def stop(self) -> None:
        """End of the test process (atexit) or a lost call: stdin closed ends its loop; killed if it does not end."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


_server = _Server()


def run(env: dict, *args: str, timeout: float = 600, project: Path = PROJECT) -> subprocess.CompletedProcess:
    """`dbt <args> --project-dir <project> --profiles-dir <project>` under `env` (which sets CXW_BUILD_DB,
    DBT_TARGET_PATH and DBT_LOG_PATH as the test wants); returns the finished process, output captured."""
    dbt = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt) if dbt.exists() else "dbt", *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    env = dict(env)
    cwd = None
    target = Path(env["DBT_TARGET_PATH"]) if env.get("DBT_TARGET_PATH") else None
    use_cache = os.environ.get("CXW_DBT_PARSE_CACHE", "1") != "0" and target is not None and "--no-partial-parse" \
        not in args
    if use_cache and env.get("CXW_BUILD_DB"):
        db = Path(env["CXW_BUILD_DB"])
        if db.is_absolute():  # the same profile for every test: the file's name, resolved in its directory
            db.parent.mkdir(parents=True, exist_ok=True)
            cwd, env["CXW_BUILD_DB"] = str(db.parent), db.name
    saved = _cache() / _key(env, args) / PARSE_FILE if use_cache else None
    if saved is not None and saved.exists() and not (target / PARSE_FILE).exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, target / PARSE_FILE)
    if os.environ.get("CXW_TEST_DBT_SERVER", "1") != "0":
        proc = _server.call(cmd, env, cwd or os.getcwd(), timeout)
    else:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if saved is not None and not saved.exists() and (target / PARSE_FILE).exists():
        saved.parent.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_suffix(".tmp")
        shutil.copyfile(target / PARSE_FILE, tmp)
        os.replace(tmp, saved)
    return proc


def session_selection(request, fixture: str) -> list[str] | None:
    """The dbt selectors a module fixture `fixture` has to build for the tests collected in this session: the union of
    their `@pytest.mark.dbt_select(...)` (the nodes each test reads, `+model` for the model and its upstream: seeds,
    macros and sources come with the graph), or None (build the whole project) when a collected test of this module
    that uses the fixture declares none. In a whole-file run (`./cx test`) that is the whole project as before; under
    `./cx mutate --only` (one or two node ids) only what those tests read. A test that reads a table outside its
    selection fails on the missing table (each build starts from an empty database), so a selection cannot be too
    narrow silently; a test that enumerates the built tables (catalogue checks) must declare no selection."""
    selectors: set[str] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module or fixture not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("dbt_select")
        if marker is None or not marker.args:
            return None
        selectors.update(marker.args)
    return sorted(selectors) or None
