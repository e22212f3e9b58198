"""tests/conftest.py's skip policy, run on a throw-away test directory in a fresh pytest process: under
CXW_REQUIRE_SERVICES=1 (set by .ci/run) every skip — in a test or at module level — is a failure unless the test is
marked `allow_skip`; without it skips stay skips; the count of skipped tests is printed either way."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

TESTS = '''
import pytest

def test_passes():
    pass

def test_skips_for_missing_sample():
    pytest.skip("vendor sample not available")

@pytest.mark.allow_skip("platform feature, not data")
def test_allowed_to_skip():
    pytest.skip("not on this platform")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
'''

MODULE_SKIP = '''
import pytest
pytest.skip("shared data set not found", allow_module_level=True)

def test_never_runs():
    pass
'''


def _run(tmp_path: Path, strict: bool, cases: bool = True, *args: str) -> subprocess.CompletedProcess:
    d = tmp_path / ("strict" if strict else "lenient")
    d.mkdir()
    shutil.copy(CONFTEST, d / "conftest.py")
    (d / "pytest.ini").write_text("[pytest]\naddopts = -ra --strict-markers\n")
    if cases:
        (d / "test_cases.py").write_text(TESTS)
    (d / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "CXW_REQUIRE_SERVICES"}
    if strict:
        env["CXW_REQUIRE_SERVICES"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, str(d)], cwd=d, env=env,
                          capture_output=True, text=True, timeout=120)


def test_under_require_services_every_skip_is_a_failure_and_the_count_is_printed(tmp_path):
    proc = _run(tmp_path, strict=True)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "FAILED test_cases.py::test_skips_for_missing_sample" in out, out[-3000:]
    assert "CXW_REQUIRE_SERVICES=1 (CI): a skip is a failure" in out and "vendor sample not available" in out
    assert ("a skip is a failure — module skipped at collection: test_module_skip.py: Skipped: shared data set "
            "not found") in out, out[-3000:]
    assert "1 failed, 1 passed, 2 skipped, 1 xfailed" in out, out[-3000:]
    assert "cxw: 2 test(s) skipped (CXW_REQUIRE_SERVICES=1: skips are failures)" in out


def test_a_module_skipped_at_collection_alone_fails_the_run_under_require_services(tmp_path):
    proc = _run(tmp_path, strict=True, cases=False)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "shared data set not found" in proc.stdout


def test_without_the_switch_skips_stay_skips_and_are_counted(tmp_path):
    proc = _run(tmp_path, strict=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert "1 passed, 3 skipped, 1 xfailed" in out, out[-3000:]
    assert "cxw: 3 test(s) skipped" in out


def test_under_parallel_workers_every_skip_is_still_a_failure(tmp_path):
    # `./cx test` runs on pytest-xdist workers: the skips happen in the workers, the verdict is the controller's.
    proc = _run(tmp_path, True, True, "-n", "2", "--dist", "loadfile")
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "FAILED test_cases.py::test_skips_for_missing_sample" in out, out[-3000:]
    assert "module skipped at collection: test_module_skip.py: Skipped: shared data set not found" in out, out[-3000:]
    assert "cxw: 2 test(s) skipped (CXW_REQUIRE_SERVICES=1: skips are failures)" in out, out[-3000:]


def test_under_parallel_workers_a_module_skipped_at_collection_alone_fails_the_run(tmp_path):
    proc = _run(tmp_path, True, False, "-n", "2", "--dist", "loadfile")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "shared data set not found" in proc.stdout
