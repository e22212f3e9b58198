-- Architecture principle 7: for every source / entity / load, extracted = staged + quarantined + duplicates.
select *
from {{ ref('load_ledger') }}
where extracted <> staged + quarantined + duplicates
