-- machine_learning_customers_curated: every machine_learning_curated row belongs to a customer of customer_curated.
-- Guards: the ML table holds readings of consenting, curated customers only.
-- Returns: per customerId not in customer_curated (null included), its number of rows and reading dates.

select
    m.customerId,
    count(*) as row_count,
    min(m.reading_date) as first_reading_date,
    max(m.reading_date) as last_reading_date
from machine_learning_curated as m
where not exists (
    select 1
    from customer_curated as c
    where c.customerId = m.customerId
)
group by m.customerId
order by m.customerId
