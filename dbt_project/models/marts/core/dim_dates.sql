with days as (
    select cast(d as date) as date_day
    from generate_series(
        cast('{{ var("dim_dates_start", "2024-01-01") }}' as timestamp),
        cast('{{ var("dim_dates_end", "2026-12-31") }}' as timestamp),
        interval '1 day'
    ) as t(d)
)

select
    date_day,
    extract(year from date_day) as year,
    extract(month from date_day) as month,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(date_trunc('week', date_day) as date) as week_start,
    extract(isodow from date_day) as iso_day_of_week,
    extract(isodow from date_day) in (6, 7) as is_weekend
from days
