"""Great Expectations suites, code-first: one suite per checked table, named `<layer>.<table>`.

See `suites.py` for the suites and `cxw/validate.py` for how they run (pandas engine over Arrow batches from DuckDB).
"""
