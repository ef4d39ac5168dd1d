-- machine_learning_curated: one row per pair of a step_trainer_trusted reading and an
-- accelerometer_trusted reading of the same customer at the same millisecond,
-- partitioned by the reading's UTC date.
-- Reads: step_trainer_trusted, accelerometer_trusted, customer_curated, customer_trusted,
-- job_parameters.
-- Row-wise in: step_trainer_trusted, accelerometer_trusted.
-- The pair is joined through the customer (serialNumber -> customerId -> email), never on the
-- timestamp alone, which would pair the readings of different people sharing a millisecond.
-- customer_trusted is read only to map each curated customerId back to its readings' email;
-- no email leaves this job.

with step_trainer_readings as (
    select
        s.sensorReadingTime,
        s.serialNumber,
        s.distanceFromObject
    from step_trainer_trusted as s
),

accelerometer_readings as (
    select
        a.user,
        a.timestamp,
        a.x,
        a.y,
        a.z
    from accelerometer_trusted as a
),

curated_customers as (
    select
        c.customerId,
        c.serialNumber
    from customer_curated as c
),

parameters as (
    select
        p.pii_salt
    from job_parameters as p
),

customer_emails as (
    select
        sha2(concat(p.pii_salt, t.email), 256) as customerId,
        t.email
    from customer_trusted as t
    cross join parameters as p
)

select
    c.customerId,
    s.serialNumber,
    s.sensorReadingTime,
    s.distanceFromObject,
    a.x,
    a.y,
    a.z,
    cast(to_date(timestamp_millis(s.sensorReadingTime)) as string) as reading_date
from step_trainer_readings as s
inner join curated_customers as c
    on c.serialNumber = s.serialNumber
inner join customer_emails as e
    on e.customerId = c.customerId
inner join accelerometer_readings as a
    on a.user = e.email
    and a.timestamp = s.sensorReadingTime
