"""The tools around the pipeline, never imported by it (`cxw` is the runtime the Airflow DAG imports; tests/cxw/
test_runtime_boundary.py fails when a runtime module imports this package or the demo company):

- ``__main__``: the command line ``./cx`` runs (``python -m cxw_tools {demo,run,doctor,up,down,status,bench,...}``);
- ``run``, ``doctor``, ``up``, ``airflow_local``: start the pipeline on one machine (`airflow dags test`, the
  Airflow services) with the project-local Airflow home, and check the configured sources before it runs;
- ``demo``: generate the demo company, serve its source APIs and run the DAG on them;
- ``bench``: the benchmark (harness, floor, sampler, report; bench/README.md);
- ``mutate``: the mutation check (tests/mutations.yml); ``env_example``: writes .env.example from README.
"""
