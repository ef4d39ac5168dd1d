-- step_trainer_trusted: one row per step_trainer_landing reading whose serialNumber belongs to a
-- customer_curated customer, partitioned by the reading's UTC date.
-- Reads: step_trainer_landing, customer_curated, job_parameters.
-- A semi join: each landing reading appears at most once. With consent_policy 'since-consent',
-- readings taken before the customer's shareWithResearchAsOfDate are left out.

with readings as (
    select
        s.sensorReadingTime,
        s.serialNumber,
        s.distanceFromObject
    from step_trainer_landing as s
),

curated_customers as (
    select
        c.serialNumber,
        c.shareWithResearchAsOfDate
    from customer_curated as c
),

parameters as (
    select
        p.consent_policy
    from job_parameters as p
)

select
    r.sensorReadingTime,
    r.serialNumber,
    r.distanceFromObject,
    cast(to_date(timestamp_millis(r.sensorReadingTime)) as string) as reading_date
from readings as r
cross join parameters as p
semi join curated_customers as c
    on c.serialNumber = r.serialNumber
    and (p.consent_policy = 'any' or r.sensorReadingTime >= c.shareWithResearchAsOfDate)
