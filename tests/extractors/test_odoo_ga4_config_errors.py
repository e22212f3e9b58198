"""Issue 17.3 for the two non-HTTP sources: a database that answers and refuses (wrong user or password, a database
or mapped table that does not exist) and a GA4 export folder that does not exist, is not a folder or may not be
listed are configuration errors (``ConfigurationError``: never retried, the summary names the setting); a network
error (nothing listening) keeps its retries. Real PostgreSQL / MariaDB servers of this machine (they skip when
unreachable unless CXW_REQUIRE_SERVICES=1)."""
from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from conftest import run_kwargs
from extractors import ga4, odoo
from extractors.common.settings import ConfigurationError
from extractors.ga4.helpers import Ga4ConfigError
from tests.conftest import require_service

UTC = timezone.utc
WRONG_PASSWORD = "Wr0ngPassw0rd-cxw"


def _odoo(url: str, **kw) -> odoo.OdooSettings:
    return odoo.OdooSettings(url=url, entities=["res_currency"], history_start=datetime(2025, 1, 1, tzinfo=UTC),
                             connect_timeout_s=5, **kw)


def _config_error(exc: BaseException, setting: str) -> None:
    assert isinstance(exc, ConfigurationError), type(exc)
    d = exc.details()
    assert d["source"] in ("odoo", "ga4") and d["setting"] == setting and d["fix"], d
    assert WRONG_PASSWORD not in str(exc) and WRONG_PASSWORD not in d["fix"]


@pytest.mark.parametrize("case", ["mariadb wrong user and password", "postgres role that does not exist",
                                  "postgres database that does not exist"])
def test_a_database_that_refuses_fails_at_once_as_a_configuration_error_naming_cxw_odoo_url(case, dirs):
    service = case.split()[0]
    require_service(service)
    url = {"mariadb": f"mysql+pymysql://cxw_nobody:{WRONG_PASSWORD}@127.0.0.1:3306/mysql",
           "postgres": (f"postgresql://cxw_nobody:{WRONG_PASSWORD}@127.0.0.1:5432/postgres"
                        if "role" in case else "postgresql://postgres@127.0.0.1:5432/cxw_no_such_database")}[service]
    t0 = time.monotonic()
    with pytest.raises(odoo.OdooConfigError) as ei:
        odoo.extract(settings=_odoo(url), **run_kwargs(dirs))
    assert time.monotonic() - t0 < 10
    _config_error(ei.value, "CXW_ODOO_URL")
    assert isinstance(ei.value, odoo.OdooReadError) and "not retried" in str(ei.value)


def test_a_database_nobody_listens_on_stays_a_retried_network_error(dirs):
    with pytest.raises(odoo.OdooReadError) as ei:
        odoo.extract(settings=_odoo(f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:1/odoo"), **run_kwargs(dirs))
    assert not isinstance(ei.value, ConfigurationError) and "cannot connect" in str(ei.value)


def test_a_sqlite_file_that_does_not_exist_is_a_configuration_error(tmp_path, dirs):
    with pytest.raises(odoo.OdooConfigError) as ei:
        odoo.extract(settings=_odoo(f"sqlite:///{tmp_path / 'absent.sqlite'}"), **run_kwargs(dirs))
    _config_error(ei.value, "CXW_ODOO_URL")


def test_a_mapped_table_that_does_not_exist_names_the_mapping(tmp_path, dirs):
    db = tmp_path / "erp.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE other (id INTEGER)")
    con.close()
    mapping = tmp_path / "m.yml"
    mapping.write_text("entities:\n  res_currency:\n    table: currencies_typo\n    cursor: null\n"
                       "    columns: [{name: id, type: int}]\n")
    with pytest.raises(odoo.OdooConfigError) as ei:
        odoo.extract(settings=_odoo(f"sqlite:///{db}", mapping_path=str(mapping)), **run_kwargs(dirs))
    _config_error(ei.value, "CXW_ODOO_MAPPING")
    assert "currencies_typo" in ei.value.fix


# ------------------------------------------------------------------------------------------------------------ GA4

def _ga4(url: str) -> ga4.Ga4Settings:
    return ga4.Ga4Settings(export_url=url, history_start=datetime(2025, 1, 1, tzinfo=UTC))


def test_a_ga4_export_folder_that_does_not_exist_is_a_configuration_error(tmp_path, dirs):
    with pytest.raises(Ga4ConfigError) as ei:
        ga4.extract(settings=_ga4(str(tmp_path / "no-such-export")), **run_kwargs(dirs))
    _config_error(ei.value, "CXW_GA4_EXPORT_URL")
    assert "does not exist" in str(ei.value)


def test_a_ga4_export_url_that_is_a_file_or_of_an_unknown_protocol_is_a_configuration_error(tmp_path, dirs):
    (tmp_path / "events_20250101.json").write_text("{}\n")
    for url in (str(tmp_path / "events_20250101.json"), "nosuchproto://bucket/ga4"):
        with pytest.raises(Ga4ConfigError) as ei:
            ga4.extract(settings=_ga4(url), **run_kwargs(dirs))
        _config_error(ei.value, "CXW_GA4_EXPORT_URL")


class _DeniedFS(LocalFileSystem):
    """An object store that answers the listing with 'access denied' (s3fs maps AccessDenied to PermissionError)."""
    protocol = "cxwdenied"
    root_marker = ""

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(13, "Access Denied")


def test_a_ga4_export_folder_the_credentials_may_not_list_is_a_configuration_error(dirs):
    fsspec.register_implementation("cxwdenied", _DeniedFS, clobber=True)
    with pytest.raises(Ga4ConfigError) as ei:
        ga4.extract(settings=_ga4("cxwdenied://bucket/ga4-export"), **run_kwargs(dirs))
    _config_error(ei.value, "CXW_GA4_EXPORT_URL")
    assert "permission denied" in str(ei.value) and "access" in ei.value.fix


def test_an_empty_ga4_export_folder_is_no_error(tmp_path, dirs):
    (tmp_path / "export").mkdir()
    rep = ga4.extract(settings=_ga4(str(tmp_path / "export")), **run_kwargs(dirs))
    assert sum(ld["rows"] for ld in rep["loads"]) == 0


def test_the_task_fails_a_missing_ga4_export_without_airflow_retries(tmp_path, monkeypatch):
    from cxw import tasks

    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CXW_GA4_EXPORT_URL", str(tmp_path / "no-such-export"))
    with pytest.raises(Exception) as ei:
        tasks.extract("ga4", "2025-06-30T00:00:00Z", "2025-07-01T00:00:00Z", run_id="manual__ga4cfg")
    assert type(ei.value).__name__ == "AirflowFailException" and "CXW_GA4_EXPORT_URL" in str(ei.value)
    record = (tasks.run_dir("manual__ga4cfg") / "config_error_extract_ga4.json").read_text()
    assert '"setting": "CXW_GA4_EXPORT_URL"' in record
