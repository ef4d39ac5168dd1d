-- trusted_readings_since_consent: under since-consent, no trusted reading is dated before its customer's consent.
-- Guards: a table built with consent policy since-consent (as table_builds records) keeps only the
-- readings taken at or after the customer's consent window start, customer_trusted's readingsSharedFrom
-- (the one place the window is computed), and customer_trusted built under since-consent starts each
-- window at the customer's shareWithResearchAsOfDate. Tables built with policy any are not checked: they
-- keep every reading of a consenting customer. Step-trainer readings are matched to the window by their
-- device's serial number (a check has no salt to map customer_curated's customerId back to a customer).
-- Returns: per table and reading date, the number of readings with no consent before them, and for
-- customer_trusted (reading_date null) the number of customers whose window is not their consent date
-- (counts and dates only: accelerometer readings carry the customer's e-mail). "user" and "timestamp"
-- are quoted, as docs/deploy.md advises for Athena; DuckDB reads them alike.

with policies as (
    select
        b.table_name
    from table_builds as b
    where b.consent_policy = 'since-consent'
),

windows_not_at_consent as (
    select
        'customer_trusted' as table_name,
        cast(null as varchar) as reading_date,
        count(*) as readings
    from customer_trusted as c
    where exists (
        select 1
        from policies as p
        where p.table_name = 'customer_trusted'
    )
    and (c.readingsSharedFrom is null or c.readingsSharedFrom <> c.shareWithResearchAsOfDate)
    having count(*) > 0
),

accelerometer_before_consent as (
    select
        'accelerometer_trusted' as table_name,
        a.reading_date,
        count(*) as readings
    from accelerometer_trusted as a
    where exists (
        select 1
        from policies as p
        where p.table_name = 'accelerometer_trusted'
    )
    and not exists (
        select 1
        from customer_trusted as c
        where c.email = a."user"
            and c.readingsSharedFrom <= a."timestamp"
    )
    group by a.reading_date
),

step_trainer_before_consent as (
    select
        'step_trainer_trusted' as table_name,
        s.reading_date,
        count(*) as readings
    from step_trainer_trusted as s
    where exists (
        select 1
        from policies as p
        where p.table_name = 'step_trainer_trusted'
    )
    and not exists (
        select 1
        from customer_trusted as c
        where c.serialNumber = s.serialNumber
            and c.readingsSharedFrom <= s.sensorReadingTime
    )
    group by s.reading_date
)

select
    v.table_name,
    v.reading_date,
    v.readings
from (
    select w.table_name, w.reading_date, w.readings from windows_not_at_consent as w
    union all
    select a.table_name, a.reading_date, a.readings from accelerometer_before_consent as a
    union all
    select s.table_name, s.reading_date, s.readings from step_trainer_before_consent as s
) as v
order by v.table_name, v.reading_date
