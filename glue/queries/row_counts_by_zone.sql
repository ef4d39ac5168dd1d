-- row_counts_by_zone: the row count of every table, zone by zone, as the STEDI project checks each zone with Athena.
-- The landing counts differ between the engines when lines were quarantined: locally they are the
-- valid records; on Athena every non-blank line, the rejected ones included (the landing tables' JSON
-- SerDe reads a malformed line as a row of nulls).

select
    t.zone,
    t.table_name,
    t.row_count
from (
    select 'landing' as zone, 'customer_landing' as table_name, count(*) as row_count from customer_landing
    union all
    select 'landing' as zone, 'accelerometer_landing' as table_name, count(*) as row_count from accelerometer_landing
    union all
    select 'landing' as zone, 'step_trainer_landing' as table_name, count(*) as row_count from step_trainer_landing
    union all
    select 'trusted' as zone, 'customer_trusted' as table_name, count(*) as row_count from customer_trusted
    union all
    select 'trusted' as zone, 'accelerometer_trusted' as table_name, count(*) as row_count from accelerometer_trusted
    union all
    select 'trusted' as zone, 'step_trainer_trusted' as table_name, count(*) as row_count from step_trainer_trusted
    union all
    select 'curated' as zone, 'customer_curated' as table_name, count(*) as row_count from customer_curated
    union all
    select 'curated' as zone, 'machine_learning_curated' as table_name, count(*) as row_count from machine_learning_curated
) as t
order by
    case t.zone when 'landing' then 1 when 'trusted' then 2 else 3 end,
    t.table_name
