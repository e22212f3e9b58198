""".env.example lists every environment setting of README's Settings table with its default (issue 17 point 1): it is
generated from the table (cxw_tools/env_example.py) and must equal the generator's output, so neither can drift."""

from __future__ import annotations

import re

from cxw_tools.env_example import README, TARGET, render
from tests.test_settings_table import settings_table


def test_env_example_is_the_settings_table_rendered():
    assert TARGET.read_text() == render(README.read_text()), (
        ".env.example differs from README's Settings table: run `./cx python -m cxw_tools.env_example`")


def test_env_example_names_every_environment_setting_of_the_table_commented_out():
    listed = {n for cell in settings_table() for n in re.findall(r"`(CXW_[A-Z0-9_]+|AIRFLOW_HOME)`", cell)}
    text = TARGET.read_text()
    assert {ln.split("=", 1)[0].lstrip("#") for ln in text.splitlines() if re.match(r"^#[A-Z_0-9]+=", ln)} == listed
    assert not [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]  # nothing set by default
    assert "#CXW_HTTP_TIMEOUT=30\n" in text and "#CXW_HUBSPOT_TOKEN=\n" in text
