"""Analyses that run after dbt and before the marts gate (issue 19): each reads published-shape marts through a
reader and returns new tables, which the `analyze` task writes into the marts schema of the build database, where
the marts gate audits them and publish copies them like every mart (docs/analytics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

import pandas as pd

Reader = Callable[[str], pd.DataFrame]  # SQL (relations named by AnalysisContext.relation) -> its result


@dataclass(frozen=True)
class AnalysisContext:
    as_of: date  # the run's data interval end (the newest day the analysis may use)
    seed: int  # fixed seed for every random step (bootstrap, sampling, MCMC): same input -> identical output
    relation: Callable[[str], str]  # mart name -> qualified relation in the build database ("fct_orders" -> ...)


@dataclass(frozen=True)
class Analysis:
    name: str  # e.g. "key_drivers"
    outputs: tuple[str, ...]  # the tables run() returns, e.g. ("cx_key_drivers",)
    run: Callable[[Reader, AnalysisContext], dict[str, pd.DataFrame]]
