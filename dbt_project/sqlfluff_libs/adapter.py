"""sqlfluff's jinja templater only: `adapter` as dbt-duckdb resolves it at compile time (no database).

dbt's own templater would need a live build database (staging macros read the raw tables' columns), so sqlfluff
renders the models with its jinja templater and these stand-ins (docs/DECISIONLOG.md "Linters").
"""
from jinja2 import pass_context


@pass_context
def dispatch(ctx, name, macro_namespace=None):
    """The duckdb__ implementation of a dispatched macro, else its default__ (dbt's search order for DuckDB)."""
    for candidate in (f"duckdb__{name}", f"default__{name}"):
        macro = ctx.get(candidate)
        if macro is not None:
            return macro
    raise KeyError(f"adapter.dispatch: no duckdb__{name} or default__{name} macro")


def get_columns_in_relation(relation):
    return []  # no database at lint time: macros that read columns take their `execute` = false branch anyway


def get_relation(database=None, schema=None, identifier=None):
    return None


def quote(identifier):
    return f'"{identifier}"'
