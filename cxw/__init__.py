"""CX warehouse runtime: the code Airflow tasks call (load, dbt, validate, publish, alerts, summary, erase and
retention) and nothing else; the command line, demo runner and benchmark are `cxw_tools`, which this never imports.

Nothing here imports Airflow at module level, so every step is testable without a scheduler.
"""

from extractors import SOURCES  # noqa: F401 - the one list of sources (extractors/__init__.py)
