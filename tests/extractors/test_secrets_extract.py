"""No secret ever reaches a log line (DEBUG everywhere, dlt's and urllib3's loggers included), a raw file,
_load.json, state or a dead letter - across all five extractors, including failing requests."""
from __future__ import annotations

import glob
import json
import logging
import os
import secrets as pysecrets
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from conftest import HISTORY_START, all_text_under, http_cfg, run_kwargs
from extractors import ga4, google_reviews, hubspot, odoo, trustpilot
from extractors.common.http import ExtractorHTTPError, InvalidPayloadError

UTC = timezone.utc
WS, WE = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 8, tzinfo=UTC)
PG_PASSWORD = "PgSecretPw-" + pysecrets.token_hex(4)


@pytest.fixture
def pg_odoo(demo_dir):
    """A PostgreSQL copy of a few demo Odoo tables, reached with a URL that carries a password (trust auth
    accepts and ignores it, so it is a real secret in a real connection string). Falls back to SQLite."""
    from test_odoo_extract import ddl_for
    name = f"cxw_s_{pysecrets.token_hex(4)}"
    try:
        admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT",
                                 connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception:  # noqa: BLE001
        if os.environ.get("CXW_REQUIRE_SERVICES") == "1":
            raise
        yield None
        return
    url = f"postgresql+psycopg2://postgres:{PG_PASSWORD}@127.0.0.1:5432/{name}"
    eng = sa.create_engine(url)
    src = sa.create_engine(f"sqlite:///{demo_dir / 'odoo' / 'odoo.sqlite'}")
    with eng.begin() as c:
        for stmt in ddl_for("postgresql"):
            c.execute(sa.text(stmt))
    with src.connect() as s, eng.begin() as c:
        for table in ("res_country", "res_currency", "crm_team", "res_partner"):
            rows = [dict(r._mapping) for r in s.execute(sa.text(f"SELECT * FROM {table}"))]
            cols = list(rows[0]) if rows else []
            for r in rows:
                for k in ("is_company", "active"):
                    if k in r and r[k] is not None:
                        r[k] = bool(r[k])
            if rows:
                c.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + k for k in cols)})"),
                          rows)
    eng.dispose()
    src.dispose()
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def parquet_text(root) -> str:
    chunks = []
    for f in glob.glob(os.path.join(str(root), "**", "*.parquet"), recursive=True):
        chunks.append(json.dumps(pq.read_table(f).to_pylist(), default=str))
    return "\n".join(chunks)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list = []
        self.names: set = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))   # message, args and traceback
        self.names.add(record.name.split(".")[0])


@pytest.fixture
def capture():
    """DEBUG from every logger that matters, attached directly (Airflow's logging config, pulled in by dlt, can
    stop propagation or disable loggers)."""
    handler = Capture()
    names = ["", "dlt", "urllib3", "requests", "cxw", "sqlalchemy.engine", "connectorx", "duckdb", "fsspec"]
    saved = []
    for name in names:
        lg = logging.getLogger(name or None)
        saved.append((lg, lg.level, lg.disabled, lg.propagate))
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        lg.propagate = False if name else lg.propagate
        lg.addHandler(handler)
    yield handler
    for lg, level, disabled, propagate in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.disabled = disabled
        lg.propagate = propagate


def test_no_secret_in_logs_or_files(server, clock, dirs, demo_dir, pg_odoo, capture, tmp_path):
    m = server.manifest
    cfg = http_cfg(clock)
    hs = hubspot.HubspotSettings(token=m["hubspot"]["token"], base_url=server.base_url, history_start=HISTORY_START,
                                 http=cfg)
    gs = google_reviews.GoogleReviewsSettings(token=m["google"]["token"], account_id=m["google"]["account_id"],
                                              location_ids=m["google"]["location_ids"], base_url=server.base_url,
                                              history_start=HISTORY_START, http=cfg)
    ts = trustpilot.TrustpilotSettings(api_key=m["trustpilot"]["api_key"], api_secret=m["trustpilot"]["api_secret"],
                                       business_unit_ids=m["trustpilot"]["business_unit_ids"],
                                       base_url=server.base_url, history_start=HISTORY_START, http=cfg)
    odoo_url = pg_odoo or f"sqlite:///{demo_dir / 'odoo' / 'odoo.sqlite'}"
    os_ = odoo.OdooSettings(url=odoo_url, history_start=HISTORY_START,
                            entities=["res_country", "res_partner"] if pg_odoo else None)
    export = tmp_path / "ga4"
    export.mkdir()
    src = (demo_dir / "ga4" / "events_20250602.json").read_text().splitlines(keepends=True)
    (export / "events_20250602.json").write_text("".join(src[:50]) + '{"truncated": \n')
    g4 = ga4.Ga4Settings(export_url=str(export), history_start=WS)
    kw = run_kwargs(dirs, WS, WE)
    for mod, s in ((hubspot, hs), (google_reviews, gs), (trustpilot, ts), (odoo, os_), (ga4, g4)):
        mod.extract(settings=s, **kw)
    # failures write dead letters and error messages: a truncated page and a 401 for each HTTP vendor
    server.inject_faults("/crm/v3/objects/contacts/search", [{"truncate": True}])
    with pytest.raises(InvalidPayloadError):
        hubspot.extract(settings=hs, **run_kwargs(dirs, WS, WE, mode="window"))
    server.inject_faults("/v1/private/business-units", [{"truncate": True}])
    with pytest.raises(InvalidPayloadError):
        trustpilot.extract(settings=ts, **run_kwargs(dirs, WS, WE, mode="window"))
    server.inject_faults("/v4/accounts", [{"status": 401}])
    with pytest.raises(ExtractorHTTPError) as e401:
        google_reviews.extract(settings=gs, **run_kwargs(dirs, WS, WE, mode="window"))

    secrets = [m["hubspot"]["token"], m["google"]["token"], m["trustpilot"]["api_key"], m["trustpilot"]["api_secret"]]
    secrets += list(server.oauth_tokens) + list(server.oauth_refresh)   # Trustpilot access / refresh tokens issued
    if pg_odoo:
        secrets.append(PG_PASSWORD)
    assert len(server.oauth_tokens) >= 1 and all(len(s) >= 8 for s in secrets)
    assert len(glob.glob(str(dirs["deadletter"] / "*" / "*" / "*.json"))) >= 3   # hubspot, trustpilot, ga4
    assert capture.names >= {"urllib3", "cxw", "dlt"} or capture.names >= {"urllib3", "cxw"}, capture.names
    text = "\n".join(["\n".join(capture.lines), str(e401.value), all_text_under(dirs["state"], dirs["deadletter"]),
                      "\n".join(open(f).read() for f in glob.glob(str(dirs["raw"] / "**" / "_load.json"),
                                                                  recursive=True)),
                      parquet_text(dirs["raw"])])
    leaked = [s[:4] + "…" for s in secrets if s in text]
    assert not leaked, f"secrets found in logs/files: {leaked}"
