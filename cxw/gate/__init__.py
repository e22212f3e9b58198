"""The quality gate: Great Expectations audits of (a) the newly landed raw loads before dbt and (b) the candidate marts
in the build database before anything is published. Suites are code, one per checked table, named `<layer>.<table>`.

    ge.py            GE plumbing: one in-memory context per gate and run (`Gate`), the report and `ValidationFailed`
                     (`finish`), and the masking that keeps values of the data out of results, messages and Data Docs
    raw.py           the raw gate (`validate_raw`), its steps, and its verdicts file (`RawGateVerdicts`)
    raw_suites.py    its suites, `raw.<source>__<entity>`: required columns and types, ranges
    volume.py        its volume rule (kind, baseline, threshold) and the suite on it, `raw.load_log`
    marts.py         the marts gate (`validate_marts`): every table of core, kpi, cx
    marts_delta.py   what it reads of a table: changed rows for per-row checks, the whole table narrow for the rest
    marts_suites.py  its suites, `core.*`, `kpi.*`, `cx.*`, and `Check` (one expectation with severity and reason)

The entry points take their paths (raw root, run directory, state directory, build and published databases) and
settings (volume rule, accepted loads, row-drop limit) as arguments; `None` means the defaults of `cxw.config.paths()`
and the `CXW_GATE_*` variables, read there and nowhere deeper.
"""

from .ge import Gate, ValidationFailed, run_dir
from .marts import validate_marts
from .raw import validate_raw

__all__ = ["Gate", "ValidationFailed", "run_dir", "validate_marts", "validate_raw"]
