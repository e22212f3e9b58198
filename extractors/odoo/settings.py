"""Odoo (or any SQL ERP) extractor settings: connection URL + YAML mapping (config from env, see README)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from extractors.common.settings import Env, env_int, env_str, history_start_from_env

SOURCE = "odoo"
DEFAULT_MAPPING = os.path.join(os.path.dirname(__file__), "mappings", "odoo17.yml")
DEFAULT_LOOKBACK = "2d"
BATCH_ROWS = 100_000          # Arrow record-batch size when streaming from connectorx


# (setting that makes the source configured, setting of its endpoint, the endpoint's default): cxw.pii refuses the
# public demo PII salt when a configured source's endpoint is not on loopback
ENDPOINT = ("CXW_ODOO_URL", "CXW_ODOO_URL", None)

# Airflow connection cxw_odoo: field -> the variable it fills ("uri": the whole connection as a URL;
# extractors.common.connection applies it)
CONNECTION_FIELDS = {"uri": "CXW_ODOO_URL", "extra.mapping": "CXW_ODOO_MAPPING"}


@dataclass
class OdooSettings:
    url: str                         # SQLAlchemy URL (sqlite:////abs.sqlite, postgresql://..., mysql+pymysql://...)
    mapping_path: str = DEFAULT_MAPPING
    entities: Optional[list] = None  # subset of mapping entities (default: all)
    history_start: Optional[datetime] = None
    batch_rows: int = BATCH_ROWS
    connect_timeout_s: int = 10
    id_snapshots: str = "auto"       # <entity>__ids hard-delete snapshots: auto (mapping id_snapshot), always, never

    @classmethod
    def from_env(cls, env: Env = None) -> "OdooSettings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        return cls(
            url=env_str("CXW_ODOO_URL", required=True, env=env),
            mapping_path=env_str("CXW_ODOO_MAPPING", DEFAULT_MAPPING, env=env),
            history_start=history_start_from_env(env),
            batch_rows=env_int("CXW_ODOO_BATCH_ROWS", BATCH_ROWS, env=env),
            connect_timeout_s=env_int("CXW_ODOO_CONNECT_TIMEOUT", 10, env=env),
            id_snapshots=env_str("CXW_ODOO_ID_SNAPSHOTS", "auto", env=env),
        )


SETTINGS = OdooSettings   # the class extractors.common.connection builds from the environment / a connection
