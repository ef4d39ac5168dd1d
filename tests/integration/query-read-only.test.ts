import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { Lake } from '../../src/lake/lake';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { TEST_SALT, removeDir, runPipeline, tempDir } from '../helpers/lake';

// `stedi query` reads the lake's catalog tables and quarantine views, nothing else, as Athena's SELECT.
const BIN = path.join(projectRoot(), 'bin', 'stedi.js');

function stedi(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, STEDI_PII_SALT: TEST_SALT },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('stedi query is read-only', () => {
  let dir: string;
  let lake: Lake;
  let outside: string;
  const listing = () => JSON.stringify(readdirSync(dir, { recursive: true }).sort());

  beforeAll(async () => {
    dir = tempDir('read-only');
    outside = tempDir('read-only-outside');
    lake = new Lake(dir);
    await generate(dir, 'lake', { customers: 10, seed: 3, badLineRate: 0.05 });
    await runPipeline(lake);
    writeFileSync(path.join(outside, 'secret.txt'), 'not lake data\n');
  }, 30_000);
  afterAll(() => {
    removeDir(dir);
    removeDir(outside);
  });

  it('still answers SELECTs over every table and quarantine view, and DESCRIBE, SHOW, SUMMARIZE', () => {
    const run = stedi([
      'query',
      '--lake',
      dir,
      '--json',
      `select (select count(*) from customer_landing) as landing, (select count(*) from machine_learning_curated) as ml,
              (select count(*) from accelerometer_quarantine) as rejected`,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [first] = JSON.parse(run.stdout) as { landing: number; ml: number; rejected: number }[];
    const row = required(first, 'the result row');
    expect(row.landing).toBe(10);
    expect(row.ml).toBeGreaterThan(0);
    expect(row.rejected).toBeGreaterThan(0);
    for (const sql of ['describe customer_curated', 'show tables', 'summarize customer_trusted'])
      expect([sql, stedi(['query', '--lake', dir, sql]).code]).toEqual([sql, 0]);
  });

  it('locks DuckDB down: no file access but the tables, configuration locked, no extension installed or loaded', () => {
    const run = stedi([
      'query',
      '--lake',
      dir,
      '--json',
      `select current_setting('enable_external_access') as external, current_setting('lock_configuration') as locked,
              current_setting('autoinstall_known_extensions') as autoinstall, current_setting('autoload_known_extensions') as autoload`,
    ]);
    expect(JSON.parse(run.stdout)).toEqual([{ external: false, locked: true, autoinstall: false, autoload: false }]);
  });

  const trusted = () => realpathSync(path.join(dir, 'customer', 'trusted'));
  const attempts: [string, () => string, () => boolean][] = [
    [
      'COPY customer PII to a file elsewhere',
      () => `copy (select * from customer_trusted) to '${outside}/pii.csv'`,
      () => existsSync(path.join(outside, 'pii.csv')),
    ],
    [
      'write Parquet into a table folder',
      () => `copy (select * from customer_trusted) to '${trusted()}/part-9.parquet' (format parquet)`,
      () => existsSync(path.join(trusted(), 'part-9.parquet')),
    ],
    ['EXPORT DATABASE', () => `export database '${outside}/export'`, () => existsSync(path.join(outside, 'export'))],
    [
      'ATTACH a database file',
      () => `attach '${outside}/other.duckdb' as other`,
      () => existsSync(path.join(outside, 'other.duckdb')),
    ],
    ['read another file of the machine', () => `select * from read_text('/etc/passwd')`, () => false],
    ['read a file beside the lake', () => `select * from read_text('${outside}/secret.txt')`, () => false],
    ['read a lake file that is no table', () => `select * from read_text('${dir}/_catalog.json')`, () => false],
    ['read a CSV', () => `select * from read_csv('${outside}/secret.txt')`, () => false],
    ['list files', () => `select * from glob('${outside}/*')`, () => false],
    ['INSTALL an extension', () => 'install httpfs', () => false],
    ['LOAD an extension', () => 'load httpfs', () => false],
    ['SET to undo the lock', () => 'set enable_external_access = true', () => false],
    ['RESET the lock', () => 'reset lock_configuration', () => false],
    ['PRAGMA writing a profile', () => `pragma profiling_output = '${outside}/profile.json'`, () => false],
    ['CREATE TABLE', () => 'create table copy_of_pii as select * from customer_trusted', () => false],
    ['CREATE VIEW over a file', () => `create view v as select * from read_text('/etc/passwd')`, () => false],
    ['INSERT', () => 'insert into customer_trusted select * from customer_trusted', () => false],
    ['DROP a view', () => 'drop view customer_trusted', () => false],
    [
      'a write inside query()',
      () => `select * from query('copy (select 1) to ''${outside}/q.csv''')`,
      () => existsSync(path.join(outside, 'q.csv')),
    ],
  ];

  it.each(attempts)('refuses to %s', (_, sql, wrote) => {
    const before = listing();
    const run = stedi(['query', '--lake', dir, sql()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^stedi: /);
    expect(run.stdout).toBe('');
    expect(wrote()).toBe(false);
    expect(listing()).toBe(before);
  });

  it('refuses a write hidden after a SELECT: one statement per query, as Athena', () => {
    const before = listing();
    const run = stedi(['query', '--lake', dir, `select 1; copy (select 1) to '${outside}/after.csv'`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^stedi: the query holds 2 statements/);
    expect(run.stdout).toBe('');
    expect(existsSync(path.join(outside, 'after.csv'))).toBe(false);
    expect(listing()).toBe(before);
  });
});
