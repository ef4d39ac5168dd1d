-- curated_customers_trusted_with_readings: every customer_curated row is a trusted customer with at least one trusted reading.
-- Guards: the curated customers are exactly drawn from customer_trusted customers who have an
-- accelerometer_trusted reading, under either consent policy (under since-consent only readings since
-- consent are trusted, so a customer whose readings all predate consent is not curated).
-- Returns: one row, when any, with how many curated rows have no such trusted customer and the range of
-- their registration dates: counts and dates only, since these rows go into alert e-mails and a broken
-- curated row may hold anything. A curated row is matched to its trusted customer by the fields the job
-- copies (serial number and dates), since its customerId is a salted hash.

select
    count(*) as curated_rows,
    min(c.registrationDate) as first_registration_date,
    max(c.registrationDate) as last_registration_date
from customer_curated as c
where not exists (
    select 1
    from customer_trusted as t
    where t.serialNumber = c.serialNumber
        and t.registrationDate = c.registrationDate
        and t.lastUpdateDate = c.lastUpdateDate
        and exists (
            select 1
            from accelerometer_trusted as a
            where a."user" = t.email
        )
)
having count(*) > 0
