-- trusted_readings_consented: every trusted reading belongs to a consenting customer, under either consent policy.
-- Guards: the trusted zone holds readings of customer_trusted customers only (accelerometer readings by
-- their user's e-mail, step-trainer readings by their device's serial number), whatever the policy: rows
-- of a customer who never consented, added to a trusted folder, fail this check under any too.
-- Returns: per table and reading date, the number of readings of no consenting customer (counts and
-- dates only: accelerometer readings carry the customer's e-mail). "user" is quoted, as docs/deploy.md
-- advises for Athena; DuckDB reads it alike.

with accelerometer_not_consented as (
    select
        'accelerometer_trusted' as table_name,
        a.reading_date,
        count(*) as readings
    from accelerometer_trusted as a
    where not exists (
        select 1
        from customer_trusted as c
        where c.email = a."user"
    )
    group by a.reading_date
),

step_trainer_not_consented as (
    select
        'step_trainer_trusted' as table_name,
        s.reading_date,
        count(*) as readings
    from step_trainer_trusted as s
    where not exists (
        select 1
        from customer_trusted as c
        where c.serialNumber = s.serialNumber
    )
    group by s.reading_date
)

select
    v.table_name,
    v.reading_date,
    v.readings
from (
    select a.table_name, a.reading_date, a.readings from accelerometer_not_consented as a
    union all
    select s.table_name, s.reading_date, s.readings from step_trainer_not_consented as s
) as v
order by v.table_name, v.reading_date
