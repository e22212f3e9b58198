"""One generic mapper from an Airflow connection to a source's settings object (no Airflow import here).

Each source declares, next to its settings class (``extractors/<source>/settings.py``), ``CONNECTION_FIELDS``: which
field of its Airflow connection ``cxw_<source>`` fills which ``CXW_*`` variable, and ``SETTINGS``: the class whose
``from_env(env)`` reads those variables. ``settings_for(source, conn)`` lays the connection's values over the
environment (the connection wins) and builds the settings object from that mapping: the process environment is
never written, so what a task reads is what it was given. Values are never logged.

Field names: ``uri`` (the whole connection as a URL), ``host`` (with ``schema`` as the scheme, default https, and
``port``; a host that already holds ``://`` is taken as it is), ``login``, ``password``, ``extra.<key>`` (a list
is joined with commas).
"""
from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import Any, Dict, Mapping, Optional

from extractors import SOURCES


def settings_module(source: str) -> ModuleType:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    return importlib.import_module(f"extractors.{source}.settings")


def conn_id(source: str) -> str:
    return f"cxw_{source}"


def connection_values(fields: Mapping[str, str], conn: Any) -> Dict[str, str]:
    """The ``CXW_*`` variables ``conn`` defines under the mapping ``fields`` (field -> variable); empty fields are
    left out, so the environment's value (or the default) stays."""
    out: Dict[str, str] = {}
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(getattr(conn, "extra", None) or "{}")
    for field, var in fields.items():
        if field == "uri":
            value = conn.get_uri()
        elif field.startswith("extra."):
            value = extra.get(field.split(".", 1)[1])
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
        elif field == "host":
            value = conn.host
            if value and "://" not in value:
                scheme = conn.schema or "https"
                port = f":{conn.port}" if conn.port else ""
                value = f"{scheme}://{value}{port}"
        else:
            value = getattr(conn, field, None)
        if value not in (None, ""):
            out[var] = str(value)
    return out


def source_env(source: str, conn: Any = None, env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The variables a source's settings are read from: ``env`` (default the process environment) with the values
    of ``conn`` (a connection object, or None) on top."""
    base = dict(os.environ if env is None else env)
    if conn is not None:
        base.update(connection_values(settings_module(source).CONNECTION_FIELDS, conn))
    return base


def settings_for(source: str, conn: Any = None, env: Optional[Mapping[str, str]] = None):
    """The source's settings object: its ``SETTINGS.from_env`` over ``source_env(source, conn, env)``. Raises the
    source's ``ConfigError`` for a missing or malformed setting, as ``from_env`` does."""
    return settings_module(source).SETTINGS.from_env(source_env(source, conn, env))
