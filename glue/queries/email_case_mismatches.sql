-- email_case_mismatches: the accelerometer readings left out of accelerometer_trusted because their user equals
-- a consenting customer's e-mail only when letter case is ignored (the job joins e-mails exactly as written).
-- A diagnostic of accelerometer_landing_to_trusted (its "-- Diagnostics:" header): both engines run it after
-- the job, over the tables the job read, so it is Spark SQL that DuckDB and Athena read alike.
-- Returns: one row, readings (a count only: no e-mail).

with emails as (
    select distinct
        c.email,
        lower(c.email) as folded
    from customer_trusted as c
),

users as (
    select
        a.user,
        count(*) as readings
    from accelerometer_landing as a
    group by a.user
)

select
    coalesce(sum(u.readings), 0) as readings
from users as u
where not exists (
    select 1
    from emails as e
    where e.email = u.user
)
and exists (
    select 1
    from emails as e
    where e.folded = lower(u.user)
)
