import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HistoryRow } from '../../src/cli/actions/history-command';
import { Lake } from '../../src/lake/lake';
import { RunNotKeptError, lakeAsOf } from '../../src/lake/lake-history';
import { projectRoot } from '../../src/project';
import { removeDir, tempDir } from '../helpers/lake';

// `stedi tables --history` and `stedi query --as-of` on the DuckDB engine (docs/time-travel.md): two runs
// over different landing data, each a snapshot the lake keeps and a query can read.
const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const FIXTURES = path.join(__dirname, '../fixtures/semantics');

function stedi(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, STEDI_PII_SALT: 'time-travel-salt-0123456789' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
const summaryOf = (stdout: string) =>
  JSON.parse(stdout.trim().split('\n').pop()!) as {
    status: string;
    execution: string;
    tables: Record<string, { rows: number }>;
  };
const rowsOf = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>[];

/** Two customers more, both sharing with research: customer_landing and customer_trusted grow by two. */
const MORE_CUSTOMERS = [
  { customerName: 'Dan Dunn', email: 'Dan.Dunn@test.com', serialNumber: 'S-D' },
  { customerName: 'Eve Eng', email: 'Eve.Eng@test.com', serialNumber: 'S-E' },
].map((c) =>
  JSON.stringify({
    ...c,
    phone: '8015551212',
    birthDay: '1980-01-01',
    registrationDate: 1655564300000,
    lastUpdateDate: 1655564400000,
    shareWithResearchAsOfDate: 1655564401000,
  }),
);

describe('every run a snapshot (DuckDB engine)', () => {
  let dir: string;
  let lakeDir: string;
  let first: ReturnType<typeof summaryOf>;
  let second: ReturnType<typeof summaryOf>;

  beforeAll(() => {
    dir = tempDir('time-travel');
    lakeDir = path.join(dir, 'lake');
    first = summaryOf(stedi(['run', '--landing', FIXTURES, '--lake', lakeDir, '--json']).stdout);
    const more = path.join(dir, 'more');
    mkdirSync(path.join(more, 'customer'), { recursive: true });
    writeFileSync(path.join(more, 'customer', 'customer-2.json'), `${MORE_CUSTOMERS.join('\n')}\n`);
    second = summaryOf(stedi(['run', '--landing', more, '--lake', lakeDir, '--json']).stdout);
  }, 120_000);
  afterAll(() => removeDir(dir));

  it('lists both runs in --history, newest first, with the row count each left', () => {
    expect([first.status, second.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    for (const table of ['customer_landing', 'customer_trusted']) {
      expect(second.tables[table]!.rows).toBe(first.tables[table]!.rows + 2);
      const listed = stedi(['tables', '--history', table, '--lake', lakeDir, '--json']);
      expect(listed.code).toBe(0);
      const history = rowsOf(listed.stdout) as unknown as HistoryRow[];
      expect(history.map(({ committedAt: _at, ...rest }) => rest)).toEqual([
        { runId: second.execution, rows: second.tables[table]!.rows, current: true },
        { runId: first.execution, rows: first.tables[table]!.rows, current: false },
      ]);
      // The time each run built its version: ISO 8601, the second run's later.
      const [newer, older] = history.map((h) => Date.parse(h.committedAt));
      expect(newer).toBeGreaterThan(older!);
    }
    // The second run left step-trainer landing as it was: still the first run's one version.
    const kept = stedi(['tables', '--history', 'step_trainer_landing', '--lake', lakeDir, '--json']);
    expect((rowsOf(kept.stdout) as unknown as HistoryRow[]).map((h) => [h.runId, h.rows, h.current])).toEqual([
      [first.execution, first.tables.step_trainer_landing!.rows, true],
    ]);
    const text = stedi(['tables', '--history', 'customer_trusted', '--lake', lakeDir]);
    expect(text.stdout).toMatch(new RegExp(`^run\\s+committed\\s+rows`));
    expect(text.stdout).toMatch(
      new RegExp(`${second.execution}\\s+\\S+\\s+${second.tables.customer_trusted!.rows}\\s+current`),
    );
    expect(text.stdout).toMatch(/\(2 snapshots of customer_trusted, newest first\)\n$/);
  });

  it('reads every table as the first run left it with --as-of, and as now without', () => {
    const sql =
      "select (select count(*) from customer_landing) as landing, (select count(*) from customer_trusted) as trusted, (select count(*) from customer_trusted where email = 'Dan.Dunn@test.com') as dan";
    const then = stedi(['query', '--lake', lakeDir, '--as-of', first.execution, '--json', sql]);
    expect(then.stderr).toBe('');
    expect(rowsOf(then.stdout)).toEqual([
      { landing: first.tables.customer_landing!.rows, trusted: first.tables.customer_trusted!.rows, dan: 0 },
    ]);
    const now = stedi(['query', '--lake', lakeDir, '--json', sql]);
    expect(rowsOf(now.stdout)).toEqual([
      { landing: second.tables.customer_landing!.rows, trusted: second.tables.customer_trusted!.rows, dan: 1 },
    ]);
  });

  it('refuses an unknown run with exit code 2, naming it and how to list the runs', () => {
    const unknown = stedi(['query', '--lake', lakeDir, '--as-of', 'local-never', 'select 1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(
      /no run local-never in the lake .*: list the runs with `stedi tables --history TABLE`/,
    );
    const table = stedi(['tables', '--history', 'no_such_table', '--lake', lakeDir]);
    expect(table.code).toBe(2);
    expect(table.stderr).toMatch(/--history no_such_table: not a table with snapshots; give one of customer_landing/);
  });

  it('says so when a run is older than the snapshots the lake keeps', () => {
    // A lake keeping one run's snapshot: a commit for another run leaves both runs' snapshots behind.
    new Lake(lakeDir, { keepRuns: 1 }).begin('housekeeping').commit([]);
    expect(() => lakeAsOf(new Lake(lakeDir), first.execution)).toThrow(RunNotKeptError);
    const gone = stedi(['query', '--lake', lakeDir, '--as-of', first.execution, 'select 1']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(
      new RegExp(
        `run ${first.execution} \\(.*\\) is older than the snapshots .* keeps: a lake keeps the snapshots of its newest 10 runs`,
      ),
    );
  });

  it('documents --as-of and --history in --help', () => {
    expect(stedi(['query', '--help']).stdout).toMatch(/--as-of <run>\s+read every table as that run left it/);
    expect(stedi(['tables', '--help']).stdout).toMatch(/--history <table>\s+list the table's snapshots/);
  });
});
