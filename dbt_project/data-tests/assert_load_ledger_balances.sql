-- Architecture principle 7: for every source / entity / load, extracted = staged + quarantined + duplicates.
-- load_ledger counts per load (staged = the load's rows staging kept, duplicates = the rest of its good rows), so
-- the equation holds by construction; what can fail is a load whose staging kept more rows than it had good rows
-- (a fan-out join in a staging model): negative duplicates. Exact staged / quarantined counts per entity are
-- checked against the demo's answer key (tests/e2e).
select *
from {{ ref('load_ledger') }}
where extracted <> staged + quarantined + duplicates
   or duplicates < 0
