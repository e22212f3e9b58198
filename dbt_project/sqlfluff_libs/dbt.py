"""sqlfluff's jinja templater only: the dbt cross-database macros the models call, as dbt-duckdb renders them."""


def type_string():
    return "varchar"


def type_timestamp():
    return "timestamp"


def type_float():
    return "float"


def type_int():
    return "integer"


def type_bigint():
    return "bigint"


def type_numeric():
    return "numeric(28, 6)"


def type_boolean():
    return "boolean"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def last_day(date, datepart):
    return f"last_day({date})"


def hash(field):  # dbt's name (shadows the builtin inside this module only)
    return f"md5(cast({field} as varchar))"


def listagg(measure, delimiter_text="','", order_by_clause=None, limit_num=None):
    order = f" {order_by_clause}" if order_by_clause else ""
    return f"string_agg({measure}, {delimiter_text}{order})"
