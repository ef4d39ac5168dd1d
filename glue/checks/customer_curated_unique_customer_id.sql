-- customer_curated_unique_customer_id: customerId identifies exactly one row of customer_curated.
-- Guards: the key machine_learning_curated and its users join on; a repeated customerId would pair
-- one customer's readings with another customer's record.
-- Returns: each repeated customerId (a salted hash, not PII) and how many rows hold it.

select
    c.customerId,
    count(*) as row_count
from customer_curated as c
group by c.customerId
having count(*) > 1
order by c.customerId
