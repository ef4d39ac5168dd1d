import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ALERTS_FILE, Lake } from '../../src/local/lake';
import { LocalEngine } from '../../src/local/engine';
import { JOB_NAMES } from '../../src/pipeline';
import { projectRoot } from '../../src/project';
import { FaultInjection, parseFault } from '../../src/statemachine/faults';
import { ExecutionResult, PipelineInput, runLocalExecution } from '../../src/statemachine/local-runner';
import { TEST_SALT, query, removeDir, tempDir } from '../helpers/lake';

const FIXTURES = path.join(__dirname, '../fixtures/semantics');

async function execute(
  lake: Lake,
  input: PipelineInput,
  faults: FaultInjection[] = [],
  name = 'test-execution',
  expectedErrors: string[] = [],
): Promise<ExecutionResult> {
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
  try {
    const result = await runLocalExecution({
      engine,
      executionName: name,
      input,
      consentPolicy: 'any',
      piiSalt: TEST_SALT,
      alertsFile: lake.path(ALERTS_FILE),
      faults,
    });
    // The Node 20 pitfall (a missing Promise.withResolvers) fails tasks with a TypeError that a Catch
    // would swallow: every task failure must be one this test injected.
    const injected = new Set([...faults.map((f) => f.errorName), ...expectedErrors]);
    expect(result.taskFailures.filter((f) => !injected.has(f.error))).toEqual([]);
    return result;
  } finally {
    engine.close();
  }
}

const ran = (result: ExecutionResult) => result.jobs.map((j) => j.name);

describe('the state machine run locally', () => {
  let dir: string;
  let lake: Lake;
  beforeEach(async () => {
    dir = tempDir('sfn');
    lake = new Lake(dir);
    await lake.dropFolder(FIXTURES);
  });
  afterEach(() => removeDir(dir));

  it('runs all five jobs in order and summarises them', async () => {
    const result = await execute(lake, {});
    expect(result.status).toBe('SUCCEEDED');
    expect(ran(result)).toEqual([...JOB_NAMES]);
    expect(result.jobs.map((j) => j.rowsOut)).toEqual([3, 5, 2, 4, 4]);
    const output = result.output as {
      execution: string;
      from: string;
      reason: string;
      jobs: Record<string, { JobRunState: string }>;
    };
    expect(output).toMatchObject({ execution: 'test-execution', from: 'all', reason: 'manual' });
    expect(Object.keys(output.jobs)).toEqual([...JOB_NAMES]);
    expect(Object.values(output.jobs).every((j) => j.JobRunState === 'SUCCEEDED')).toBe(true);
    expect(result.alerts).toEqual([]);
  });

  it.each([
    ['all', JOB_NAMES],
    ['customer', JOB_NAMES],
    ['accelerometer', JOB_NAMES.slice(1)],
    ['step_trainer', ['step_trainer_landing_to_trusted', 'machine_learning_curated']],
  ])('from = %s runs exactly the jobs that depend on it', async (from, expected) => {
    await execute(lake, {}, [], 'first-full-run');
    const result = await execute(lake, { from, reason: 's3', files: ['x'] });
    expect(result.status).toBe('SUCCEEDED');
    expect(ran(result)).toEqual(expected);
  });

  it('rejects an unknown from without running a job', async () => {
    const result = await execute(lake, { from: 'everything' });
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('InvalidInput');
    expect(result.jobs).toEqual([]);
  });

  it('retries a transient concurrency error and succeeds', async () => {
    const fault = parseFault('customer_trusted_to_curated:Glue.ConcurrentRunsExceededException:2');
    const result = await execute(lake, {}, [fault]);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.jobs.find((j) => j.name === 'customer_trusted_to_curated')).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 3,
    });
    expect(result.taskFailures.map((f) => f.error)).toEqual([
      'Glue.ConcurrentRunsExceededException',
      'Glue.ConcurrentRunsExceededException',
    ]);
    expect(result.alerts).toEqual([]);
  });

  it('stops at a failed job, alerts once naming it, fails, and keeps every table readable', async () => {
    await execute(lake, {}, [], 'first-full-run');
    const before: Record<string, unknown> = {};
    for (const table of ['customer_curated', 'step_trainer_trusted', 'machine_learning_curated']) {
      before[table] = await query(lake, `select * from ${table} order by all`);
    }

    const result = await execute(lake, {}, [parseFault('customer_trusted_to_curated')], 'broken-run');

    expect(result.status).toBe('FAILED');
    expect(result.error).toEqual({
      name: 'Glue.JobRunFailed',
      cause: expect.stringContaining('customer_trusted_to_curated'),
    });
    expect(ran(result)).toEqual([
      'customer_landing_to_trusted',
      'accelerometer_landing_to_trusted',
      'customer_trusted_to_curated',
    ]);
    expect(result.jobs[2].attempts).toBe(1); // a job failure is not retried
    expect(result.alerts).toHaveLength(1);
    expect(result.alerts[0].subject).toBe('STEDI pipeline failed: customer_trusted_to_curated');
    expect(result.alerts[0].message).toMatch(/Glue job customer_trusted_to_curated failed in execution broken-run/);
    expect(result.alerts[0].message).toMatch(/Error: Glue.JobRunFailed/);
    expect(result.alerts[0].message).toMatch(/Execution input: \{"from":"all"/);
    const sink = readFileSync(lake.path(ALERTS_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(sink).toEqual(result.alerts);
    for (const [table, rows] of Object.entries(before))
      expect(await query(lake, `select * from ${table} order by all`)).toEqual(rows);
  });

  it('alerts with the error of a real job failure', async () => {
    removeDir(lake.path('customer/landing'));
    const result = await execute(lake, { from: 'accelerometer' }, [], 'real-failure', ['Glue.JobRunFailed']);
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('Glue.JobRunFailed');
    expect(result.error?.cause).toMatch(/customer_trusted has not been built/);
    expect(result.alerts).toHaveLength(1);
    expect(existsSync(lake.path(ALERTS_FILE))).toBe(true);
  });
});

describe('--fail', () => {
  it.each([
    ['machine_learning_curated', { job: 'machine_learning_curated', errorName: 'Glue.JobRunFailed', times: 'every' }],
    [
      'machine_learning_curated:States.Timeout',
      { job: 'machine_learning_curated', errorName: 'States.Timeout', times: 'every' },
    ],
    [
      'machine_learning_curated:Glue.ConcurrentRunsExceededException:1',
      { job: 'machine_learning_curated', errorName: 'Glue.ConcurrentRunsExceededException', times: 1 },
    ],
    ['machine_learning_curated:2', { job: 'machine_learning_curated', errorName: 'Glue.JobRunFailed', times: 2 }],
  ])('parses %s', (spec, expected) => expect(parseFault(spec)).toEqual(expected));

  it.each(['no_such_job', 'machine_learning_curated:Glue.X:0', 'machine_learning_curated:Glue.X:1:2'])(
    'rejects %s',
    (spec) => {
      expect(() => parseFault(spec)).toThrow(/--fail/);
    },
  );
});

// Outside Jest's module registry, as `stedi run` loads it: the runner must not load the AWS modules
// aws-local-stepfunctions requires but local runs never call (src/statemachine/unused-aws-deps.ts).
describe('the built runner, loaded by plain Node', () => {
  const script = `
    const { createRequire } = require('node:module');
    require(${JSON.stringify(path.join(projectRoot(), 'dist/src/statemachine/local-runner.js'))});
    const loaded = Object.keys(require.cache).filter((f) => /client-lambda|credential-providers|asl-validator/.test(f) && require.cache[f].children.length > 0);
    const fromLibrary = createRequire(require.resolve('aws-local-stepfunctions'));
    let error = '';
    try { new (fromLibrary('@aws-sdk/client-lambda').LambdaClient)({}); } catch (e) { error = e.message; }
    process.stdout.write(JSON.stringify({ loaded, error }));`;

  it('leaves the Lambda SDK and asl-validator unloaded, and says why if they are called', () => {
    const run = spawnSync(process.execPath, ['-e', script], { cwd: projectRoot(), encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const { loaded, error } = JSON.parse(run.stdout) as { loaded: string[]; error: string };
    expect(loaded).toEqual([]);
    expect(error).toMatch(/@aws-sdk\/client-lambda LambdaClient is not loaded in local runs/);
  });
});
