"""CX warehouse runtime: the code Airflow tasks call (load, dbt, validate, publish, summary) and the demo runner.

Nothing here imports Airflow at module level, so every step is testable without a scheduler.
"""

SOURCES = ("odoo", "hubspot", "ga4", "google_reviews", "trustpilot")
