-- accelerometer_trusted: one row per accelerometer_landing reading of a consenting customer,
-- partitioned by the reading's UTC date.
-- Reads: accelerometer_landing, customer_trusted.
-- Row-wise in: accelerometer_landing.
-- A semi join: each landing reading appears at most once, whatever the customer side holds.
-- A reading counts from its customer's readingsSharedFrom (customer_trusted's consent window: the
-- consent date under consent_policy 'since-consent', any time under 'any').
-- Diagnostics: email_case_mismatches.

with readings as (
    select
        a.user,
        a.timestamp,
        a.x,
        a.y,
        a.z
    from accelerometer_landing as a
)

select
    r.user,
    r.timestamp,
    r.x,
    r.y,
    r.z,
    cast(to_date(timestamp_millis(r.timestamp)) as string) as reading_date
from readings as r
semi join customer_trusted as c
    on c.email = r.user
    and r.timestamp >= c.readingsSharedFrom
