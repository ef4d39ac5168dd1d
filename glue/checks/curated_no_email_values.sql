-- curated_no_email_values: no text value of a curated table looks like an e-mail address.
-- Guards: PII never reaches the curated zone, even in a column whose name does not give it away
-- (an e-mail written into serialNumber, a customerId that is not hashed).
-- Returns: one row per (table, column) holding such values, with how many; never the values themselves,
-- since these rows go into alert e-mails. Covers every string column of both curated tables (a test
-- compares this list with the tables the jobs write).

with email_like as (
    select 'customer_curated' as table_name, 'customerId' as column_name, count(*) as values_like_email
    from customer_curated as c
    where c.customerId like '%_@_%._%'

    union all

    select 'customer_curated' as table_name, 'serialNumber' as column_name, count(*) as values_like_email
    from customer_curated as c
    where c.serialNumber like '%_@_%._%'

    union all

    select 'machine_learning_curated' as table_name, 'customerId' as column_name, count(*) as values_like_email
    from machine_learning_curated as m
    where m.customerId like '%_@_%._%'

    union all

    select 'machine_learning_curated' as table_name, 'serialNumber' as column_name, count(*) as values_like_email
    from machine_learning_curated as m
    where m.serialNumber like '%_@_%._%'

    union all

    select 'machine_learning_curated' as table_name, 'reading_date' as column_name, count(*) as values_like_email
    from machine_learning_curated as m
    where m.reading_date like '%_@_%._%'
)

select
    e.table_name,
    e.column_name,
    e.values_like_email
from email_like as e
where e.values_like_email > 0
order by e.table_name, e.column_name
