"""sqlfluff's jinja templater only: dbt's `modules` context (modules.re, modules.datetime)."""
import datetime  # noqa: F401 - exposed to the templates
import re  # noqa: F401 - exposed to the templates
