import { LocalGlueJobRuns } from '../../src/stand-ins/glue/local-glue';
import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ALERTS_FILE, Lake } from '../../src/lake/lake';
import { LocalEngine } from '../../src/build/engine';
import { LocalDynamoDb } from '../../src/stand-ins/dynamodb/dynamodb';
import { MemoryItemStore } from '../../src/stand-ins/dynamodb/items';
import { JOB_NAMES } from '../../src/definition/pipeline';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { FaultInjection, parseFault, taskErrorOf } from '../../src/statemachine/faults';
import { ExecutionEvent, ExecutionResult, PipelineInput } from '../../src/stand-ins/step-functions/execution';
import {
  LOCAL_LOCK_TABLE,
  LOCK_NAME,
  LOCK_TABLE_PARTITION_KEY,
  lockTableFor,
  runLockCleanup,
} from '../../src/stand-ins/step-functions/lock-table';
import { localExecutionArn } from '../../src/stand-ins/step-functions/start-local';
import { runLocalExecution } from '../../src/stand-ins/step-functions/runner';
import { TEST_SALT, query, removeDir, tempDir } from '../helpers/lake';

const FIXTURES = path.join(__dirname, '../fixtures/semantics');

async function execute(
  lake: Lake,
  input: PipelineInput,
  faults: FaultInjection[] = [],
  name = 'test-execution',
  expectedErrors: string[] = [],
  extra: { dynamoDb?: LocalDynamoDb; onEvent?: (event: ExecutionEvent) => void; glueJobRuns?: LocalGlueJobRuns } = {},
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
      lockWaitMs: 20,
      ...extra,
    });
    // The Node 20 pitfall (a missing Promise.withResolvers) fails tasks with a TypeError that a Catch
    // would swallow: every task failure must be one this test injected, or a lock contention.
    const injected = new Set([
      ...faults.map((f) => taskErrorOf(f.outcome)?.error),
      ...expectedErrors,
      'DynamoDB.ConditionalCheckFailedException',
    ]);
    expect(result.taskFailures.filter((f) => !injected.has(f.error))).toEqual([]);
    return result;
  } finally {
    engine.close();
  }
}

/** The pipeline lock item of a lock table. */
async function lockItem(dynamoDb: LocalDynamoDb) {
  const { Item } = await dynamoDb.getItem({
    TableName: LOCAL_LOCK_TABLE,
    Key: { [LOCK_TABLE_PARTITION_KEY]: { S: LOCK_NAME } },
  });
  return Item;
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

  it('refuses an input that asks for another consent policy than the one deployed, naming both, without running a job', async () => {
    const result = await execute(lake, { from: 'all', consentPolicy: 'since-consent' });
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('InvalidInput');
    expect(result.error?.cause).toMatch(
      /^the input asks for consent policy "since-consent", but this stack is deployed with any: a run never mixes policies/,
    );
    expect(result.jobs).toEqual([]);
    // Naming the deployed one is fine: it says what the run expects.
    expect((await execute(lake, { from: 'all', consentPolicy: 'any' })).status).toBe('SUCCEEDED');
  });

  it('retries a throttled StartJobRun, which Step Functions reports as Glue.AWSGlueException with the code in Cause (AWS Knowledge Center, "glue-throttling-rate-exceeded"), and succeeds', async () => {
    const fault = parseFault('customer_trusted_to_curated:Glue.ThrottlingException:2');
    const result = await execute(lake, {}, [fault]);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.jobs.find((j) => j.name === 'customer_trusted_to_curated')).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 3,
    });
    expect(result.taskFailures.map((f) => f.error)).toEqual(['Glue.AWSGlueException', 'Glue.AWSGlueException']);
    for (const { cause } of result.taskFailures)
      expect(cause).toMatch(
        /^Rate exceeded \(Service: AWSGlue; Status Code: 400; Error Code: ThrottlingException; Request ID: \S+; Proxy: null\)$/,
      );
    expect(result.alerts).toEqual([]);
  });

  it('does not retry ConcurrentRunsExceededException: with job-run queuing Glue makes a run wait instead, so it means queuing is off', async () => {
    const fault = parseFault('customer_trusted_to_curated:Glue.ConcurrentRunsExceededException:1');
    const result = await execute(lake, {}, [fault]);
    expect(result.status).toBe('FAILED');
    expect(result.jobs.find((j) => j.name === 'customer_trusted_to_curated')?.attempts).toBe(1);
    expect(result.error?.name).toBe('Glue.ConcurrentRunsExceededException');
    expect(result.alerts[0]?.message).toMatch(/Cause: .*Error Code: ConcurrentRunsExceededException/);
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
      name: 'States.TaskFailed',
      cause: expect.stringMatching(/^job run jr_\S+ ended FAILED: injected fault: customer_trusted_to_curated/),
    });
    expect(ran(result)).toEqual([
      'customer_landing_to_trusted',
      'accelerometer_landing_to_trusted',
      'customer_trusted_to_curated',
    ]);
    expect(result.jobs[2]?.attempts).toBe(1); // a job failure is not retried
    expect(result.alerts).toHaveLength(1);
    expect(result.alerts[0]?.subject).toBe('STEDI pipeline failed: customer_trusted_to_curated');
    expect(result.alerts[0]?.message).toMatch(/Glue job customer_trusted_to_curated failed in execution broken-run/);
    expect(result.alerts[0]?.message).toMatch(/Error: States.TaskFailed/);
    expect(result.alerts[0]?.message).toMatch(/Execution input: \{"from":"all"/);
    const sink = readFileSync(lake.path(ALERTS_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l): unknown => JSON.parse(l));
    expect(sink).toEqual(result.alerts);
    for (const [table, rows] of Object.entries(before))
      expect(await query(lake, `select * from ${table} order by all`)).toEqual(rows);
  });

  it("a job that throws fails its run: States.TaskFailed with the job run as Cause, and the alert shows the job's own error message (ErrorMessage of GetJobRun's JobRun)", async () => {
    removeDir(lake.path('customer/landing'));
    const result = await execute(lake, { from: 'accelerometer' }, [], 'real-failure', ['States.TaskFailed']);
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('States.TaskFailed');
    const failure = required(result.taskFailures[0], 'the task failure');
    const run = JSON.parse(failure.cause) as Record<string, unknown>;
    expect(run).toMatchObject({
      JobName: 'accelerometer_landing_to_trusted',
      JobRunState: 'FAILED',
      Id: expect.stringMatching(/^jr_/),
      ErrorMessage: expect.stringMatching(/customer_trusted has not been built/),
    });
    expect(result.alerts).toHaveLength(1);
    expect(result.alerts[0]?.message).toMatch(
      /Cause: job run jr_\S+ ended FAILED: table customer_trusted has not been built/,
    );
    expect(result.alerts[0]?.message).not.toMatch(/"JobRunState"/); // the message, not the JSON
    expect(existsSync(lake.path(ALERTS_FILE))).toBe(true);
  });
});

// Every shape in which a job task can end badly on AWS, injected locally in that same shape: the
// failure path must alert (showing what there is to show), release the lock and fail the execution,
// never stop on a States.Runtime error.
describe('the failure path, for every error shape', () => {
  let dir: string;
  let lake: Lake;
  beforeAll(async () => {
    dir = tempDir('sfn-shapes');
    lake = new Lake(dir);
    await lake.dropFolder(FIXTURES);
    await execute(lake, {}, [], 'first-full-run');
  });
  afterAll(() => removeDir(dir));

  it.each([
    [
      'a run that ends FAILED: States.TaskFailed with the run as Cause (Step Functions "Run AWS Glue jobs", .sync)',
      'FAILED',
      'States.TaskFailed',
      /^job run jr_\S+ ended FAILED: injected fault: machine_learning_curated ended FAILED/,
    ],
    [
      'a run that ends TIMEOUT: States.TaskFailed with the run as Cause',
      'TIMEOUT',
      'States.TaskFailed',
      /ended TIMEOUT: /,
    ],
    ['a run that ends ERROR: States.TaskFailed with the run as Cause', 'ERROR', 'States.TaskFailed', /ended ERROR: /],
    [
      'a run that ends STOPPED: the .sync task completes, and the pipeline stops it itself',
      'STOPPED',
      'JobRunNotSucceeded',
      /^job run jr_\S+ ended STOPPED$/,
    ],
    [
      'the task timing out: States.Timeout, no Cause (the ASL Error Output "SHOULD", not must, have a Cause)',
      'States.Timeout',
      'States.Timeout',
      /^\(none given\)$/,
    ],
    [
      'no heartbeat: States.HeartbeatTimeout, no Cause',
      'States.HeartbeatTimeout',
      'States.HeartbeatTimeout',
      /^\(none given\)$/,
    ],
    [
      'an API error of StartJobRun: Glue.<exception> with the service message as Cause',
      'Glue.EntityNotFoundException',
      'Glue.EntityNotFoundException',
      /injected fault.*\(Service: AWSGlue; Status Code: 400; Error Code: EntityNotFoundException/,
    ],
    [
      'an error code StartJobRun does not model (AccessDeniedException): Glue.AWSGlueException, the code in Cause, retried, then alerted',
      'Glue.AccessDeniedException',
      'Glue.AWSGlueException',
      /injected fault.*\(Service: AWSGlue; Status Code: 400; Error Code: AccessDeniedException/,
    ],
  ])('%s', async (_, outcome, error, cause) => {
    const dynamoDb = lockTableFor(lake);
    const name = `shape-${outcome.replace(/\W/g, '-')}`;
    const result = await execute(
      lake,
      { from: 'step_trainer' },
      [parseFault(`machine_learning_curated:${outcome}`)],
      name,
      [],
      {
        dynamoDb,
      },
    );
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe(error);
    expect(result.error?.cause).toMatch(cause);
    expect(result.alerts).toHaveLength(1);
    expect(result.alerts[0]?.subject).toBe('STEDI pipeline failed: machine_learning_curated');
    expect(result.alerts[0]?.message).toContain(`Error: ${error}\nCause: ${result.error!.cause}\n`);
    expect(ran(result)).toEqual(['step_trainer_landing_to_trusted', 'machine_learning_curated']);
    expect(result.jobs[1]?.status).toBe(
      outcome.startsWith('States.') || outcome.startsWith('Glue.') ? 'FAILED' : outcome,
    );
    // and the lock is free again
    expect((await lockItem(dynamoDb))?.owner).toBeUndefined();
  });

  it("a task that times out while Glue's run goes on: the run is stopped and has ended before the lock is released, and the next execution runs", async () => {
    const dynamoDb = lockTableFor(lake);
    const glueJobRuns = new LocalGlueJobRuns();
    const states: string[] = [];
    const result = await execute(
      lake,
      { from: 'step_trainer' },
      [parseFault('machine_learning_curated:States.Timeout')],
      'timed-out-run',
      [],
      { dynamoDb, glueJobRuns, onEvent: (e) => e.type === 'state-entered' && states.push(e.state) },
    );
    expect(result.error?.name).toBe('States.Timeout');
    const [own] = glueJobRuns.of('machine_learning_curated');
    expect(own).toMatchObject({ JobRunState: 'STOPPED', Arguments: { '--run_id': 'timed-out-run' } });
    expect(glueJobRuns.calls.map((c) => c.action)).toEqual(['GetJobRuns', 'BatchStopJobRun', 'GetJobRun', 'GetJobRun']);
    const at = (s: string) => states.indexOf(s);
    expect(at('StopTimedOutJobRun')).toBeLessThan(at('ReleaseLockAfterFailure'));
    expect((await lockItem(dynamoDb))?.owner).toBeUndefined();
    expect((await execute(lake, { from: 'step_trainer' }, [], 'after-the-timeout', [], { dynamoDb })).status).toBe(
      'SUCCEEDED',
    );
  });

  it('the injected shapes are the ones AWS gives: a run JSON only for States.TaskFailed, no Cause for the timeouts', async () => {
    const shapes: Record<string, unknown> = {};
    for (const outcome of ['FAILED', 'States.Timeout', 'Glue.ThrottlingException']) {
      const result = await execute(
        lake,
        { from: 'step_trainer' },
        [parseFault(`machine_learning_curated:${outcome}:1`)],
        `raw-${outcome}`,
      );
      expect(result.status).toBe(outcome === 'Glue.ThrottlingException' ? 'SUCCEEDED' : 'FAILED');
      shapes[outcome] = result.taskFailures[0];
    }
    expect(JSON.parse((shapes.FAILED as { cause: string }).cause)).toMatchObject({
      JobName: 'machine_learning_curated',
      JobRunState: 'FAILED',
      ErrorMessage: expect.any(String),
      Arguments: { '--run_id': 'raw-FAILED', '--consent_policy': 'any' },
    });
    expect(shapes['States.Timeout']).toEqual({ state: 'MachineLearningCurated', error: 'States.Timeout', cause: '' });
    expect(shapes['Glue.ThrottlingException']).toEqual({
      state: 'MachineLearningCurated',
      error: 'Glue.AWSGlueException',
      cause: expect.stringMatching(
        /^Rate exceeded \(Service: AWSGlue; Status Code: 400; Error Code: ThrottlingException;/,
      ),
    });
  });
});

describe('the pipeline lock, run locally', () => {
  let dir: string;
  let lake: Lake;
  beforeEach(async () => {
    dir = tempDir('sfn-lock');
    lake = new Lake(dir);
    await lake.dropFolder(FIXTURES);
  });
  afterEach(() => removeDir(dir));

  it('makes a second execution wait until the first has released the lock, then run', async () => {
    const dynamoDb = new LocalDynamoDb([
      {
        definition: { name: LOCAL_LOCK_TABLE, partitionKey: LOCK_TABLE_PARTITION_KEY },
        store: new MemoryItemStore(),
      },
    ]);
    const log: string[] = [];
    let firstHoldsLock!: () => void;
    const firstHeldLock = new Promise<void>((resolve) => (firstHoldsLock = resolve));
    const onEvent = (who: string) => (event: ExecutionEvent) => {
      if (event.type !== 'state-entered') return;
      log.push(`${who} ${event.state}`);
      if (who === 'first' && event.state === 'ChooseFirstJob') firstHoldsLock();
    };
    const [first, second] = await Promise.all([
      execute(lake, {}, [], 'first', [], { dynamoDb, onEvent: onEvent('first') }),
      (async () => {
        await firstHeldLock; // start once the first holds the lock
        return execute(lake, { from: 'step_trainer' }, [], 'second', [], { dynamoDb, onEvent: onEvent('second') });
      })(),
    ]);
    expect([first.status, second.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(log).toContain('second WaitForLock');
    expect(log.indexOf('second StepTrainerLandingToTrusted')).toBeGreaterThan(log.indexOf('first ReleaseLock'));
    expect(log.indexOf('second ReadLockHolder')).toBeLessThan(log.indexOf('first ReleaseLock'));
    expect((await lockItem(dynamoDb))?.owner).toBeUndefined();
  });

  it('holds the lock in the lock table while jobs run, naming the execution', async () => {
    const dynamoDb = lockTableFor(lake);
    let seen: unknown;
    await execute(lake, {}, [], 'holder', [], {
      dynamoDb,
      onEvent: (event) => {
        if (event.type === 'job-finished' && event.run.name === 'customer_landing_to_trusted')
          seen = lockItem(dynamoDb);
      },
    });
    expect(await seen).toEqual({
      [LOCK_TABLE_PARTITION_KEY]: { S: LOCK_NAME },
      owner: { S: localExecutionArn('holder') },
      ownerName: { S: 'holder' },
      ownerStartedAt: { S: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) },
    });
    expect((await lockItem(dynamoDb))?.owner).toBeUndefined();
  });

  it('fails with an alert when the lock cannot be taken, and no job runs', async () => {
    const broken = new LocalDynamoDb([]); // no lock table: ResourceNotFoundException
    const result = await execute(lake, {}, [], 'no-table', ['DynamoDB.ResourceNotFoundException'], {
      dynamoDb: broken,
    });
    expect(result.status).toBe('FAILED');
    expect(result.jobs).toEqual([]);
    expect(result.error?.name).toBe('DynamoDB.ResourceNotFoundException');
    expect(result.alerts).toHaveLength(1);
    expect(result.alerts[0]?.subject).toBe('STEDI pipeline failed: pipeline_lock');
    expect(result.alerts[0]?.message).toMatch(/^Taking the pipeline lock failed in execution no-table/);
  });

  it("the lock-cleanup state machine releases the lock of an execution that ended without releasing it, and only that one's", async () => {
    const dynamoDb = lockTableFor(lake);
    const acquire = (name: string) =>
      dynamoDb.updateItem({
        TableName: LOCAL_LOCK_TABLE,
        Key: { [LOCK_TABLE_PARTITION_KEY]: { S: LOCK_NAME } },
        UpdateExpression: 'SET #owner = :owner',
        ConditionExpression: 'attribute_not_exists(#owner)',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': { S: localExecutionArn(name) } },
      });
    await acquire('aborted-one');
    expect(await runLockCleanup(dynamoDb, { executionArn: localExecutionArn('other'), status: 'FAILED' })).toBe(
      'LockNotHeld',
    );
    expect((await lockItem(dynamoDb))?.owner).toEqual({ S: localExecutionArn('aborted-one') });
    expect(await runLockCleanup(dynamoDb, { executionArn: localExecutionArn('aborted-one'), status: 'ABORTED' })).toBe(
      'LockReleased',
    );
    expect((await lockItem(dynamoDb))?.owner).toBeUndefined();
    const result = await execute(lake, {}, [], 'after-cleanup', [], { dynamoDb });
    expect(result.status).toBe('SUCCEEDED');
  });
});

describe('--fail', () => {
  it.each([
    ['machine_learning_curated', { job: 'machine_learning_curated', outcome: 'FAILED', times: 'every' }],
    ['machine_learning_curated:STOPPED', { job: 'machine_learning_curated', outcome: 'STOPPED', times: 'every' }],
    [
      'machine_learning_curated:States.Timeout',
      { job: 'machine_learning_curated', outcome: 'States.Timeout', times: 'every' },
    ],
    [
      'machine_learning_curated:Glue.ConcurrentRunsExceededException:1',
      { job: 'machine_learning_curated', outcome: 'Glue.ConcurrentRunsExceededException', times: 1 },
    ],
    ['machine_learning_curated:2', { job: 'machine_learning_curated', outcome: 'FAILED', times: 2 }],
  ])('parses %s', (spec, expected) => expect(parseFault(spec)).toEqual(expected));

  it.each([
    'no_such_job',
    'machine_learning_curated:Glue.X:0',
    'machine_learning_curated:Glue.X:1:2',
    'machine_learning_curated:BROKEN',
    'machine_learning_curated:Glue.AWSGlueException', // the code it stands for is asked, e.g. Glue.ThrottlingException
  ])('rejects %s', (spec) => {
    expect(() => parseFault(spec)).toThrow(/--fail/);
  });
});

// Outside Jest's module registry, as `stedi run` loads it: the runner must not load the AWS modules
// aws-local-stepfunctions requires but local runs never call (src/stand-ins/step-functions/unused-aws-deps.ts).
describe('the built runner, loaded by plain Node', () => {
  const script = `
    const { createRequire } = require('node:module');
    require(${JSON.stringify(path.join(projectRoot(), 'dist/src/stand-ins/step-functions/runner.js'))});
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
