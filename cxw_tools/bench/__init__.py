"""`./cx bench`: stage timings of the real DAG under Airflow, and ratios against a DuckDB floor (bench/README.md).

By job: ``harness`` runs the repetitions (fresh homes, DAG runs under Airflow, the loader check, the full-refresh
check) and is the command; ``floor`` generates and runs the DuckDB floor from dbt's manifest and fingerprints
published tables; ``sampler`` samples a process tree's CPU, RSS and spill; ``report`` turns the repetitions into
figures, targets and the Markdown result.
"""


class BenchError(RuntimeError):
    pass
