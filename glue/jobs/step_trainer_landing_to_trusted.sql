-- step_trainer_trusted: one row per step_trainer_landing reading whose serialNumber belongs to a
-- customer_curated customer, partitioned by the reading's UTC date.
-- Reads: step_trainer_landing, customer_curated, job_parameters.
-- Row-wise in: step_trainer_landing.
-- A semi join: each landing reading appears at most once. With consent_policy 'since-consent',
-- readings taken before the customer's shareWithResearchAsOfDate are left out.

with readings as (
    select
        s.sensorReadingTime,
        s.serialNumber,
        s.distanceFromObject
    from step_trainer_landing as s
),

-- The first reading time each curated customer shares: any time under consent_policy 'any',
-- from the consent date under 'since-consent'.
consent_windows as (
    select
        c.serialNumber,
        case
            when p.consent_policy = 'since-consent' then c.shareWithResearchAsOfDate
            else cast(-9223372036854775808 as bigint)
        end as readings_from
    from customer_curated as c
    cross join job_parameters as p
)

select
    r.sensorReadingTime,
    r.serialNumber,
    r.distanceFromObject,
    cast(to_date(timestamp_millis(r.sensorReadingTime)) as string) as reading_date
from readings as r
semi join consent_windows as w
    on w.serialNumber = r.serialNumber
    and r.sensorReadingTime >= w.readings_from
