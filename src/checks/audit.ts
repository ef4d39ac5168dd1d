import { DERIVED_TABLES } from '../definition/layout';
import { rewriteAsOf } from '../aws/iceberg-history';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { CheckDefinition, LOCAL_DATABASE, checkSqlFor, loadChecks } from './definitions';

/**
 * Write, audit, publish (docs/iceberg.md): the jobs write each table on the run's Iceberg branch, and the data
 * checks must read those branches before main moves to them. Athena time-travels by snapshot id alone
 * (`FOR VERSION AS OF <id>`: "Perform time travel and version travel queries"), and a state machine cannot
 * rewrite SQL, so one query does it: it reads each derived table's branch heads from its `$refs` metadata
 * table (Iceberg's refs table: name, type, snapshot_id) and returns every check's SQL with
 * `FOR VERSION AS OF <id>` after each reference to a derived table: the head of the run's branch when the run
 * wrote the table, else main's (a table the run did not write is read as published), else nothing (a table
 * with no snapshot yet reads as empty). Its one parameter, `?`, is the branch, given as Athena's
 * ExecutionParameters. One row; one column a check, named after it, in the order of `checks`.
 *
 * Each check is carried as a template: its SQL as rewriteAsOf writes it for a snapshot id, with a marker in
 * place of the id; the query replaces each marker's whole clause with the table's clause. The same check
 * SQL thus reads the same tables whether Athena, DuckDB or rewriteAsOf (`stedi query --as-of`) rewrites it.
 */
export function auditRunBranchesSql(checks: readonly Pick<CheckDefinition, 'name' | 'sql'>[]): string {
  if (checks.length === 0) throw new Error('no data check to audit the run with');
  const refs = DERIVED_TABLES.map(
    (table) => `    select ${sqlString(table)} as table_name, r.name, r.snapshot_id
    from ${sqlIdentifier(`${table}$refs`)} as r
    where r.type = 'BRANCH'`,
  ).join('\n    union all\n');
  const heads = DERIVED_TABLES.map(
    (table) => `        coalesce(
            max(case when refs.table_name = ${sqlString(table)} and refs.name = run.branch then refs.snapshot_id end),
            max(case when refs.table_name = ${sqlString(table)} and refs.name = 'main' then refs.snapshot_id end)
        ) as ${sqlIdentifier(table)}`,
  ).join(',\n');
  const columns = checks.map((check) => {
    let expression = sqlString(checkTemplate(check.sql));
    for (const table of DERIVED_TABLES) {
      const clause = `coalesce(' FOR VERSION AS OF ' || cast(heads.${sqlIdentifier(table)} as varchar), '')`;
      expression = `replace(${expression}, ${sqlString(asOfMarker(table))}, ${clause})`;
    }
    return `    ${expression} as ${sqlIdentifier(check.name)}`;
  });
  return `-- audit_run_branches: every data check's SQL reading each derived table at the head of the run's branch
-- (the parameter), else of main. Generated from glue/checks/ by src/checks/audit.ts (docs/iceberg.md).
with run as (
    select cast(? as varchar) as branch
),

refs as (
${refs}
),

heads as (
    select
${heads}
    from refs
    cross join run
)

select
${columns.join(',\n')}
from heads
`;
}

/** What stands for a table's snapshot clause in a check's template. */
function asOfMarker(table: string): string {
  return ` FOR VERSION AS OF {${table}}`;
}

/** A check's SQL with a marker after each reference to a derived table (see auditRunBranchesSql). */
export function checkTemplate(sql: string): string {
  const markers = new Map<string, string>(DERIVED_TABLES.map((table) => [table, `{${table}}`]));
  return rewriteAsOf(sql, markers, 'the audit');
}

/** The ASL definition substitution that carries the audit query (statemachines/pipeline.asl.json). */
export const AUDIT_SQL_SUBSTITUTION = 'AuditRunBranchesSql';

/** The audit query of glue/checks/ for a database (locally LOCAL_DATABASE), as `stedi run` substitutes it. */
export function auditRunBranchesSqlFor(database = LOCAL_DATABASE): string {
  return checkSqlFor({ sql: auditRunBranchesSql(loadChecks()), file: 'the audit query' }, database);
}
