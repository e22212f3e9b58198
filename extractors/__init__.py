"""CX warehouse extractors: one package per source, each exposing ``extract(...)``.

Every extractor lands immutable Parquet loads under ``<raw_root>/<source>/<entity>/<load_id>/``
(see docs/contracts.md section 4) and keeps its cursor in ``<state_root>/<source>.json``.
No Airflow imports here: each source declares which Airflow connection field fills which ``CXW_*`` setting
(``CONNECTION_FIELDS`` in its ``settings.py``) and ``extractors.common.connection`` builds its settings object.
"""

EXTRACTOR_VERSION = "0.1.0"
SOURCES = ("odoo", "hubspot", "ga4", "google_reviews", "trustpilot", "review_files")
"""The one list of sources (``cxw.SOURCES`` and the DAG's extract/load tasks are this list): a package
``extractors/<source>/`` with ``extract(...)`` and a ``settings.py`` holding ``SETTINGS`` and ``CONNECTION_FIELDS``."""
OPTIONAL_SOURCES = ("review_files",)
"""Sources that are off unless configured: their extract lands nothing and reports ``not_configured`` without their
setting (review_files: ``CXW_REVIEW_FILES_DIR``), so a deployment (and the demo) without them is complete."""
