"""The heavy stage's run of every test of `tests/e2e/test_demo_run.py` at scale S (the README's `./cx demo` default):
the command in a CXW_HOME of its own, then the same tests. `./cx test` runs them at XS on the session's shared demo
run; S adds what XS cannot show — the key-driver analysis has enough NPS responses (≈1,600) to rank the planted
drivers (`test_the_key_driver_features_...`), and the KPI comparison covers about ten times the rows."""

from __future__ import annotations

import pytest
from test_demo_run import *  # noqa: F401,F403  (the tests, collected again here)
from test_demo_run import run_demo_command

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_demo_command(tmp_path_factory, "S")


@pytest.fixture
def demo_run_to_change(demo_run):
    home, env, _ = demo_run
    return home, env
