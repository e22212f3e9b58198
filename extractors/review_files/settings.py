"""Review files (CSV / TSV / JSON-lines exports from Yelp, TripAdvisor, app stores...): inbox, mappings, defaults.

Disabled by default: without ``CXW_REVIEW_FILES_DIR`` the extract lands nothing (the demo's published tables stay
as they are). Files go in ``<CXW_REVIEW_FILES_DIR>/<site>/``; ``<site>`` names the mapping file
``<mappings dir>/<site>.yml`` (extractors/review_files/mappings/ by default, ``CXW_REVIEW_FILES_MAPPINGS_DIR``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from extractors.common.settings import ConfigError, Env, env_str

SOURCE = "review_files"
ENTITY = "reviews"
DEFAULT_MAPPINGS_DIR = Path(__file__).with_name("mappings")

# (setting that makes the source configured, setting of its endpoint, the endpoint's default): a local directory,
# which cxw.pii does not count as a remote system (files someone exported by hand)
ENDPOINT = ("CXW_REVIEW_FILES_DIR", "CXW_REVIEW_FILES_DIR", None)

# Airflow connection cxw_review_files: field -> the variable it fills (extractors.common.connection applies it)
CONNECTION_FIELDS = {"extra.dir": "CXW_REVIEW_FILES_DIR", "extra.mappings_dir": "CXW_REVIEW_FILES_MAPPINGS_DIR"}


@dataclass(kw_only=True)
class ReviewFilesSettings:
    inbox: Optional[Path]                  # None: the source is not configured (the extract lands nothing)
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR

    @property
    def configured(self) -> bool:
        return self.inbox is not None

    def check(self) -> None:
        """Raise ConfigError when a configured directory is missing (done by the extract, not by ``from_env``)."""
        if self.inbox is not None and not self.inbox.is_dir():
            raise ConfigError("CXW_REVIEW_FILES_DIR is not a directory", source=SOURCE)
        if not self.mappings_dir.is_dir():
            raise ConfigError("CXW_REVIEW_FILES_MAPPINGS_DIR is not a directory", source=SOURCE)

    @classmethod
    def from_env(cls, env: Env = None) -> "ReviewFilesSettings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        inbox = env_str("CXW_REVIEW_FILES_DIR", env=env)
        mappings = Path(env_str("CXW_REVIEW_FILES_MAPPINGS_DIR", str(DEFAULT_MAPPINGS_DIR), env=env))
        return cls(inbox=Path(inbox) if inbox is not None else None, mappings_dir=mappings)


SETTINGS = ReviewFilesSettings   # the class extractors.common.connection builds from the environment / a connection
