-- customer_trusted_consented: every customer in customer_trusted has consented to share data for research.
-- Guards: the trusted zone holds only customers whose latest record has shareWithResearchAsOfDate.
-- Returns: one row per customer without it, by serialNumber and dates (no name, e-mail or phone:
-- these rows go into alert e-mails).

select
    c.serialNumber,
    c.registrationDate,
    c.lastUpdateDate
from customer_trusted as c
where c.shareWithResearchAsOfDate is null
order by c.serialNumber, c.lastUpdateDate
