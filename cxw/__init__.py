"""CX warehouse runtime: the code Airflow tasks call (load, dbt, validate, publish, summary) and the demo runner.

Nothing here imports Airflow at module level, so every step is testable without a scheduler.
"""

from extractors import SOURCES  # noqa: F401 - the one list of sources (extractors/__init__.py)
