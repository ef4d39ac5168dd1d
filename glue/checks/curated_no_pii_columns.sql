-- curated_no_pii_columns: no curated table has a column named for a name, an e-mail address or a phone number.
-- Guards: PII never reaches the curated zone (customer_curated and machine_learning_curated are the
-- tables shared for research).
-- Returns: one row per offending column (table, column, type): a name with "name", "mail" or "phone"
-- in it, "user" (the readings' e-mail key) or "birthday" (curated keeps only birthYear). Catalogs may
-- list column names in lower case, so names are compared in lower case; the tables are those of the
-- current database (Athena: the query's database; locally: the lake).

select
    c.table_name,
    c.column_name,
    c.data_type
from information_schema.columns as c
where c.table_schema = current_schema
    and c.table_name in ('customer_curated', 'machine_learning_curated')
    and (
        lower(c.column_name) like '%name%'
        or lower(c.column_name) like '%mail%'
        or lower(c.column_name) like '%phone%'
        or lower(c.column_name) in ('user', 'birthday')
    )
order by c.table_name, c.column_name
