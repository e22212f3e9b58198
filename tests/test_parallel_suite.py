"""`./cx test` runs the suite on pytest-xdist workers (issue 16.8): two workers with `--dist loadfile` unless the
caller chose otherwise, the longest recorded files first on each worker, `--fast` for the developer loop and
`--record-durations` to refresh the list (tests/conftest.py, tests/durations.txt, tests/README.md).

The `cx` tests run the real script in a scratch copy whose `.venv/bin/python` only prints its arguments (the venv
stamp is current, so `cx` installs nothing). The conftest tests run pytest in a scratch project holding a copy of
tests/conftest.py, a durations list and small test files that log which worker ran them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# --- ./cx test: the default workers -----------------------------------------------------------------------------------

@pytest.fixture
def cx_copy(tmp_path) -> Path:
    shutil.copy(REPO / "cx", tmp_path / "cx")
    (tmp_path / "requirements.lock").write_text("pytest\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    stamp = hashlib.sha256(b"pytest\n[project]\n").hexdigest()
    (tmp_path / ".venv" / ".lock.sha256").write_text(stamp + "\n")
    fake = venv_bin / "python"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    fake.chmod(0o755)
    return tmp_path


def pytest_args(cx_copy: Path, *args: str, workers: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "CXW_TEST_WORKERS"}
    env["CXW_PYTHON"] = sys.executable
    if workers is not None:
        env["CXW_TEST_WORKERS"] = workers
    proc = subprocess.run([str(cx_copy / "cx"), "test", *args], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["-m", "pytest"], lines
    return lines[2:]


def test_cx_test_runs_two_loadfile_workers_by_default(cx_copy):
    assert pytest_args(cx_copy) == ["-n", "2", "--dist", "loadfile"]
    assert pytest_args(cx_copy, "tests/cxw", "-k", "lock") == ["-n", "2", "--dist", "loadfile", "tests/cxw", "-k", "lock"]


@pytest.mark.parametrize("given", [
    ["-n", "4"], ["-n0"], ["-nauto"], ["--numprocesses=3"], ["--numprocesses", "3"],
    ["-p", "no:xdist"], ["-pno:xdist"], ["--pdb"], ["--trace"], ["--co"], ["--collect-only"],
])
def test_cx_test_explicit_worker_choice_wins(cx_copy, given):
    assert pytest_args(cx_copy, "tests/cxw", *given) == ["tests/cxw", *given]


def test_cx_test_explicit_dist_replaces_loadfile(cx_copy):
    assert pytest_args(cx_copy, "--dist", "load") == ["-n", "2", "--dist", "load"]
    assert pytest_args(cx_copy, "--dist=loadscope") == ["-n", "2", "--dist=loadscope"]


def test_cx_test_workers_setting(cx_copy):
    assert pytest_args(cx_copy, workers="3") == ["-n", "3", "--dist", "loadfile"]
    assert pytest_args(cx_copy, workers="auto") == ["-n", "auto", "--dist", "loadfile"]
    assert pytest_args(cx_copy, "-x", workers="1") == ["-x"]
    assert pytest_args(cx_copy, "-x", workers="0") == ["-x"]


def test_cx_test_refuses_a_workers_setting_that_is_not_a_count(cx_copy):
    env = dict(os.environ, CXW_PYTHON=sys.executable, CXW_TEST_WORKERS="two")
    proc = subprocess.run([str(cx_copy / "cx"), "test"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "CXW_TEST_WORKERS must be a number or auto (got 'two')" in proc.stderr
    assert proc.stdout == ""


# --- tests/conftest.py: order, --fast, --record-durations ------------------------------------------------------------

LOGGED_TEST = """
import os


def _log(name):
    with open(os.environ["ORDER_LOG"], "a") as f:
        f.write(f"{{os.environ.get('PYTEST_XDIST_WORKER', 'serial')}} {{name}}\\n")


{tests}
"""


def _project(tmp_path: Path, files: dict[str, int], durations: dict[str, float]) -> Path:
    proj = tmp_path / "proj"
    (proj / "tests").mkdir(parents=True)
    (proj / "pytest.ini").write_text("[pytest]\ntestpaths = tests\naddopts = --strict-markers\n"
                                     "markers =\n    e2e: e2e\n")
    shutil.copy(REPO / "tests" / "conftest.py", proj / "tests" / "conftest.py")
    (proj / "tests" / "durations.txt").write_text(
        "# a comment\n" + "".join(f"{s:9.1f}  tests/{name}\n" for name, s in durations.items()))
    for name, n in files.items():
        body = "\n\n".join(f"def test_{i}():\n    _log('{name}::{i}')" for i in range(n))
        (proj / "tests" / name).write_text(textwrap.dedent(LOGGED_TEST.format(tests=body)))
    return proj


def _pytest(proj: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS",
                                                             "CXW_FAST_BUDGET_S")}
    env.update(ORDER_LOG=str(proj / "order.log"), **extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp",
                           str(proj / "pt"), *args], cwd=proj, env=env, capture_output=True, text=True, timeout=300)


def test_longest_recorded_files_start_first_on_each_worker(tmp_path):
    # The two long files hold one test each and sort last by name: neither the collection order nor xdist's own
    # loadfile order (most tests first) would start them first.
    files = {"test_a_short.py": 4, "test_b_short.py": 4, "test_c_new.py": 3, "test_y_long.py": 1, "test_z_long.py": 1}
    proj = _project(tmp_path, files, {"test_y_long.py": 500.0, "test_z_long.py": 400.0,
                                      "test_a_short.py": 2.0, "test_b_short.py": 1.0})
    proc = _pytest(proj, "-n", "2", "--dist", "loadfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [ln.split() for ln in (proj / "order.log").read_text().splitlines()]
    assert len(runs) == sum(files.values())
    first = {}
    for worker, test in runs:
        first.setdefault(worker, test)
    assert sorted(first) == ["gw0", "gw1"]
    assert sorted(first.values()) == ["test_y_long.py::0", "test_z_long.py::0"]
    # every file ran on one worker
    by_file = {}
    for worker, test in runs:
        by_file.setdefault(test.split("::")[0], set()).add(worker)
    assert all(len(w) == 1 for w in by_file.values()), by_file


def test_serial_run_keeps_the_collection_order(tmp_path):
    proj = _project(tmp_path, {"test_a.py": 1, "test_b.py": 1}, {"test_b.py": 500.0})
    proc = _pytest(proj, "-p", "no:xdist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proj / "order.log").read_text().split() == ["serial", "test_a.py::0", "serial", "test_b.py::0"]


def test_fast_keeps_the_cheapest_recorded_files_within_the_budget(tmp_path):
    # a hand-made durations file: the rule reads it, sums the cheapest first (ties by path) and stops at the first file
    # that does not fit; tests/e2e never counts; an unrecorded file is not in the list, so it is slow
    from tests.conftest import FAST_BUDGET_S, fast_files, read_durations
    durations = tmp_path / "durations.txt"
    durations.write_text("# seconds per test file\n"
                         "   400.0  tests/dbt/test_big.py\n"
                         "    60.0  tests/cxw/test_b.py\n"
                         "    60.0  tests/cxw/test_a.py\n"
                         "    50.0  tests/test_mid.py\n"
                         "     1.0  tests/e2e/test_cheap_but_e2e.py\n"
                         "     2.5  tests/cxw/test_tiny.py  # a comment\n")
    recorded = read_durations(durations)
    assert fast_files(recorded, 112.5) == {"tests/cxw/test_tiny.py", "tests/test_mid.py", "tests/cxw/test_a.py"}
    # the tie at 60 s goes by path: test_a fits, test_b (same seconds) does not, nor anything dearer after it
    assert fast_files(recorded, 172.4) == {"tests/cxw/test_tiny.py", "tests/test_mid.py", "tests/cxw/test_a.py"}
    assert fast_files(recorded, 172.5) == {"tests/cxw/test_tiny.py", "tests/test_mid.py", "tests/cxw/test_a.py",
                                           "tests/cxw/test_b.py"}
    assert fast_files(recorded, 2.0) == set()
    assert "tests/test_unrecorded.py" not in fast_files(recorded, 10_000.0)
    assert "tests/e2e/test_cheap_but_e2e.py" not in fast_files(recorded, 10_000.0)
    # the same files recorded twice as slow (a loaded machine): the budget keeps fewer files, never more
    loaded = {f: 2 * s for f, s in recorded.items()}
    assert fast_files(loaded, 112.5) == {"tests/cxw/test_tiny.py", "tests/test_mid.py"}
    assert FAST_BUDGET_S == 150.0


def test_fast_deselects_e2e_and_files_outside_the_budget(tmp_path):
    proj = _project(tmp_path, {"test_quick.py": 2, "test_heavy.py": 1, "test_marked.py": 0, "test_new.py": 1},
                    {"test_heavy.py": 61.0, "test_quick.py": 59.0, "test_marked.py": 1.0})
    (proj / "tests" / "test_marked.py").write_text("import pytest\n\n\n@pytest.mark.e2e\ndef test_dag():\n    pass\n\n\n"
                                                  "def test_unit():\n    pass\n")
    (proj / "tests" / "e2e").mkdir()
    (proj / "tests" / "e2e" / "test_run.py").write_text("def test_run():\n    pass\n")
    proc = _pytest(proj, "--fast", "-p", "no:xdist", "-v", env={"CXW_FAST_BUDGET_S": "100"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed, 4 deselected" in proc.stdout, proc.stdout  # test_heavy.py over budget, test_new.py unrecorded
    for kept in ("test_quick.py::test_0", "test_quick.py::test_1", "test_marked.py::test_unit"):
        assert f"{kept} PASSED" in proc.stdout
    # -m "not slow" is the same selection
    proc = _pytest(proj, "-m", "not slow", "-p", "no:xdist", env={"CXW_FAST_BUDGET_S": "100"})
    assert "3 passed, 4 deselected" in proc.stdout, proc.stdout
    # the default budget (150 s) also fits test_heavy.py (1 + 59 + 61)
    proc = _pytest(proj, "--fast", "-p", "no:xdist")
    assert "4 passed, 3 deselected" in proc.stdout, proc.stdout
    proc = _pytest(proj, "--fast", "-p", "no:xdist", env={"CXW_FAST_BUDGET_S": "lots"})
    assert "CXW_FAST_BUDGET_S must be a number of seconds (got 'lots')" in proc.stderr, proc.stdout + proc.stderr
    proc = _pytest(proj, "-p", "no:xdist")
    assert "7 passed" in proc.stdout, proc.stdout


def test_record_durations_writes_seconds_per_file_and_keeps_files_not_run(tmp_path):
    proj = _project(tmp_path, {"test_a.py": 2, "test_b.py": 1}, {"test_b.py": 77.0, "test_gone.py": 9.0})
    (proj / "tests" / "test_a.py").write_text("import time\n\n\ndef test_0():\n    time.sleep(0.6)\n\n\n"
                                              "def test_1():\n    time.sleep(0.6)\n")
    proc = _pytest(proj, "-n", "2", "--dist", "loadfile", "--record-durations", "tests/test_a.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = {}
    for line in (proj / "tests" / "durations.txt").read_text().splitlines():
        if not line.startswith("#"):
            secs, name = line.split()
            recorded[name] = float(secs)
    assert set(recorded) == {"tests/test_a.py", "tests/test_b.py"}  # test_gone.py no longer exists
    assert recorded["tests/test_b.py"] == 77.0
    assert 1.2 <= recorded["tests/test_a.py"] < 30


def test_heavy_stage_runs_apart_unless_its_file_is_named(tmp_path):
    proj = _project(tmp_path, {"test_quick.py": 2}, {"test_quick.py": 1.0})
    (proj / "tests" / "e2e").mkdir()
    (proj / "tests" / "e2e" / "test_scheduler.py").write_text(
        "import pytest\n\npytestmark = pytest.mark.heavy\n\n\ndef test_up():\n    pass\n\n\ndef test_down():\n    pass\n")
    # ./cx test: the heavy files are left out, also when their directory is named
    for args in ((), ("tests/e2e", "tests/test_quick.py")):
        proc = _pytest(proj, "-p", "no:xdist", *args)
        assert "2 passed, 2 deselected" in proc.stdout, proc.stdout
    # ./cx test --heavy: only the heavy stage, on workers too
    proc = _pytest(proj, "--heavy", "-p", "no:xdist", "-v")
    assert "2 passed, 2 deselected" in proc.stdout, proc.stdout
    assert "test_scheduler.py::test_up PASSED" in proc.stdout
    (proj / "order.log").unlink()
    proc = _pytest(proj, "--heavy", "-n", "2", "--dist", "loadfile")
    assert "2 passed" in proc.stdout, proc.stdout
    assert not (proj / "order.log").exists()  # no quick test ran
    # a named file or node id runs (./cx mutate names node ids); a -m expression that names heavy decides alone
    proc = _pytest(proj, "-p", "no:xdist", "tests/e2e/test_scheduler.py::test_up")
    assert "1 passed" in proc.stdout and "deselected" not in proc.stdout, proc.stdout
    proc = _pytest(proj, "-p", "no:xdist", "-m", "heavy")
    assert "2 passed, 2 deselected" in proc.stdout, proc.stdout
    proc = _pytest(proj, "-p", "no:xdist", "-m", "not heavy")
    assert "2 passed, 2 deselected" in proc.stdout, proc.stdout
    # heavy tests are slow: --fast leaves them out too
    proc = _pytest(proj, "--fast", "-p", "no:xdist", "tests/e2e/test_scheduler.py", "tests/test_quick.py")
    assert "2 passed, 2 deselected" in proc.stdout, proc.stdout


# --- tests/dbt_cli.py: a module dbt fixture builds what the collected tests read (issue 16.8) -------------------------

SELECTING_MODULE = """
import json
import os

import pytest

import dbt_cli


@pytest.fixture(scope="module")
def built(request):
    with open(os.environ["ORDER_LOG"], "a") as f:
        f.write(json.dumps(dbt_cli.session_selection(request, "built")) + "\\n")


@pytest.mark.dbt_select("+kpi_daily", "+dim_dates")
def test_kpi(built):
    pass


@pytest.mark.dbt_select("+dim_dates")
@pytest.mark.parametrize("n", [1, 2])
def test_dates(built, n):
    pass


def test_catalogue(built):
    pass


def test_no_fixture():
    pass
"""


def test_dbt_fixture_builds_the_union_of_the_collected_tests_selections(tmp_path):
    proj = _project(tmp_path, {}, {})
    shutil.copy(REPO / "tests" / "dbt_cli.py", proj / "tests" / "dbt_cli.py")
    (proj / "tests" / "test_sel.py").write_text(SELECTING_MODULE)
    (proj / "tests" / "test_other.py").write_text("import pytest\n\n\n@pytest.mark.dbt_select('+other')\n"
                                                  "def test_x():\n    pass\n\n\ndef test_y():\n    pass\n")
    runs = [("tests/test_sel.py",), ("tests/test_sel.py::test_kpi",), ("tests/test_sel.py::test_dates",),
            ("tests/test_sel.py::test_kpi", "tests/test_sel.py::test_dates[1]", "tests/test_sel.py::test_no_fixture",
             "tests/test_other.py")]
    for args in runs:
        proc = _pytest(proj, "-p", "no:xdist", *args, env={"PYTHONPATH": str(proj / "tests")})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    got = [json.loads(line) for line in (proj / "order.log").read_text().splitlines()]
    # the whole module: test_catalogue declares no selection -> the whole project (None); one node id: its own;
    # tests of another module and tests without the fixture do not count
    assert got == [None, ["+dim_dates", "+kpi_daily"], ["+dim_dates"], ["+dim_dates", "+kpi_daily"]]
