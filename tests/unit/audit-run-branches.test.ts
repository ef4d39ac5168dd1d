import { DuckDBInstance } from '@duckdb/node-api';
import { auditRunBranchesSql, checkTemplate } from '../../src/checks/audit';
import { checkSqlFor, checksFor, loadChecks } from '../../src/checks/definitions';
import { rewriteAsOf } from '../../src/aws/iceberg-history';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { withParameters } from '../../src/stand-ins/athena/local-athena';
import { sqlIdentifier } from '../../src/sql/quote';
import { plainRows } from '../../src/lake/rows';
import { TrinoParser, loadTrinoParser } from '../helpers/sql-parsers';

// Write, audit, publish on AWS (docs/iceberg.md): one Athena query turns each check into SQL that reads every
// derived table at the head of the run's branch, else of main, from the tables' $refs (Iceberg's refs table:
// name, type, snapshot_id). Athena time-travels by snapshot id (Athena guide, "Perform time travel and version
// travel queries"). The query runs here on DuckDB, as the local Athena runs it, over $refs views holding rows.

const DATABASE = 'stedi_lakehouse_dev';
const BRANCH = 'run_exec-1';

/** Runs the audit query over refs views with these rows: [table, branch name, snapshot id]. */
async function audit(refs: [string, string, string][]): Promise<Record<string, string>> {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    for (const table of DERIVED_TABLES) {
      const rows = refs
        .filter(([t]) => t === table)
        .map(([, name, id]) => `('${name}', 'BRANCH', ${id}::bigint)`)
        .concat(["('v1', 'TAG', 1::bigint)"]); // a tag is not a branch
      await connection.run(
        `create view ${sqlIdentifier(`${table}$refs`)} as select * from (values ${rows.join(', ')}) as r(name, type, snapshot_id)`,
      );
    }
    const sql = withParameters(checkSqlFor({ sql: auditRunBranchesSql(loadChecks()), file: 'audit' }, DATABASE), [
      `'${BRANCH}'`,
    ]);
    const rows = plainRows(await connection.runAndReadAll(sql));
    expect(rows).toHaveLength(1);
    return rows[0] as Record<string, string>;
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

let trino: TrinoParser;
beforeAll(() => {
  trino = loadTrinoParser();
});

describe("the audit query: every check's SQL on the run's Iceberg branches", () => {
  it("reads each table at its run-branch head, else main's, else as it is (no snapshot), ignoring other runs' branches", async () => {
    const heads = new Map<string, string>([
      ['customer_trusted', '9000000000000000001'], // beyond 2^53: must survive as text
      ['customer_curated', '7269112233445566771'],
      ['step_trainer_trusted', '9000000000000000002'],
    ]);
    const row = await audit([
      ['customer_trusted', 'main', '8744736658442914487'],
      ['customer_trusted', BRANCH, '9000000000000000001'],
      ['customer_trusted', 'run_exec-0', '8000000000000000009'], // a failed run's branch
      ['customer_curated', 'main', '7269112233445566771'],
      ['step_trainer_trusted', BRANCH, '9000000000000000002'],
    ]);
    const checks = checksFor(DATABASE);
    expect(Object.keys(row)).toEqual(checks.map((c) => c.name));
    for (const check of checks) {
      const expected = rewriteAsOf(check.sql, heads, BRANCH);
      expect(row[check.name]).toBe(expected);
      expect(trino.validate(row[check.name]!)).toEqual([]);
    }
    const consented = row.customer_trusted_consented!;
    expect(consented).toContain('customer_trusted FOR VERSION AS OF 9000000000000000001');
    expect(consented).not.toContain('8744736658442914487');
    expect(row.tables_not_emptied).toMatch(/from accelerometer_trusted\n/); // no snapshot: read as it is
  });

  it('gives each check its SQL unchanged when no table has a branch (the local lake, a new stack)', async () => {
    const row = await audit([]);
    for (const check of checksFor(DATABASE)) expect(row[check.name]).toBe(check.sql);
  });

  it('parses with the Trino grammar, with one parameter, and holds no definition substitution but the database', () => {
    const sql = auditRunBranchesSql(loadChecks());
    expect(trino.validate(sql.replace('?', "'run_1'"))).toEqual([]);
    expect(sql.split('?')).toHaveLength(2);
    expect(sql.replace(/\$\{GlueDatabaseName\}/g, '')).not.toContain('${');
    // Athena takes a query of at most 262,144 bytes (StartQueryExecution's QueryString).
    expect(Buffer.byteLength(sql)).toBeLessThan(262_144);
  });

  it("marks each reference to a derived table in a check's template, and nothing else", () => {
    expect(checkTemplate("select c.email from customer_trusted c where c.source = 'customer_trusted'")).toBe(
      "select c.email from customer_trusted FOR VERSION AS OF {customer_trusted} c where c.source = 'customer_trusted'",
    );
    expect(() => auditRunBranchesSql([])).toThrow('no data check');
  });
});
