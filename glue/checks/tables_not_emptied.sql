-- tables_not_emptied: no table that held rows before its last rebuild is empty now while every
-- table that rebuild read held rows.
-- Guards: a run that silently loses all its rows (a join that matches nothing, a salt or policy
-- mix-up) fails its checks instead of publishing empty tables. A table emptied because an input is
-- empty passes: a landing prefix emptied on purpose is a lake with no data of that kind (a missing
-- landing folder fails the run before any job, locally). The count before the rebuild and the inputs
-- that held no rows come from table_builds, which each job writes when it replaces its table.
-- Returns: per emptied table, its rows before, its rows now, and the run that rebuilt it.

with rows_now as (
    select 'customer_trusted' as table_name, count(*) as row_count from customer_trusted
    union all
    select 'accelerometer_trusted' as table_name, count(*) as row_count from accelerometer_trusted
    union all
    select 'customer_curated' as table_name, count(*) as row_count from customer_curated
    union all
    select 'step_trainer_trusted' as table_name, count(*) as row_count from step_trainer_trusted
    union all
    select 'machine_learning_curated' as table_name, count(*) as row_count from machine_learning_curated
)

select
    b.table_name,
    b.rows_before,
    n.row_count as rows_now,
    b.run_id
from table_builds as b
inner join rows_now as n
    on n.table_name = b.table_name
where b.rows_before > 0
    and n.row_count = 0
    and coalesce(b.empty_inputs, '') = ''
order by b.table_name
