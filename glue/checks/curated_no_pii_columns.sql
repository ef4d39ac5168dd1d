-- curated_no_pii_columns: no curated table has a column named for a name, an e-mail address or a phone number.
-- Guards: PII never reaches the curated zone (customer_curated and machine_learning_curated are the
-- tables shared for research). A curated table that is missing fails the check: its columns cannot be
-- checked, and information_schema would simply have no rows for it.
-- Returns: one row per offending column (table, column, type, problem 'pii column'): a name with
-- "name", "mail" or "phone" in it, "user" (the readings' e-mail key) or "birthday" (curated keeps only
-- birthYear); and one row per curated table with no columns in the catalog (table, problem 'table
-- missing'). Catalogs may list column names in lower case, so names are compared in lower case. The
-- tables are those of the lake's database, named literally (${GlueDatabaseName}, filled in for the database
-- the check runs in), as Athena's guide restricts information_schema.columns to one database ("List all
-- columns for all tables": table_schema = 'database_name'): never the catalog's other databases, which the
-- caller may not be allowed to read.

with curated_tables as (
    select 'customer_curated' as table_name
    union all
    select 'machine_learning_curated' as table_name
),

curated_columns as (
    select
        c.table_name,
        c.column_name,
        c.data_type
    from information_schema.columns as c
    where c.table_schema = '${GlueDatabaseName}'
        and c.table_name in ('customer_curated', 'machine_learning_curated')
)

select
    c.table_name,
    c.column_name,
    c.data_type,
    'pii column' as problem
from curated_columns as c
where lower(c.column_name) like '%name%'
    or lower(c.column_name) like '%mail%'
    or lower(c.column_name) like '%phone%'
    or lower(c.column_name) in ('user', 'birthday')

union all

select
    t.table_name,
    cast(null as varchar) as column_name,
    cast(null as varchar) as data_type,
    'table missing' as problem
from curated_tables as t
where not exists (
    select 1
    from curated_columns as c
    where c.table_name = t.table_name
)

order by table_name, column_name
