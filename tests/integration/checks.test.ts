import { expect } from '@jest/globals';
import { cpSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LOCAL_DATABASE, checksFor, loadChecks, loadSavedQueries } from '../../src/checks/definitions';
import { CheckResult, runLakeChecks } from '../../src/checks/run';
import { LakeCheckSession } from '../../src/checks/lake-session';
import { generate } from '../../src/sample/generate';
import { DERIVED_TABLES, landingPrefix } from '../../src/definition/layout';
import { Lake } from '../../src/lake/lake';
import { ConsentPolicy, JOB_NAMES } from '../../src/definition/pipeline';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { LocalEngine } from '../../src/build/engine';
import { params, query, removeDir, runPipeline, tempDir } from '../helpers/lake';
import { rewriteTable } from '../helpers/tamper';

// The data checks of glue/checks/ on DuckDB over a lake: they pass on sample data under both consent
// policies, and each fails on a lake where its rule was broken on purpose (and only it, where the
// break touches one rule).

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const CHECKS = loadChecks().map((c) => c.name);

const failing = (results: CheckResult[]) => results.filter((r) => r.status !== 'pass').map((r) => r.name);
const resultOf = (results: CheckResult[], name: string) => results.find((r) => r.name === name)!;

describe('the data checks on a local lake', () => {
  let dir: string;
  const built: Partial<Record<ConsentPolicy, string>> = {};

  beforeAll(async () => {
    dir = tempDir('checks');
    for (const policy of ['any', 'since-consent'] as const) {
      const root = path.join(dir, `built-${policy}`);
      await generate(root, 'lake', { customers: 60, seed: 7, badLineRate: 0 });
      await runPipeline(new Lake(root), policy, `build-${policy}`);
      built[policy] = root;
    }
  }, 120_000);
  afterAll(() => removeDir(dir));

  /** A copy of a built lake, to break. */
  function copyOf(policy: ConsentPolicy, name: string): Lake {
    const target = path.join(dir, name);
    cpSync(built[policy]!, target, { recursive: true, verbatimSymlinks: true }); // the lake links relatively
    return new Lake(target);
  }

  it.each(['any', 'since-consent'] as const)('pass on sample data built with consent policy %s', async (policy) => {
    const results = await runLakeChecks(new Lake(built[policy]!));
    expect(results.map((r) => r.name)).toEqual(CHECKS);
    expect(results.map((r) => [r.name, r.status, r.error])).toEqual(CHECKS.map((c) => [c, 'pass', undefined]));
  });

  it.each(['any', 'since-consent'] as const)(
    'trusted_readings_consented fails under %s on trusted readings of someone who never consented',
    async (policy) => {
      // The finding: rows of non-consenting users added to a trusted folder passed every check under `any`.
      const lake = copyOf(policy, `stranger-readings-${policy}`);
      await rewriteTable(
        lake,
        'accelerometer_trusted',
        `select * from t union all (select * replace ('stranger@example.com' as "user") from t order by all limit 3)`,
      );
      await rewriteTable(
        lake,
        'step_trainer_trusted',
        `select * from t union all (select * replace ('no-such-serial' as serialNumber) from t order by all limit 2)`,
      );
      const results = await runLakeChecks(lake);
      // Under since-consent a reading of no consenting customer also has no consent before it.
      expect(failing(results)).toEqual(
        policy === 'any'
          ? ['trusted_readings_consented']
          : ['trusted_readings_consented', 'trusted_readings_since_consent'],
      );
      const rows = resultOf(results, 'trusted_readings_consented').rows;
      expect(rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(['accelerometer_trusted', 'step_trainer_trusted']),
      );
      const total = (table: string) =>
        rows.filter((r) => r.table_name === table).reduce((n, r) => n + Number(r.readings), 0);
      expect([total('accelerometer_trusted'), total('step_trainer_trusted')]).toEqual([3, 2]);
      expect(JSON.stringify(rows)).not.toContain('stranger@example.com');
    },
  );

  it.each(['any', 'since-consent'] as const)(
    'curated_customers_trusted_with_readings fails under %s on a curated customer with no trusted reading',
    async (policy) => {
      const lake = copyOf(policy, `curated-no-readings-${policy}`);
      const [customer] = await query(
        lake,
        `select t.email, t.registrationDate from customer_trusted as t
         where exists (select 1 from customer_curated as c where c.serialNumber = t.serialNumber)
         order by t.email limit 1`,
      );
      const email = String(required(customer, 'a curated customer').email);
      await rewriteTable(lake, 'accelerometer_trusted', `select * from t where "user" <> '${email}'`);
      const results = await runLakeChecks(lake);
      expect(failing(results)).toEqual(['curated_customers_trusted_with_readings']);
      expect(resultOf(results, 'curated_customers_trusted_with_readings').rows).toEqual([
        {
          curated_rows: 1,
          first_registration_date: customer?.registrationDate,
          last_registration_date: customer?.registrationDate,
        },
      ]);
    },
  );

  it('curated_no_pii_columns fails when a curated table gets an e-mail column', async () => {
    const lake = copyOf('any', 'pii-column');
    await rewriteTable(lake, 'customer_curated', `select *, 'someone@example.com' as email from t`);
    const results = await runLakeChecks(lake);
    expect(failing(results)).toEqual(['curated_no_pii_columns']);
    expect(resultOf(results, 'curated_no_pii_columns').rows).toEqual([
      { table_name: 'customer_curated', column_name: 'email', data_type: 'VARCHAR', problem: 'pii column' },
    ]);
  });

  it('curated_no_pii_columns fails when a curated table is missing: information_schema has no rows for it, which is no proof of no PII', async () => {
    const lake = new Lake(path.join(dir, 'no-ml-table'));
    await generate(lake.root, 'lake', { customers: 20, seed: 3, badLineRate: 0 });
    const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
    try {
      for (const job of JOB_NAMES.filter((j) => j !== 'machine_learning_curated')) await engine.runJob(job, params());
    } finally {
      engine.close();
    }
    const result = resultOf(await runLakeChecks(lake), 'curated_no_pii_columns');
    expect(result.status).toBe('fail');
    expect(result.rows).toEqual([
      { table_name: 'machine_learning_curated', column_name: null, data_type: null, problem: 'table missing' },
    ]);
  });

  it('curated_no_pii_columns fails on a name or phone column of machine_learning_curated', async () => {
    const lake = copyOf('any', 'pii-columns-ml');
    await rewriteTable(lake, 'machine_learning_curated', `select 'Ann' as customerName, '555' as phone, * from t`);
    const result = resultOf(await runLakeChecks(lake), 'curated_no_pii_columns');
    expect(result.rows.map((r) => r.column_name)).toEqual(['customerName', 'phone']);
  });

  it('curated_no_email_values fails when an e-mail address is written into a curated column, and names no value', async () => {
    const lake = copyOf('any', 'email-value');
    await rewriteTable(
      lake,
      'customer_curated',
      `select * replace (case when row_number() over () <= 2 then 'someone@example.com' else serialNumber end as serialNumber) from t`,
    );
    const results = await runLakeChecks(lake);
    // Those rows' serial numbers are no trusted customer's any more, which the other check sees too.
    expect(failing(results)).toEqual(['curated_customers_trusted_with_readings', 'curated_no_email_values']);
    expect(resultOf(results, 'curated_no_email_values').rows).toEqual([
      { table_name: 'customer_curated', column_name: 'serialNumber', values_like_email: 2 },
    ]);
    expect(JSON.stringify(results)).not.toContain('someone@example.com');
  });

  it('curated_no_email_values covers every string column the jobs write to the curated tables', async () => {
    const sql = readFileSync(path.join(projectRoot(), 'glue', 'checks', 'curated_no_email_values.sql'), 'utf8');
    const catalog = await new Lake(built.any!).readCatalog();
    for (const table of ['customer_curated', 'machine_learning_curated'] as const) {
      const strings = catalog.tables[table]!.columns.filter((c) => c.type === 'string').map((c) => c.name);
      expect(strings.length).toBeGreaterThan(0);
      for (const column of strings) expect(sql).toContain(`'${table}' as table_name, '${column}' as column_name`);
    }
  });

  it('customer_trusted_consented fails on a trusted customer without consent', async () => {
    const lake = copyOf('any', 'no-consent');
    await rewriteTable(
      lake,
      'customer_trusted',
      `select * replace (case when serialNumber = (select min(serialNumber) from t) then null else shareWithResearchAsOfDate end as shareWithResearchAsOfDate) from t`,
    );
    const results = await runLakeChecks(lake);
    expect(failing(results)).toEqual(['customer_trusted_consented']);
    const rows = resultOf(results, 'customer_trusted_consented').rows;
    expect(rows.length).toBeGreaterThan(0);
    expect(Object.keys(rows[0] ?? {})).toEqual(['serialNumber', 'registrationDate', 'lastUpdateDate']); // no PII
  });

  it('customer_curated_unique_customer_id fails on a repeated customerId', async () => {
    const lake = copyOf('any', 'duplicate-id');
    await rewriteTable(
      lake,
      'customer_curated',
      `select * from t union all (select * from t order by customerId limit 1)`,
    );
    const results = await runLakeChecks(lake);
    expect(failing(results)).toEqual(['customer_curated_unique_customer_id']);
    expect(resultOf(results, 'customer_curated_unique_customer_id').rows).toEqual([
      { customerId: expect.stringMatching(/^[0-9a-f]{64}$/), row_count: 2 },
    ]);
  });

  it('machine_learning_customers_curated fails on ML rows of a customer not in customer_curated', async () => {
    const lake = copyOf('any', 'orphan-ml');
    await rewriteTable(
      lake,
      'machine_learning_curated',
      `select * replace (case when reading_date = (select min(reading_date) from t) then 'not-a-customer' else customerId end as customerId) from t`,
    );
    const results = await runLakeChecks(lake);
    expect(failing(results)).toEqual(['machine_learning_customers_curated']);
    expect(resultOf(results, 'machine_learning_customers_curated').rows).toEqual([
      {
        customerId: 'not-a-customer',
        row_count: expect.any(Number),
        first_reading_date: expect.any(String),
        last_reading_date: expect.any(String),
      },
    ]);
  });

  it('trusted_readings_since_consent fails under since-consent on readings before their consent window, and not under any', async () => {
    // Consent, and the window customer_trusted computes from it, in 2255: every reading is before it.
    const late = `select * replace (9000000000000 as shareWithResearchAsOfDate, 9000000000000 as readingsSharedFrom) from t`;
    const strict = copyOf('since-consent', 'before-consent');
    await rewriteTable(strict, 'customer_trusted', late);
    const results = await runLakeChecks(strict);
    expect(failing(results)).toEqual(['trusted_readings_since_consent']);
    const rows = resultOf(results, 'trusted_readings_since_consent').rows;
    expect(new Set(rows.map((r) => r.table_name))).toEqual(new Set(['accelerometer_trusted', 'step_trainer_trusted']));
    expect(Object.keys(rows[0] ?? {})).toEqual(['table_name', 'reading_date', 'readings']); // no e-mail

    const any = copyOf('any', 'before-consent-any');
    await rewriteTable(any, 'customer_trusted', late);
    expect(failing(await runLakeChecks(any))).toEqual([]);
  });

  it('trusted_readings_since_consent fails under since-consent when a consent window does not start at the consent date', async () => {
    const early = `select * replace (case when serialNumber = (select min(serialNumber) from t) then 0 else readingsSharedFrom end as readingsSharedFrom) from t`;
    const strict = copyOf('since-consent', 'window-not-at-consent');
    await rewriteTable(strict, 'customer_trusted', early);
    const results = await runLakeChecks(strict);
    expect(failing(results)).toEqual(['trusted_readings_since_consent']);
    expect(resultOf(results, 'trusted_readings_since_consent').rows).toEqual([
      { table_name: 'customer_trusted', reading_date: null, readings: expect.any(Number) },
    ]);

    const any = copyOf('any', 'window-not-at-consent-any'); // under any the window is every reading
    await rewriteTable(any, 'customer_trusted', early);
    expect(failing(await runLakeChecks(any))).toEqual([]);
  });

  it('tables_not_emptied fails when a run empties a table whose inputs all held rows, and passes on the next run', async () => {
    const lake = copyOf('any', 'emptied');
    // Every step-trainer reading now names a device no customer has: the join matches nothing.
    const folder = lake.path(landingPrefix('step_trainer'));
    for (const file of readdirSync(folder)) {
      const text = readFileSync(path.join(folder, file), 'utf8');
      writeFileSync(
        path.join(folder, file),
        text.replace(/"serialNumber":"[^"]*"/g, '"serialNumber":"no-such-device"'),
      );
    }
    await runPipeline(lake, 'any', 'emptying-run');
    const results = await runLakeChecks(lake);
    expect(failing(results)).toEqual(['tables_not_emptied']);
    // machine_learning_curated is empty too, but because its input step_trainer_trusted is: one cause, named once.
    expect(resultOf(results, 'tables_not_emptied').rows).toEqual([
      { table_name: 'step_trainer_trusted', rows_before: expect.any(Number), rows_now: 0, run_id: 'emptying-run' },
    ]);
    // "Before" is before the table's last rebuild: the next run, empty before and after, passes.
    await runPipeline(lake, 'any', 'next-run');
    expect(failing(await runLakeChecks(lake))).toEqual([]);
  });

  it('tables_not_emptied passes when a landing folder is emptied on purpose: a lake with no data of that kind', async () => {
    const lake = copyOf('any', 'emptied-on-purpose');
    const folder = lake.path(landingPrefix('step_trainer'));
    for (const file of readdirSync(folder)) rmSync(path.join(folder, file));
    await runPipeline(lake, 'any', 'emptying-run');
    const { tables } = await lake.readCatalog();
    expect([tables.step_trainer_trusted?.rows, tables.machine_learning_curated?.rows]).toEqual([0, 0]);
    expect(tables.step_trainer_trusted?.build?.emptyInputs).toEqual(['step_trainer_landing']);
    expect(failing(await runLakeChecks(lake))).toEqual([]);
  });

  it("curated_no_pii_columns looks only at the lake's own database, named literally (Athena guide, \"List all columns for all tables\": table_schema = 'database_name'): a PII column elsewhere in the catalog is not its business", async () => {
    const session = await LakeCheckSession.open(new Lake(built.any!));
    try {
      await session.query('create schema other_team');
      await session.query('create table other_team.customer_curated (email varchar, phone varchar)');
      const sql = checksFor(LOCAL_DATABASE).find((c) => c.name === 'curated_no_pii_columns')!.sql;
      expect(sql).toContain(`table_schema = '${LOCAL_DATABASE}'`);
      expect((await session.query(sql)).rows).toEqual([]);
      // The same check pointed at the other database sees that table's columns: the filter is what decides.
      const elsewhere = checksFor('other_team').find((c) => c.name === 'curated_no_pii_columns')!.sql;
      expect((await session.query(elsewhere)).rows.map((r) => [r.table_name, r.column_name, r.problem])).toEqual([
        ['customer_curated', 'email', 'pii column'],
        ['customer_curated', 'phone', 'pii column'],
        ['machine_learning_curated', null, 'table missing'],
      ]);
    } finally {
      session.close();
    }
  });

  it('the build log records each table build: run, rows before and after, consent policy', async () => {
    const lake = new Lake(built['since-consent']!);
    const catalog = await lake.readCatalog();
    const session = await LakeCheckSession.open(lake);
    try {
      const { rows } = await session.query('select * from table_builds order by table_name');
      expect(rows).toEqual(
        [...DERIVED_TABLES].sort().map((table) => ({
          table_name: table,
          run_id: 'build-since-consent',
          rows_before: null,
          rows_after: catalog.tables[table]!.rows,
          consent_policy: 'since-consent',
          built_at: catalog.tables[table]!.updatedAt,
          empty_inputs: '',
        })),
      );
    } finally {
      session.close();
    }
  });

  it('a check that reads a table not built yet is an error, not a pass', async () => {
    const lake = new Lake(path.join(dir, 'landing-only'));
    await generate(lake.root, 'lake', { customers: 5, seed: 1, badLineRate: 0 });
    const results = await runLakeChecks(lake);
    expect(results.filter((r) => r.status === 'pass').map((r) => r.name)).toEqual([]);
    expect(resultOf(results, 'curated_no_pii_columns').rows.map((r) => [r.table_name, r.problem])).toEqual([
      ['customer_curated', 'table missing'],
      ['machine_learning_curated', 'table missing'],
    ]);
    expect(resultOf(results, 'tables_not_emptied')).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/not built .* yet: customer_trusted, accelerometer_trusted/),
    });
  });

  it('row_counts_by_zone gives the catalog counts of every table, by zone', async () => {
    const lake = new Lake(built.any!);
    const catalog = await lake.readCatalog();
    const counts = required(
      loadSavedQueries().find((q) => q.name === 'row_counts_by_zone'),
      'the saved query row_counts_by_zone',
    );
    const rows = await query(lake, counts.sql);
    expect(rows.map((r) => r.zone)).toEqual([
      'landing',
      'landing',
      'landing',
      'trusted',
      'trusted',
      'trusted',
      'curated',
      'curated',
    ]);
    for (const r of rows) expect(r.row_count).toBe(catalog.tables[r.table_name as 'customer_curated']!.rows);
  });

  it('stedi check prints pass or fail per check and exits 1 when one fails', async () => {
    const stedi = (lake: string, ...args: string[]) =>
      spawnSync(process.execPath, [BIN, 'check', '--lake', lake, ...args], { encoding: 'utf8' });
    const good = stedi(built.any!);
    expect(good.status).toBe(0);
    for (const check of CHECKS) expect(good.stdout).toMatch(new RegExp(`^${check}\\s+pass\\s+0\\s`, 'm'));
    expect(good.stdout).toMatch(new RegExp(`all ${CHECKS.length} checks passed`));

    const lake = copyOf('any', 'cli-broken');
    await rewriteTable(lake, 'customer_curated', `select * from t union all (select * from t limit 1)`);
    const bad = stedi(lake.root);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^customer_curated_unique_customer_id\s+FAIL\s+1\s/m);
    expect(bad.stdout).toMatch(/customer_curated_unique_customer_id: customerId identifies/);
    expect(bad.stdout).toMatch(new RegExp(`1 of ${CHECKS.length} checks failed`));
    const json = JSON.parse(stedi(lake.root, '--json').stdout) as CheckResult[];
    expect(json.find((r) => r.name === 'customer_curated_unique_customer_id')).toMatchObject({
      status: 'fail',
      violations: 1,
      columns: ['customerId', 'row_count'],
    });

    const both = spawnSync(process.execPath, [BIN, 'check', '--lake', lake.root, '--stage', 'dev'], {
      encoding: 'utf8',
    });
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--lake DIR or --stage NAME, not both/);
    const missing = stedi(path.join(dir, 'nowhere'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no such folder/);
  });

  it.each(['check', 'tables', 'quarantine'])('prints help for %s, naming --lake and --stage', (command) => {
    const help = spawnSync(process.execPath, [BIN, command, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`Usage: stedi ${command}`));
    expect(help.stdout).toMatch(/--lake/);
    expect(help.stdout).toMatch(/--stage/);
  });

  it('stedi tables and stedi quarantine list a local lake: catalog tables, the quarantine and the build log', async () => {
    const lake = copyOf('any', 'listing');
    const quarantine = lake.path('customer/quarantine/rejected.json');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(path.dirname(quarantine), { recursive: true });
    writeFileSync(
      quarantine,
      `${JSON.stringify({ source_file: 'customer/landing/c.json', line_number: 3, reason: 'not valid JSON', line: '{oops' })}\n`,
    );
    const listed = spawnSync(process.execPath, [BIN, 'tables', '--lake', lake.root, '--json'], { encoding: 'utf8' });
    expect(listed.status).toBe(0);
    const tables = JSON.parse(listed.stdout) as { name: string; rows: number; location: string; runId?: string }[];
    const catalog = await lake.readCatalog();
    for (const [name, entry] of Object.entries(catalog.tables))
      expect(tables.find((t) => t.name === name)).toMatchObject({ rows: entry?.rows, runId: entry?.runId });
    expect(tables.find((t) => t.name === 'customer_quarantine')).toMatchObject({ rows: 1 });
    expect(tables.find((t) => t.name === 'table_builds')).toMatchObject({ rows: 5 });

    const shown = spawnSync(process.execPath, [BIN, 'quarantine', '--lake', lake.root], { encoding: 'utf8' });
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/customer\s+customer\/landing\/c\.json\s+3\s+not valid JSON\s+\{oops/);
    expect(shown.stdout).toMatch(/\(1 rejected line\)/);
  });

  it('stedi tables lists a table whose folder is missing as unreadable, with the reason, never with a count', async () => {
    const lake = copyOf('any', 'missing-folders');
    const before = await lake.readCatalog();
    for (const key of ['customer/curated', 'accelerometer/quarantine'])
      rmSync(realpathSync(lake.path(key)), { recursive: true });
    rmSync(lake.path('step_trainer/landing'), { recursive: true });
    const listed = spawnSync(process.execPath, [BIN, 'tables', '--lake', lake.root, '--json'], { encoding: 'utf8' });
    expect(listed.status).toBe(0);
    const tables = JSON.parse(listed.stdout) as { name: string; rows: number | null; unreadable?: string }[];
    const row = (name: string) => tables.find((t) => t.name === name);
    expect(row('customer_curated')).toMatchObject({
      rows: null,
      unreadable: 'its data folder for customer/curated/ is missing',
    });
    expect(row('accelerometer_quarantine')).toMatchObject({
      rows: null,
      unreadable: 'its data folder for accelerometer/quarantine/ is missing',
    });
    expect(row('step_trainer_landing')).toMatchObject({
      rows: null,
      unreadable: `its landing folder ${lake.path('step_trainer/landing/')} is missing (the last run counted ${before.tables.step_trainer_landing?.rows} rows)`,
    });
    // The others read as before.
    expect(row('customer_trusted')).toMatchObject({ rows: before.tables.customer_trusted?.rows });
    expect(row('customer_trusted')?.unreadable).toBeUndefined();
    expect(row('customer_quarantine')).toMatchObject({ rows: 0 });

    const text = spawnSync(process.execPath, [BIN, 'tables', '--lake', lake.root], { encoding: 'utf8' });
    expect(text.stdout).toMatch(
      /customer_curated {2}\(parquet\)\n.*\n {2}rows {12}unreadable: its data folder for customer\/curated\/ is missing\n/,
    );
  });

  it('a run rebuilds a table whose folder is missing, as the error naming it advises, even when its inputs are unchanged', async () => {
    const lake = copyOf('any', 'lost-table');
    const before = await lake.readCatalog();
    rmSync(realpathSync(lake.path('customer/curated')), { recursive: true });
    const engine = await LocalEngine.open(lake, { memoryLimit: '256MB' });
    try {
      const rebuilt = await engine.runJob('customer_trusted_to_curated', params('any', 'after-loss'));
      expect(rebuilt.skipped).toBeUndefined();
      expect(rebuilt.rowsOut).toBe(before.tables.customer_curated?.rows);
      const next = await engine.runJob('step_trainer_landing_to_trusted', params('any', 'after-loss'));
      expect(next.rowsOut).toBe(before.tables.step_trainer_trusted?.rows);
    } finally {
      engine.close();
    }
    expect(await query(lake, 'select count(*) as n from customer_curated')).toEqual([
      { n: before.tables.customer_curated?.rows },
    ]);
  });
});
