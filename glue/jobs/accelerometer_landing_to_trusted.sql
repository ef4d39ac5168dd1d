-- accelerometer_trusted: one row per accelerometer_landing reading of a consenting customer,
-- partitioned by the reading's UTC date.
-- Reads: accelerometer_landing, customer_trusted, job_parameters.
-- Row-wise in: accelerometer_landing.
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

-- The first reading time each consenting customer shares: any time under consent_policy 'any',
-- from the consent date under 'since-consent'.
consent_windows as (
    select
        c.email,
        case
            when p.consent_policy = 'since-consent' then c.shareWithResearchAsOfDate
            else cast(-9223372036854775808 as bigint)
        end as readings_from
    from customer_trusted as c
    cross join job_parameters as p
)

select
    r.user,
    r.timestamp,
    r.x,
    r.y,
    r.z,
    cast(to_date(timestamp_millis(r.timestamp)) as string) as reading_date
from readings as r
semi join consent_windows as w
    on w.email = r.user
    and r.timestamp >= w.readings_from
