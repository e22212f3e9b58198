"""Great Expectations suites, code-first: one suite per checked table, named `<layer>.<table>`.

`raw_suites.py`: the new raw loads before dbt (`raw.<source>__<entity>`, and `raw.load_log` for volume);
`suites.py`: the candidate marts before publish (`core.*`, `kpi.*`, `cx.*`). How they run: `cxw/validate.py` (pandas
engine over Arrow batches: Parquet files for raw, the build database read-only for marts).
"""
