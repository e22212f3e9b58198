"""Airflow connections → the extractors' settings objects.

Extractors read their configuration from `CXW_<SOURCE>_*` variables (see each extractor's README) so they run the
same under Airflow, in tests and from a shell. Under Airflow, a connection `cxw_<source>` (from the metadata DB, a
secrets backend or an `AIRFLOW_CONN_CXW_<SOURCE>` variable) provides those settings for the task: its fields are
laid over the environment by the one generic mapper `extractors.common.connection` with the mapping the source
declares next to its settings (`CONNECTION_FIELDS` in `extractors/<source>/settings.py`), and the settings object is
built from that mapping. The process environment is not modified. Values are never logged.
"""

from __future__ import annotations

import logging

from extractors.common.connection import conn_id, connection_values, settings_module, source_env

log = logging.getLogger(__name__)

__all__ = ["conn_id", "airflow_connection", "env_from_connection", "task_env"]


def env_from_connection(source: str, conn) -> dict[str, str]:
    """The environment variables a connection object defines for ``source`` (pure; testable without Airflow)."""
    return connection_values(settings_module(source).CONNECTION_FIELDS, conn)


def airflow_connection(source: str):
    """Airflow's `cxw_<source>` connection, or None (not running under Airflow, or no such connection)."""
    try:
        from airflow.sdk import BaseHook
    except Exception:  # not running under Airflow
        return None
    try:
        conn = BaseHook.get_connection(conn_id(source))
    except Exception:
        log.info("no Airflow connection %s; using CXW_* environment variables", conn_id(source))
        return None
    return conn


def task_env(source: str) -> dict[str, str]:
    """The variables an extract task reads ``source``'s settings from: the environment with the values of its
    Airflow connection on top (the connection wins), when there is one."""
    conn = airflow_connection(source)
    env = source_env(source, conn)
    if conn is not None:
        names = sorted(env_from_connection(source, conn))
        log.info("configured %s from Airflow connection %s (%s)", source, conn_id(source), ", ".join(names))
    return env
