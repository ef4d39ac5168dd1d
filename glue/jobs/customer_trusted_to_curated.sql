-- customer_curated: one row per customer_trusted customer with at least one
-- accelerometer_trusted reading, anonymised.
-- Reads: customer_trusted, accelerometer_trusted, job_parameters.
-- No name, email or phone: customerId is the salted SHA-256 of the email (the salt comes from
-- job_parameters, never from this file) and birthDay is reduced to the birth year.

with customers as (
    select
        c.email,
        c.birthDay,
        c.serialNumber,
        c.registrationDate,
        c.lastUpdateDate,
        c.shareWithResearchAsOfDate,
        c.shareWithPublicAsOfDate,
        c.shareWithFriendsAsOfDate
    from customer_trusted as c
),

readings as (
    select
        a.user
    from accelerometer_trusted as a
),

parameters as (
    select
        p.pii_salt
    from job_parameters as p
),

customers_with_readings as (
    select
        c.email,
        c.birthDay,
        c.serialNumber,
        c.registrationDate,
        c.lastUpdateDate,
        c.shareWithResearchAsOfDate,
        c.shareWithPublicAsOfDate,
        c.shareWithFriendsAsOfDate
    from customers as c
    semi join readings as r
        on r.user = c.email
)

select
    sha2(concat(p.pii_salt, c.email), 256) as customerId,
    c.serialNumber,
    try_cast(regexp_extract(c.birthDay, '^([0-9]+)-', 1) as int) as birthYear,
    c.registrationDate,
    c.lastUpdateDate,
    c.shareWithResearchAsOfDate,
    c.shareWithPublicAsOfDate,
    c.shareWithFriendsAsOfDate
from customers_with_readings as c
cross join parameters as p
