-- customer_trusted: one row per customer (email) who consents to share data for research.
-- Reads: customer_landing, job_parameters.
-- A customer present more than once is taken from the record with the latest lastUpdateDate;
-- when that latest record has no shareWithResearchAsOfDate the customer is left out, so a withdrawn
-- consent takes effect. Records with the same latest lastUpdateDate, one granting and one
-- withdrawing consent: withdrawal wins (the conservative reading of consent); between two granting
-- ones the later consent date wins; remaining ties are broken on the record's content, so reruns agree.
-- readingsSharedFrom is the consent window, computed here once for every job and check that reads it:
-- the first reading time the customer shares, shareWithResearchAsOfDate under consent_policy
-- 'since-consent', any time (the smallest bigint) under 'any'.

with customers as (
    select
        c.customerName,
        c.email,
        c.phone,
        c.birthDay,
        c.serialNumber,
        c.registrationDate,
        c.lastUpdateDate,
        c.shareWithResearchAsOfDate,
        c.shareWithPublicAsOfDate,
        c.shareWithFriendsAsOfDate
    from customer_landing as c
),

ranked_records as (
    select
        c.customerName,
        c.email,
        c.phone,
        c.birthDay,
        c.serialNumber,
        c.registrationDate,
        c.lastUpdateDate,
        c.shareWithResearchAsOfDate,
        c.shareWithPublicAsOfDate,
        c.shareWithFriendsAsOfDate,
        row_number() over (
            partition by c.email
            order by
                c.lastUpdateDate desc nulls last,
                c.shareWithResearchAsOfDate desc nulls first,
                c.registrationDate desc nulls last,
                c.serialNumber asc nulls last,
                c.customerName asc nulls last,
                c.birthDay asc nulls last,
                c.phone asc nulls last
        ) as recency_rank
    from customers as c
),

latest_records as (
    select
        r.customerName,
        r.email,
        r.phone,
        r.birthDay,
        r.serialNumber,
        r.registrationDate,
        r.lastUpdateDate,
        r.shareWithResearchAsOfDate,
        r.shareWithPublicAsOfDate,
        r.shareWithFriendsAsOfDate
    from ranked_records as r
    where r.recency_rank = 1
)

select
    l.customerName,
    l.email,
    l.phone,
    l.birthDay,
    l.serialNumber,
    l.registrationDate,
    l.lastUpdateDate,
    l.shareWithResearchAsOfDate,
    l.shareWithPublicAsOfDate,
    l.shareWithFriendsAsOfDate,
    case
        when p.consent_policy = 'since-consent' then l.shareWithResearchAsOfDate
        else cast(-9223372036854775808 as bigint)
    end as readingsSharedFrom
from latest_records as l
cross join job_parameters as p
where l.shareWithResearchAsOfDate is not null
