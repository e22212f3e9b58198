"""CX warehouse extractors: one package per source, each exposing ``extract(...)``.

Every extractor lands immutable Parquet loads under ``<raw_root>/<source>/<entity>/<load_id>/``
(see docs/contracts.md section 4) and keeps its cursor in ``<state_root>/<source>.json``.
No Airflow imports here: the DAG layer maps connections onto the ``CXW_*`` environment variables.
"""

EXTRACTOR_VERSION = "0.1.0"
SOURCES = ("odoo", "hubspot", "ga4", "google_reviews", "trustpilot")
