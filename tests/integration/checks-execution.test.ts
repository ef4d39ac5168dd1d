import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { generate } from '../../src/sample/generate';
import { landingPrefix } from '../../src/definition/layout';
import { LocalEngine } from '../../src/build/engine';
import { ALERTS_FILE, Lake } from '../../src/lake/lake';
import { ExecutionEvent, ExecutionResult } from '../../src/stand-ins/step-functions/execution';
import { runLocalExecution } from '../../src/stand-ins/step-functions/runner';
import { loadChecks } from '../../src/checks/definitions';
import { required } from '../../src/required';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { TEST_SALT, query, removeDir, tempDir } from '../helpers/lake';

// The state machine's check step run locally: its Athena tasks bound to DuckDB over the lake, as the Glue
// tasks are bound to the local engine.

async function execute(lake: Lake, name: string, events: ExecutionEvent[] = []): Promise<ExecutionResult> {
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
  try {
    return await runLocalExecution({
      engine,
      executionName: name,
      input: { from: 'all', reason: 'test', files: [] },
      consentPolicy: 'any',
      piiSalt: TEST_SALT,
      alertsFile: lake.path(ALERTS_FILE),
      lockWaitMs: 20,
      onEvent: (e) => events.push(e),
    });
  } finally {
    engine.close();
  }
}

const alertsOf = (lake: Lake) =>
  readFileSync(lake.path(ALERTS_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { subject: string; message: string; execution: string });

describe('the data checks in a local execution', () => {
  let dir: string;
  let lake: Lake;
  beforeAll(async () => {
    dir = tempDir('check-step');
    lake = new Lake(dir);
    await generate(lake.root, 'lake', { customers: 40, seed: 3, badLineRate: 0 });
  }, 60_000);
  afterAll(() => removeDir(dir));

  it('runs every check after the last job on DuckDB and succeeds when all pass, publishing the tables', async () => {
    const events: ExecutionEvent[] = [];
    const result = await execute(lake, 'all-pass', events);
    expect(result.status).toBe('SUCCEEDED');
    expect((result.output as { checks: unknown }).checks).toEqual(
      loadChecks().map((c) => ({ check: c.name, failed: false })),
    );
    const entered = events.flatMap((e) => (e.type === 'state-entered' ? [e.state] : []));
    expect(entered.indexOf('RunChecks')).toBeGreaterThan(entered.indexOf('MachineLearningCurated'));
    expect(entered.indexOf('ReleaseLock')).toBeGreaterThan(entered.indexOf('RunChecks'));
    const checked = events.flatMap((e) => (e.type === 'check-finished' ? [e.check] : []));
    expect(checked.sort()).toEqual(
      loadChecks()
        .map((c) => c.name)
        .sort(),
    );
    expect(result.alerts).toEqual([]);
    // Published once every check passed, all in one commit.
    const { tables } = await lake.readCatalog();
    for (const table of DERIVED_TABLES) expect(tables[table]?.runId).toBe('all-pass');
  }, 60_000);

  it('publishes nothing when a check fails: readers keep the previous tables, the alert names the check, the next run fails again', async () => {
    const before = await lake.readCatalog();
    const trustedBefore = required(before.tables.step_trainer_trusted, 'step_trainer_trusted before');
    const versionsBefore = readdirSync(lake.path('_versions/step_trainer/trusted')).sort();
    expect(trustedBefore.rows).toBeGreaterThan(0);
    // Every step-trainer reading now names a device no customer has: the join matches nothing, and the run
    // empties step_trainer_trusted (and with it the ML table) while every input still holds rows.
    const prefix = landingPrefix('step_trainer');
    for (const file of readdirSync(lake.path(prefix))) {
      const text = readFileSync(lake.path(`${prefix}${file}`), 'utf8');
      writeFileSync(
        lake.path(`${prefix}${file}`),
        text.replace(/"serialNumber":"[^"]*"/g, '"serialNumber":"no-such-device"'),
      );
    }
    const result = await execute(lake, 'emptying-run');

    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('DataCheckFailed');
    expect(result.jobs.map((j) => j.status)).toEqual(Array(5).fill('SUCCEEDED'));
    expect(result.alerts).toHaveLength(1);
    const alert = required(
      alertsOf(lake).find((a) => a.execution === 'emptying-run'),
      'the alert of emptying-run',
    );
    expect(alert.subject).toBe('STEDI pipeline failed: data_checks');
    expect(alert.message).toContain('Cause: Data checks failed: ["tables_not_emptied"].');
    const reported = JSON.parse(required(/names\): (\[.*\])\n/s.exec(alert.message)?.[1], 'the Cause list')) as {
      check: string;
      failed: boolean;
      rows?: { Data: { VarCharValue?: string }[] }[];
    }[];
    const failed = reported.filter((c) => c.failed);
    expect(failed.map((c) => c.check)).toEqual(['tables_not_emptied']);
    expect(failed[0]?.rows?.map((r) => r.Data.map((d) => d.VarCharValue))).toEqual([
      ['table_name', 'rows_before', 'rows_now', 'run_id'],
      ['step_trainer_trusted', expect.any(String), '0', 'emptying-run'],
    ]);
    // Not published: every derived table is the version the run before committed, rows and all.
    const after = await lake.readCatalog();
    for (const table of DERIVED_TABLES) expect(after.tables[table]).toEqual(before.tables[table]);
    expect(after.versions?.['step_trainer/trusted']?.id).toBe(before.versions?.['step_trainer/trusted']?.id);
    expect(await query(lake, 'select count(*) as n from step_trainer_trusted')).toEqual([{ n: trustedBefore.rows }]);
    // Nothing the run staged is left behind: the versions are those before it (current, previous, and
    // those the snapshots kept for earlier runs link to).
    expect(readdirSync(lake.path('_versions/step_trainer/trusted')).sort()).toEqual(versionsBefore);
    expect(versionsBefore).toContain(before.versions?.['step_trainer/trusted']?.id);
    // The lock was released on the way out, and the next run does not pass over the failure: it fails again.
    const next = await execute(lake, 'next-run');
    expect(next.status).toBe('FAILED');
    expect(next.error?.name).toBe('DataCheckFailed');
    expect((await lake.readCatalog()).tables.step_trainer_trusted).toEqual(trustedBefore);
  }, 60_000);
});
