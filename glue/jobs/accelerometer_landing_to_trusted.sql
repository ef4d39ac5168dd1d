-- accelerometer_trusted: one row per accelerometer_landing reading of a consenting customer,
-- partitioned by the reading's UTC date.
-- Reads: accelerometer_landing, customer_trusted, job_parameters.
-- A semi join: each landing reading appears at most once, whatever the customer side holds.
-- With consent_policy 'since-consent', readings taken before the customer's
-- shareWithResearchAsOfDate are left out.

with readings as (
    select
        a.user,
        a.timestamp,
        a.x,
        a.y,
        a.z
    from accelerometer_landing as a
),

consenting_customers as (
    select
        c.email,
        c.shareWithResearchAsOfDate
    from customer_trusted as c
),

parameters as (
    select
        p.consent_policy
    from job_parameters as p
)

select
    r.user,
    r.timestamp,
    r.x,
    r.y,
    r.z,
    cast(to_date(timestamp_millis(r.timestamp)) as string) as reading_date
from readings as r
cross join parameters as p
semi join consenting_customers as c
    on c.email = r.user
    and (p.consent_policy = 'any' or r.timestamp >= c.shareWithResearchAsOfDate)
