-- step_trainer_trusted: one row per step_trainer_landing reading whose serialNumber belongs to a
-- customer_curated customer, partitioned by the reading's UTC date.
-- Reads: step_trainer_landing, customer_curated, customer_trusted, job_parameters.
-- Row-wise in: step_trainer_landing.
-- A semi join: each landing reading appears at most once. A reading counts from its customer's
-- readingsSharedFrom (customer_trusted's consent window: the consent date under consent_policy
-- 'since-consent', any time under 'any'). customer_trusted is read only for that window, each curated
-- customerId mapped back to its customer as machine_learning_curated does; no email leaves this job.

with readings as (
    select
        s.sensorReadingTime,
        s.serialNumber,
        s.distanceFromObject
    from step_trainer_landing as s
),

parameters as (
    select
        p.pii_salt
    from job_parameters as p
),

-- Each customer's consent window, by the customerId customer_curated knows it by.
customer_windows as (
    select
        sha2(concat(p.pii_salt, t.email), 256) as customerId,
        t.readingsSharedFrom
    from customer_trusted as t
    cross join parameters as p
),

-- Each curated customer's serialNumber with its consent window.
consent_windows as (
    select
        c.serialNumber,
        w.readingsSharedFrom
    from customer_curated as c
    inner join customer_windows as w
        on w.customerId = c.customerId
)

select
    r.sensorReadingTime,
    r.serialNumber,
    r.distanceFromObject,
    cast(to_date(timestamp_millis(r.sensorReadingTime)) as string) as reading_date
from readings as r
semi join consent_windows as w
    on w.serialNumber = r.serialNumber
    and r.sensorReadingTime >= w.readingsSharedFrom
