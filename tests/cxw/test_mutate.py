"""The mutation check's runner (cxw_tools/mutate.py) on a tiny git repository: a caught bug passes, a surviving one fails
the check, a snippet that no longer matches stops it before anything runs, the copy (not the original) is tested.
Plus: the real catalogue (tests/mutations.yml) still applies to this repository."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cxw_tools import mutate

REPO = Path(__file__).resolve().parents[2]

CALC = """\
def is_promoter(score):
    return score >= 9


def nps(scores):
    promoters = sum(1 for s in scores if is_promoter(s))
    detractors = sum(1 for s in scores if s <= 6)
    return 100 * (promoters - detractors) / len(scores)
"""

TEST = """\
from cxw.calc import nps


def test_nps():
    assert nps([10, 9, 7, 3]) == 25
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "cxw").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "cxw" / "__init__.py").write_text("")
    (repo / "cxw" / "calc.py").write_text(CALC)
    (repo / "tests" / "test_calc.py").write_text(TEST)
    (repo / "untracked.txt").write_text("not copied")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "cxw", "tests"], check=True)
    return repo


def _catalogue(tmp_path: Path, *entries: str) -> Path:
    f = tmp_path / "mutations.yml"
    f.write_text("mutations:\n" + "".join(textwrap.indent(textwrap.dedent(e), "  ") for e in entries))
    return f


KILLED = """\
- name: promoter-from-10
  file: cxw/calc.py
  description: promoters only at 10
  original: "score >= 9"
  replacement: "score >= 10"
  tests: [tests/test_calc.py::test_nps]
"""
SURVIVES = """\
- name: promoter-from-8
  file: cxw/calc.py
  description: promoters from 8 (no 8 in the test)
  original: "score >= 9"
  replacement: "score >= 8"
  tests: [tests/test_calc.py]
"""


def _main(repo, catalogue, *extra):
    return mutate.main(["--repo", str(repo), "--catalogue", str(catalogue), "--jobs", "1", *extra])


def test_a_caught_mutation_passes_the_check_and_the_original_stays_untouched(tmp_path, capsys):
    repo = _repo(tmp_path)
    assert _main(repo, _catalogue(tmp_path, KILLED)) == 0
    out = capsys.readouterr().out
    assert re.search(r"promoter-from-10 +killed .* by tests/test_calc.py::test_nps", out)
    assert "1 killed" in out and "0 survived" in out
    assert (repo / "cxw" / "calc.py").read_text() == CALC


def test_a_surviving_mutation_fails_the_check_and_only_selects_a_subset(tmp_path, capsys):
    repo = _repo(tmp_path)
    cat = _catalogue(tmp_path, KILLED, SURVIVES)
    assert _main(repo, cat) == 1
    captured = capsys.readouterr()
    assert re.search(r"promoter-from-8 +survived", captured.out)
    assert re.search(r"promoter-from-10 +killed", captured.out)
    assert "SURVIVED: promoter-from-8" in captured.err and "1 killed" in captured.out and "1 survived" in captured.out
    assert _main(repo, cat, "--only", "promoter-from-10") == 0
    assert _main(repo, cat, "--only", "no-such-mutation") == 2


def test_a_snippet_not_found_exactly_once_stops_the_check_before_any_test_runs(tmp_path, capsys):
    repo = _repo(tmp_path)
    missing = KILLED.replace('"score >= 9"', '"score >= 9.0"').replace("promoter-from-10", "rotted")
    twice = KILLED.replace('"score >= 9"', '"return "').replace("promoter-from-10", "ambiguous")
    assert _main(repo, _catalogue(tmp_path, KILLED, missing, twice)) == 2
    err = capsys.readouterr().err
    assert "rotted: the original snippet occurs 0 times in cxw/calc.py" in err
    assert "ambiguous: the original snippet occurs 2 times in cxw/calc.py" in err
    assert "promoter-from-10" not in err


def test_tests_that_error_instead_of_failing_do_not_count_as_killing(tmp_path, capsys):
    repo = _repo(tmp_path)
    wrong_node = KILLED.replace("tests/test_calc.py::test_nps", "tests/test_calc.py::test_no_such_test")
    assert _main(repo, _catalogue(tmp_path, wrong_node)) == 1
    out = capsys.readouterr().out
    assert re.search(r"promoter-from-10 +error", out) and "0 killed" in out


def test_the_tests_import_the_mutated_copy_not_the_original(tmp_path, capsys):
    repo = _repo(tmp_path)
    (repo / "tests" / "test_where.py").write_text(
        f"import cxw\n\ndef test_where():\n    assert not cxw.__file__.startswith({str(repo) + '/'!r}), cxw.__file__\n")
    subprocess.run(["git", "-C", str(repo), "add", "tests"], check=True)
    where = KILLED.replace("tests/test_calc.py::test_nps", "tests/test_where.py")
    # test_where fails (and would "kill" the mutation) only when cxw is imported from the original repository
    assert _main(repo, _catalogue(tmp_path, where)) == 1
    assert re.search(r"promoter-from-10 +survived", capsys.readouterr().out)


def test_baseline_fails_the_check_when_the_listed_tests_fail_on_the_unmutated_code(tmp_path, capsys):
    repo = _repo(tmp_path)
    (repo / "tests" / "test_calc.py").write_text(TEST + "\n\ndef test_broken():\n    assert nps([9]) == 0\n")
    cat = _catalogue(tmp_path, KILLED.replace("tests/test_calc.py::test_nps", "tests/test_calc.py"))
    assert _main(repo, cat) == 0                    # killed, but not only by the planted bug
    assert _main(repo, cat, "--baseline") == 1
    captured = capsys.readouterr()
    assert re.search(r"baseline \(unmutated copy\) +FAILED", captured.out)
    assert "do not pass on the unmutated copy" in captured.err


def test_a_timed_out_mutation_leaves_no_process_of_its_tests_running(tmp_path, capsys):
    """A test that starts a helper process (a DAG run, a demo server) and hangs: on timeout the whole process group
    of the tests is killed, not only pytest (the helper used to run on, orphaned)."""
    repo = _repo(tmp_path)
    pid_file = tmp_path / "helper.pid"
    (repo / "tests" / "test_hang.py").write_text(
        "import subprocess, time\n\ndef test_hang():\n"
        "    p = subprocess.Popen(['sleep', '300'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "    time.sleep(300)\n")
    subprocess.run(["git", "-C", str(repo), "add", "tests"], check=True)
    hang = KILLED.replace("tests/test_calc.py::test_nps", "tests/test_hang.py")
    assert _main(repo, _catalogue(tmp_path, hang), "--timeout", "5") == 0   # a timeout counts as killed
    assert re.search(r"promoter-from-10 +timeout", capsys.readouterr().out)
    helper = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{helper}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            break                   # killed, a zombie until the test process's init reaps it
        time.sleep(0.1)
    else:
        os.kill(helper, 9)
        raise AssertionError("the helper process of the timed-out tests is still running")


def test_without_git_every_file_but_the_build_and_data_output_is_copied(tmp_path, capsys):
    repo = _repo(tmp_path)
    shutil.rmtree(repo / ".git")
    (repo / "var" / "raw").mkdir(parents=True)
    (repo / "var" / "raw" / "load.json").write_text("{}")
    (repo / "build.duckdb").write_text("x")
    files = mutate.tracked_files(repo)
    assert sorted(files) == ["cxw/__init__.py", "cxw/calc.py", "tests/test_calc.py", "untracked.txt"]
    assert _main(repo, _catalogue(tmp_path, KILLED)) == 0
    assert "is not a git checkout" in capsys.readouterr().out


def test_the_project_catalogue_applies_to_this_repository():
    mutations = mutate.load_catalogue(REPO / mutate.DEFAULT_CATALOGUE)
    assert len(mutations) >= 12
    assert mutate.check_applies(REPO, mutations) == []
    areas = {m.name.split("-")[0] for m in mutations}
    assert {"extract", "staging", "kpi", "gate", "publish", "alerts"} <= areas


@pytest.mark.parametrize("flag", ["--list"])
def test_the_cli_lists_the_catalogue(flag):
    proc = subprocess.run([sys.executable, "-m", "cxw_tools.mutate", flag], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "publish-copy-in-place" in proc.stdout


def test_cx_in_a_scratch_copy_shares_the_venv_and_runs_the_copys_code(tmp_path):
    """A test that runs `./cx` in a scratch copy (`cx doctor`, `cx run`) uses the venv the tests run in instead of
    installing the locked dependencies again, and the copy's code is what runs (not the checkout the venv's editable
    install points at); removing the copy leaves the venv alone."""
    copy = tmp_path / "copy"
    mutate.make_copy(REPO, mutate.tracked_files(REPO), copy)
    mutate.link_venv(sys.executable, copy)
    assert (copy / ".venv").is_symlink() and (copy / ".venv" / "pyvenv.cfg").is_file()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR", "CXW_PYTHON")}
    # and in a process it starts elsewhere (an Airflow task, a console script: no checkout on sys.path by cwd)
    child = "import cxw, cxw_tools; print(cxw.__file__); print(cxw_tools.__file__)"
    code = (f"import subprocess, sys; print(subprocess.run([sys.executable, '-c', {child!r}], cwd='/', "
            "capture_output=True, text=True, check=True).stdout)")
    proc = subprocess.run([str(copy / "cx"), "python", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "installing the locked dependencies" not in proc.stderr, proc.stderr
    assert [Path(p).resolve().is_relative_to(copy.resolve()) for p in proc.stdout.split()] == [True, True], \
        proc.stdout
    shutil.rmtree(copy)
    assert Path(sys.executable).exists()
