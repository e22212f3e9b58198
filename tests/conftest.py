"""Project-wide test policy.

Tests that need the PostgreSQL / MariaDB servers of this machine call `require_service(...)`: without a reachable
server they skip with the reason — unless CXW_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure
so CI can never pass by skipping them.

CXW_REQUIRE_SERVICES=1 is also the one switch for every other skip: under it, any test (or test module) that skips —
missing sample data, a missing shared file, an unreachable service — is a failure instead: a skipped test (in setup
or call) is reported as failed (`pytest_runtest_makereport`), a module skipped at collection makes the run exit 1
and is named in the summary (`pytest_collectreport`, `pytest_sessionfinish`). A test whose skip is about something other than
missing data or services may opt out with `@pytest.mark.allow_skip("why")`; none needs it today. The number of
skipped tests is printed at the end of every run (`pytest_terminal_summary`).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REQUIRE_ENV = "CXW_REQUIRE_SERVICES"

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


SERVICES = {"postgres": ("127.0.0.1", 5432), "mariadb": ("127.0.0.1", 3306)}


def require_service(name: str) -> None:
    host, port = SERVICES[name]
    if _reachable(host, port):
        return
    reason = f"{name} not reachable on {host}:{port} (start it with ../shared/tools/start-services)"
    if os.environ.get("CXW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"CXW_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def empty_build_db(tmp_path, monkeypatch):
    """A fresh CXW_HOME (tmp_path) with an empty DuckDB build database: (paths(), an open connection). The test
    creates its marts in it and closes the connection before the code under test opens the file."""
    import duckdb

    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    from cxw.config import paths

    p = paths()
    p.warehouse_dir.mkdir(parents=True)
    return p, duckdb.connect(str(p.build_db))


@pytest.fixture
def postgres_available() -> None:
    require_service("postgres")


@pytest.fixture
def mariadb_available() -> None:
    require_service("mariadb")


def _strict() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "allow_skip(reason): this test may skip even under CXW_REQUIRE_SERVICES=1 "
                                       "(only for a reason that is not missing data, samples or services)")
    config.addinivalue_line("markers", "slow: set by this file on tests/e2e, tests marked e2e or heavy and files "
                                       "outside the fast budget (fast_files); `--fast` deselects them")
    config.addinivalue_line("markers", "dbt_select(*selectors): the dbt nodes a test of a module-built dbt fixture reads "
                                       "(`+model`); the fixture builds the union of the collected tests' selections, "
                                       "the whole project when one collected test has none (tests/dbt_cli.py)")
    config.addinivalue_line("markers", "heavy: the heavy stage (Spark, PostgreSQL pipeline, scheduler/Celery, browser): "
                                       "`./cx test` leaves it out unless a test file is named, `--heavy` runs only it")
    if getattr(config.option, "dist", "no") == "loadfile" and not hasattr(config, "workerinput"):
        # xdist's loadfile scheduler queues the files by their number of tests unless told to keep the collection
        # order; the collection order is the longest-first order of `pytest_collection_modifyitems` below.
        config.option.loadscopereorder = False


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not (_strict() and rep.skipped) or hasattr(rep, "wasxfail") or item.get_closest_marker("allow_skip"):
        return
    rep.outcome = "failed"
    rep.longrepr = f"{REQUIRE_ENV}=1 (CI): a skip is a failure — {item.nodeid} skipped: {_skip_reason(rep.longrepr)}"


_COLLECTION_SKIPS: list[str] = []


def pytest_collectreport(report) -> None:
    # A module that skips at collection (pytest.skip(..., allow_module_level=True)) is not turned into a collection
    # error — that would interrupt the whole run — but makes the run fail at the end (pytest_sessionfinish).
    if _strict() and report.skipped:
        _COLLECTION_SKIPS.append(f"{report.nodeid}: {_skip_reason(report.longrepr)}")


def pytest_sessionfinish(session, exitstatus) -> None:
    _record_durations(session.config)
    if _COLLECTION_SKIPS and session.exitstatus in (0, 5):  # 5: nothing collected but the skipped module
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    for line in _COLLECTION_SKIPS:
        terminalreporter.write_line(f"{REQUIRE_ENV}=1 (CI): a skip is a failure — module skipped at collection: {line}",
                                    red=True)
    terminalreporter.write_line(f"cxw: {len(skipped)} test(s) skipped"
                                + (f" ({REQUIRE_ENV}=1: skips are failures)" if _strict() else ""))


# --- shared expensive setup (issue 16.8) -----------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def _session_airflow_home(tmp_path_factory):
    """Airflow imported in a test's own process (`cxw.alerts` / `cxw.connections` look up Airflow connections,
    `test_dag_integrity` parses the DAGs) reads AIRFLOW_HOME, else ~/airflow: a home shared with every other checkout
    and xdist worker, whose connections would override a test's CXW_* settings. Unless the caller set one, the
    session (each xdist worker) gets an empty home of its own. Fixtures that run the DAG still delete AIRFLOW_HOME,
    so that `cxw_tools.demo.airflow_env` uses their CXW_HOME/airflow as before."""
    if "AIRFLOW_HOME" in os.environ:
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home_session")))
    try:
        yield
    finally:
        mp.undo()


@pytest.fixture(scope="session", autouse=True)
def _session_dbt_parse_cache(tmp_path_factory):
    """dbt's saved parse shared by every CXW_HOME of the session (each xdist worker): `cxw.dbt.run_dbt` (the DAG's
    dbt_build and docs, erase, `cxw run`) starts a new home's dbt target from it (CXW_DBT_PARSE_CACHE_DIR) instead of
    a full parse, about 5 CPU-seconds per new home (issue 16.8). dbt checks the copy itself (a changed project, other
    vars or settings parse in full). `CXW_DBT_PARSE_CACHE=0`, or a CXW_DBT_PARSE_CACHE_DIR set by the caller, wins."""
    if "CXW_DBT_PARSE_CACHE_DIR" in os.environ or os.environ.get("CXW_DBT_PARSE_CACHE", "1") == "0":
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_DBT_PARSE_CACHE_DIR", str(tmp_path_factory.mktemp("dbt_parse_cache")))
    try:
        yield
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def airflow_metadata_template(tmp_path_factory) -> Path:
    """An Airflow home prepared by `cxw_tools.demo.prepare_airflow` (`airflow db migrate`, the `cxw_build_db` pool, `airflow
    dags reserialize`), made once per test session (once per xdist worker). Tests that give the real DAG a home of
    their own copy its metadata DB in with :func:`seed_airflow_home` and run `airflow dags test` on it without
    preparing again (issue 16.8: three Airflow CLI start-ups of 3-5 s each per home, once per session now);
    `prepare_airflow` where the code under test calls it (`cxw demo`) sees its own `.migrated` stamp and still sets
    the pool and reserializes the DAG. The copy holds no secret: the schema, the default and `cxw_build_db` pools, the
    log templates, the dags-folder bundle and the serialized `cx_pipeline` DAG (its file path: the DAG folder is the
    same for every home of a session). `cxw bench` prepares its homes the same way (`cxw_tools.bench.dagrun._fresh_airflow_home`).
    `tests/e2e/test_demo_run.py` (the README's first command) and this fixture itself still migrate an empty home."""
    from cxw_tools.demo import airflow_env, prepare_airflow

    home = tmp_path_factory.mktemp("airflow_template")
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("CXW_HOME", str(home))
        mp.delenv("AIRFLOW_HOME", raising=False)
        mp.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
        env = airflow_env()
        af_home = Path(env["AIRFLOW_HOME"])
        af_home.mkdir(parents=True)
        prepare_airflow(env)
    finally:
        mp.undo()
    return af_home


def seed_airflow_home(template: Path, airflow_home: Path) -> None:
    """Copy the migrated metadata DB of ``template`` into ``airflow_home`` (a consistent SQLite backup) and mark it
    migrated, as `prepare_airflow` does after `airflow db migrate`."""
    import sqlite3

    airflow_home.mkdir(parents=True, exist_ok=True)
    assert not (airflow_home / "airflow.db").exists(), f"{airflow_home} already has a metadata DB"
    src = sqlite3.connect(str(template / "airflow.db"))
    try:
        dst = sqlite3.connect(str(airflow_home / "airflow.db"))
        src.backup(dst)
        dst.close()
    finally:
        src.close()
    (airflow_home / ".migrated").write_text("ok")


@pytest.fixture(scope="session")
def seed_airflow(airflow_metadata_template):
    """``seed(airflow_home)``: a migrated metadata DB in ``airflow_home`` (see :func:`airflow_metadata_template`)."""
    return lambda airflow_home: seed_airflow_home(airflow_metadata_template, Path(airflow_home))


def dag_run_state(airflow_home: Path | str, logical_date: str, dag_id: str = "cx_pipeline") -> str:
    """The state of the latest run of ``dag_id`` for the day of ``logical_date``, read from the home's SQLite metadata
    DB (`cxw_tools.demo.sqlite_run_state`, what `run_state` reads for a project-local home), for the tests that run
    `airflow dags test` themselves. 'unknown' when there is no such run."""
    from cxw_tools.demo import sqlite_run_state

    return sqlite_run_state(Path(airflow_home) / "airflow.db", logical_date, dag_id)


# --- parallel workers and the developer loop (issue 16.8) ------------------------------------------------------------
#
# `./cx test` runs the suite on `CXW_TEST_WORKERS` (default 2) pytest-xdist workers with `--dist loadfile`: every
# test of a file runs on one worker (a module fixture - one DAG run - runs once). The wall time of two workers is
# bounded by the longest files, so each worker orders the collection by the seconds each file took when last recorded
# (tests/durations.txt, longest first; a file without an entry keeps its place after them) and the controller keeps
# that order (`loadscopereorder` off, `pytest_configure` above): the long e2e files start first, the short files fill
# in at the end. `--record-durations` rewrites the list from the run (summed setup + call + teardown per file).
# `--fast` (or `-m "not slow"`) deselects the `slow` tests: everything under tests/e2e, tests marked `e2e` or `heavy`,
# and every file outside the fast budget (`fast_files`): the recorded files cheapest first (ties by path), kept while
# their recorded seconds add up to at most CXW_FAST_BUDGET_S (default FAST_BUDGET_S); a file without an entry is slow.
# A budget, not a per-file threshold: recorded under load every figure grows and a threshold keeps ever more files
# (636 tests / 7 min 52 s on 2026-12-07 at 60 s), while a budget keeps the cheapest files that fit (issue 16.8).
#
# The heavy stage: files marked `heavy` (`pytestmark = pytest.mark.heavy`: the Spark dbt build, the pipeline on
# PostgreSQL and its dbt target, `cx up` with the LocalExecutor and with Celery, the LocalExecutor bench, the browser)
# are left out of a run unless `--heavy` is given (then only they run; .ci/run runs `./cx test` and then
# `./cx test --heavy`, so CI runs every test), a `-m` expression names `heavy`, or the test's file (or one of its
# node ids) is named on the command line (`./cx test tests/e2e/test_cx_up.py`, `./cx mutate`'s node ids). A directory
# argument (`./cx test tests/e2e`) keeps them out. Heavy tests are also `slow`.

DURATIONS = Path(__file__).with_name("durations.txt")
FAST_BUDGET_S = 150.0


def pytest_addoption(parser) -> None:
    group = parser.getgroup("cxw")
    group.addoption("--fast", action="store_true",
                    help="developer loop: deselect the slow tests (tests/e2e, tests marked e2e or heavy, and files "
                         "outside the fast budget: the cheapest files of tests/durations.txt whose recorded seconds "
                         f"add up to CXW_FAST_BUDGET_S, default {FAST_BUDGET_S:.0f})")
    group.addoption("--heavy", action="store_true",
                    help="run only the heavy stage: the tests marked `heavy` (left out of a run without this option "
                         "unless their file is named on the command line)")
    group.addoption("--record-durations", action="store_true",
                    help="write the seconds each test file took in this run into tests/durations.txt (files that did "
                         "not run keep their entry)")


def read_durations(path: Path = DURATIONS) -> dict[str, float]:
    """{test file relative to the repository: seconds}; lines are `<seconds> <path>`, `#` starts a comment."""
    out: dict[str, float] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            secs, name = line.split(None, 1)
            out[name.strip()] = float(secs)
    return out


def fast_budget() -> float:
    """CXW_FAST_BUDGET_S (recorded seconds `--fast` may spend, summed over files), default FAST_BUDGET_S."""
    raw = os.environ.get("CXW_FAST_BUDGET_S", "").strip()
    if not raw:
        return FAST_BUDGET_S
    try:
        return float(raw)
    except ValueError:
        raise pytest.UsageError(f"CXW_FAST_BUDGET_S must be a number of seconds (got {raw!r})") from None


def fast_files(durations: dict[str, float], budget: float) -> set[str]:
    """The files `--fast` keeps: outside tests/e2e, cheapest recorded first (ties by path), while the sum of their
    recorded seconds stays within `budget`; the first file that does not fit ends the list (so does every dearer one).
    A file without an entry is not in `durations`, so it is never kept."""
    kept: set[str] = set()
    total = 0.0
    for name, secs in sorted(durations.items(), key=lambda kv: (kv[1], kv[0])):
        if name.startswith("tests/e2e/"):
            continue
        if total + secs > budget:
            break
        kept.add(name)
        total += secs
    return kept


def write_durations(durations: dict[str, float], path: Path = DURATIONS) -> None:
    rows = sorted(durations.items(), key=lambda kv: (-kv[1], kv[0]))
    path.write_text("# seconds per test file (setup + call + teardown of its tests), longest first; written by\n"
                    "# `./cx test --record-durations`; tests/conftest.py starts the longest files first on the xdist\n"
                    "# workers; `./cx test --fast` keeps the cheapest files whose seconds add up to CXW_FAST_BUDGET_S.\n"
                    + "".join(f"{secs:9.1f}  {name}\n" for name, secs in rows))


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _named_files(config) -> set[Path]:
    """The test files named on the command line (a file path or a node id in it; directories do not count)."""
    out = set()
    for arg in config.args:
        p = Path(config.invocation_params.dir, arg.split("::", 1)[0])
        if p.is_file():
            out.add(p.resolve())
    return out


def _select_heavy(config, items) -> None:
    if "heavy" in (config.getoption("markexpr", "") or ""):
        return  # `-m heavy`, `-m "not heavy"`: the expression decides
    if config.getoption("heavy"):
        dropped = [i for i in items if not i.get_closest_marker("heavy")]
    else:
        named = _named_files(config)
        dropped = [i for i in items if i.get_closest_marker("heavy") and Path(i.path).resolve() not in named]
    if dropped:
        out = set(map(id, dropped))
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if id(i) not in out]


def pytest_collection_modifyitems(session, config, items) -> None:
    recorded = read_durations()
    fast = fast_files({f: s for f, s in recorded.items() if (config.rootpath / f).exists()}, fast_budget())
    slow = pytest.mark.slow
    for item in items:
        f = _test_file(item.nodeid)
        if (f.startswith("tests/e2e/") or item.get_closest_marker("e2e") or item.get_closest_marker("heavy")
                or f not in fast):
            item.add_marker(slow)
    _select_heavy(config, items)
    if config.getoption("fast"):
        kept = [i for i in items if not i.get_closest_marker("slow")]
        dropped = [i for i in items if i.get_closest_marker("slow")]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
    if hasattr(config, "workerinput"):
        # Stable sort: the tests of one file keep their order and stay together; unrecorded files keep theirs.
        items.sort(key=lambda i: -recorded.get(_test_file(i.nodeid), 0.0))


_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    _FILE_SECONDS[_test_file(report.nodeid)] = _FILE_SECONDS.get(_test_file(report.nodeid), 0.0) + report.duration



def _record_durations(config) -> None:
    if not config.getoption("record_durations") or hasattr(config, "workerinput") or not _FILE_SECONDS:
        return  # the controller (or a serial run) sees every worker's reports
    durations = {f: s for f, s in read_durations().items() if (config.rootpath / f).exists()}
    durations.update({f: round(s, 1) for f, s in _FILE_SECONDS.items()})
    write_durations(durations)


# --- one published clean demo company per test run, shared by the e2e files (issue 16.8, i16-e2e) --------------------
#
# `clean_demo` runs the README's command once - `python -m cxw_tools demo --scale XS --seed 42` in a CXW_HOME of its
# own, a real `airflow dags test` of the whole DAG - for the whole test run: every xdist worker asks for it, the first
# builds it under an exclusive file lock in the directory every worker's basetemp shares (pytest-xdist's documented
# pattern for a session fixture that runs once), the others wait on the lock and then read what it left. The home
# is a TEMPLATE: its readers open it read-only (`tests/e2e/test_demo_run.py`); a test that changes a home (erase,
# re-runs) takes a private copy with `clean_demo_copy(dest)` (`cp -a`: the published file's hard link to its
# generation stays a hard link). Every path the pipeline resolves comes from CXW_HOME at run time (Airflow's home,
# logs and SQLite URL: `cxw_tools.airflow_local.airflow_env`; raw, state, warehouse, published: `cxw.config.paths`),
# so a copy is an equivalent home once its airflow.cfg names it (`clean_demo_copy` rewrites the five paths Airflow
# wrote there at its first start). The absolute paths a copy still carries are history, read by no later run: run
# logs and summaries, the metadata DB's finished runs (XComs, rendered fields), the generation's dbt docs, dbt's
# manifest and run results. tests/README.md has the measurements.

CLEAN_DEMO_SCALE, CLEAN_DEMO_SEED = "XS", 42
# what a fixture running the DAG clears (as the per-file fixtures did): the demo's defaults, not the caller's
CLEAN_DEMO_UNSET = ("CXW_BUILD_DB", "AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "CXW_ALERTS_WEBHOOK_URL",
                    "CXW_GATE_ACCEPT_LOADS", "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START", "CXW_RETENTION_DAYS",
                    "CXW_PII_SALT", "CXW_HISTORY_START", "CXW_FORCE_BUILD")


def clean_demo_env(home: Path) -> dict[str, str]:
    """The environment of a `cxw demo` in ``home`` (what the shared run and its copies' re-runs use)."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_DEMO_UNSET}
    env["CXW_HOME"] = str(home)
    return env


def _build_clean_demo(root: Path) -> dict:
    import fcntl
    import json
    import subprocess
    import time

    root.mkdir(parents=True, exist_ok=True)
    done = root / "done.json"
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (also if this process dies)
        if not done.exists():
            home = root / "home"
            t0, c0 = time.perf_counter(), os.times()
            proc = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", CLEAN_DEMO_SCALE,
                                   "--seed", str(CLEAN_DEMO_SEED)], cwd=REPO, env=clean_demo_env(home),
                                  capture_output=True, text=True)
            c1 = os.times()
            (root / "stdout.txt").write_text(proc.stdout)
            (root / "stderr.txt").write_text(proc.stderr)
            done.write_text(json.dumps({"home": str(home), "returncode": proc.returncode,
                                        "wall_s": round(time.perf_counter() - t0, 1),
                                        "cpu_s": round(c1.children_user + c1.children_system
                                                       - c0.children_user - c0.children_system, 1),
                                        "built_by": os.environ.get("PYTEST_XDIST_WORKER", "serial")}))
    info = json.loads(done.read_text())
    info["stdout"] = (root / "stdout.txt").read_text()
    if info["returncode"] != 0:
        pytest.fail(f"the shared clean demo run failed ({root}):\n{info['stdout'][-4000:]}\n"
                    f"{(root / 'stderr.txt').read_text()[-4000:]}")
    return info


@pytest.fixture(scope="session")
def clean_demo(tmp_path_factory, request) -> dict:
    """The shared published clean XS-42 demo (see above): {home: Path, stdout: the command's output, returncode,
    wall_s, cpu_s, built_by}. Read it, never write it: copy it with `clean_demo_copy` first."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base  # a worker's: <basetemp>/popen-gwN
    info = _build_clean_demo(shared / f"clean_demo_{CLEAN_DEMO_SCALE}-{CLEAN_DEMO_SEED}")
    info["home"] = Path(info["home"])
    return info


@pytest.fixture(scope="session")
def clean_demo_copy(clean_demo):
    """``copy(dest) -> dest``: a private copy of the shared clean demo's CXW_HOME at ``dest`` (must not exist)."""
    import subprocess

    def copy(dest: Path) -> Path:
        dest = Path(dest)
        assert not dest.exists(), f"{dest} exists"
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(clean_demo["home"]), str(dest)], check=True)
        # Airflow wrote its airflow.cfg from AIRFLOW_HOME at its first start: the copy's names the copy (as a first
        # start there would). airflow_env's variables override three of its paths anyway; the plugins folder and the
        # DAG processor's log directory they do not.
        cfg = dest / "airflow" / "airflow.cfg"
        cfg.write_text(cfg.read_text().replace(str(clean_demo["home"]), str(dest)))
        return dest

    return copy
