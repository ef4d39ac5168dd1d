import { expect } from '@jest/globals';
import aslValidator from 'asl-validator';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isLandingTable, TableName } from '../../src/definition/layout';
import { JOB_NAMES, JobName, loadJobs } from '../../src/definition/pipeline';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import {
  AslDefinition,
  AslState,
  DYNAMODB_RESOURCES,
  GLUE_SYNC_RESOURCE,
  LOCK_CLEANUP_ASL_FILE,
  SNS_PUBLISH_RESOURCE,
  SubstitutionError,
  glueTasksFrom,
  jobsRunFrom,
  happyPath,
  readAslText,
  stateNamed,
  substitute,
  substitutionNames,
} from '../../src/statemachine/definition';
import { LOCK_NAME, LOCK_TABLE_PARTITION_KEY } from '../../src/stand-ins/step-functions/lock-table';
import { localSubstitutions } from '../../src/stand-ins/step-functions/runner';
import { startLocal } from '../../src/stand-ins/step-functions/start-local';
import { toMermaid } from '../../src/statemachine/mermaid';
import {
  ACTIVE_JOB_RUN_STATES,
  GLUE_BATCH_STOP_JOB_RUN_RESOURCE,
  GLUE_GET_JOB_RUNS_RESOURCE,
  GLUE_GET_JOB_RUN_RESOURCE,
  LocalGlueJobRuns,
  LocalJobRun,
} from '../../src/stand-ins/glue/local-glue';
import { GLUE_UNMODELLED_ERROR, START_JOB_RUN_ERRORS } from '../../src/statemachine/faults';
import { LOCAL_DATABASE, checksFor } from '../../src/checks/definitions';
import { AUDIT_SQL_SUBSTITUTION, auditRunBranchesSqlFor } from '../../src/checks/audit';
import { DERIVED_TABLES } from '../../src/definition/layout';
import {
  ATHENA_GET_QUERY_RESULTS_RESOURCE,
  ATHENA_START_QUERY_SYNC_RESOURCE,
} from '../../src/stand-ins/athena/local-athena';

// The Glue jobs' own settings (their Timeout, defined once there): the stack's jobs run with them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { GLUE_JOB } = require('../../deploy/glue-resources.js') as { GLUE_JOB: { TimeoutMinutes: number } };

const text = readAslText();
const deployed = substitute(text, Object.fromEntries(substitutionNames(text).map((n) => [n, `deployed-${n}`])));
const local = substitute(text, localSubstitutions('any', text));
/** The five job tasks (PublishRun, the publish task, runs a Glue job too, in its publish mode). */
const glueTasks = Object.entries(deployed.States).filter(
  ([name, s]) => s.Resource === GLUE_SYNC_RESOURCE && name !== 'PublishRun',
);
const cleanupText = readAslText(LOCK_CLEANUP_ASL_FILE);
const cleanup = substitute(cleanupText, { LockTableName: 'deployed-LockTableName' });
const lockTasks = (definition: AslDefinition) =>
  Object.entries(definition.States).filter(([, s]) =>
    (Object.values(DYNAMODB_RESOURCES) as string[]).includes(s.Resource ?? ''),
  );
/**
 * A deep copy made in this realm: jest runs tests in a vm context, where structuredClone's objects come from
 * Node's realm, and aws-local-stepfunctions then does not see a state's Parameters as an object (its
 * payload template's paths are passed to the task unresolved).
 */
const copyOf = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Every state reachable from a state, along Next, Default, Choices and Catch. */
function reachable(definition: AslDefinition, from: string): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string | undefined) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    const state: AslState = stateNamed(definition, name);
    for (const next of [state.Next, state.Default, ...(state.Choices ?? []).map((c) => c.Next)]) visit(next);
    for (const c of state.Catch ?? []) visit(c.Next);
  };
  visit(from);
  return seen;
}

/** Bindings for the Glue API tasks of the timeout path, for a run that must not reach them. */
const noGlueCalls = (where: string) =>
  Object.fromEntries(
    [GLUE_GET_JOB_RUNS_RESOURCE, GLUE_BATCH_STOP_JOB_RUN_RESOURCE, GLUE_GET_JOB_RUN_RESOURCE].map((r) => [
      r,
      () => Promise.reject(new Error(`no Glue API call ${where}`)),
    ]),
  );

/** The job each Glue task runs, as `stedi run` binds it. */
const jobOf = (state: string) => stateNamed(local, state).Parameters!.JobName as JobName;

describe('statemachines/pipeline.asl.json', () => {
  it.each([
    ['the pipeline', deployed],
    ['the lock cleanup', cleanup],
  ])('%s is valid ASL once substituted', (_, definition) => {
    const { isValid, errorsText } = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
    expect(errorsText('\n')).toBe('');
    expect(isValid).toBe(true);
  });

  it('takes job names, the lock table and the topic from substitutions, never hard-coded', () => {
    expect(substitutionNames(text)).toEqual(
      expect.arrayContaining([
        'AlertsTopicArn',
        'ConsentPolicy',
        'LockTableName',
        ...glueTasks.map(([n]) => `${n}JobName`),
      ]),
    );
    for (const [, state] of glueTasks) expect(String(state.Parameters!.JobName)).toMatch(/^deployed-/);
    expect(stateNamed(deployed, 'NotifyFailure').Parameters!.TopicArn).toBe('deployed-AlertsTopicArn');
    for (const [, state] of [...lockTasks(deployed), ...lockTasks(cleanup)])
      expect(state.Parameters).toMatchObject({
        TableName: 'deployed-LockTableName',
        Key: { [LOCK_TABLE_PARTITION_KEY]: { S: LOCK_NAME } },
      });
    expect(substitutionNames(cleanupText)).toEqual(['LockTableName']);
    expect(() => substitute(text, {})).toThrow(SubstitutionError);
  });

  it("runs the five Glue jobs, each with the execution name as its run id and the job's own Glue timeout (one number, in deploy/glue-resources.js), below the task timeout", () => {
    expect(glueTasks.map(([name]) => jobOf(name))).toEqual([...JOB_NAMES]);
    for (const [, state] of glueTasks) {
      expect((state.Parameters!.Arguments as Record<string, string>)['--run_id.$']).toBe('$$.Execution.Name');
      // No Timeout of the run's own (Glue API reference, StartJobRun: it would override the job's).
      expect(state.Parameters).not.toHaveProperty('Timeout');
      expect(GLUE_JOB.TimeoutMinutes * 60).toBeLessThan(state.TimeoutSeconds!);
    }
    expect(deployed.TimeoutSeconds).toBeGreaterThan(0);
  });

  it('retries transient Glue API errors with backoff and jitter, never a job failure, nor ConcurrentRunsExceededException (job-run queuing makes a run wait instead)', () => {
    for (const [, state] of glueTasks) {
      const retried = state.Retry!.flatMap((r) => r.ErrorEquals);
      expect(retried).toEqual(
        expect.arrayContaining([
          'Glue.InternalServiceException',
          'Glue.OperationTimeoutException',
          // Throttling: StartJobRun does not model ThrottlingException, so it arrives as this (AWS
          // Knowledge Center, "glue-throttling-rate-exceeded"; src/statemachine/faults.ts).
          GLUE_UNMODELLED_ERROR,
        ]),
      );
      expect(retried).not.toContain('Glue.ConcurrentRunsExceededException');
      expect(retried).not.toEqual(expect.arrayContaining(['States.ALL']));
      expect(retried).not.toContain('States.TaskFailed');
      expect(retried).not.toContain('States.Timeout');
      for (const retry of state.Retry!) {
        expect(retry.BackoffRate).toBeGreaterThan(1);
        expect(retry.JitterStrategy).toBe('FULL');
      }
    }
  });

  it('names only Glue errors Step Functions can report: Glue.<a StartJobRun error of the Glue API reference> or Glue.AWSGlueException (Step Functions guide, "Handling errors": ServiceName.ExceptionName)', () => {
    const reportable = new Set([...START_JOB_RUN_ERRORS.map((e) => `Glue.${e}`), GLUE_UNMODELLED_ERROR]);
    for (const [name, state] of glueTasks) {
      const named = [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((r) => r.ErrorEquals);
      const glue = named.filter((e) => e.startsWith('Glue.'));
      expect({ name, unreportable: glue.filter((e) => !reportable.has(e)) }).toEqual({ name, unreportable: [] });
    }
  });

  it('catches every job task into the one alert state, which releases the lock and fails the execution; a timeout first stops the run', () => {
    for (const [, state] of glueTasks) {
      expect(state.Catch?.map((c) => c.ErrorEquals)).toEqual([['States.Timeout'], ['States.ALL']]);
      for (const catcher of state.Catch ?? []) {
        const path = happyPath(deployed, catcher.Next);
        expect(path).toEqual(expect.arrayContaining(['DescribeFailure', 'NotifyFailure', 'ReleaseLockAfterFailure']));
        expect(stateNamed(deployed, required(path.at(-1), 'the end of the failure path')).Type).toBe('Fail');
      }
      // A timeout goes through the stop of the run before the alert and the release (below, run).
      const timedOut = happyPath(deployed, required(state.Catch?.[0], 'the timeout catcher').Next);
      expect(timedOut.indexOf('StopTimedOutJobRun')).toBeGreaterThan(-1);
      expect(timedOut.indexOf('StopTimedOutJobRun')).toBeLessThan(timedOut.indexOf('ReleaseLockAfterFailure'));
    }
    const publishers = Object.entries(deployed.States).filter(([, s]) => s.Resource === SNS_PUBLISH_RESOURCE);
    expect(publishers.map(([n]) => n)).toEqual(['NotifyFailure']);
    // Whether the alert is published or not, the lock is released and the execution fails.
    expect(stateNamed(deployed, 'NotifyFailure').Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'ReleaseLockAfterFailure' }),
    ]);
    expect(stateNamed(deployed, 'ReleaseLockAfterFailure').Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'PipelineFailed' }),
    ]);
  });

  it('continues after a job only when its run SUCCEEDED: a run that ends STOPPED completes glue:startJobRun.sync normally (LocalStack, tested against AWS, treats only FAILED, TIMEOUT and ERROR as task failures)', () => {
    for (const [name, state] of glueTasks) {
      // only what every finished run has: selecting a missing field fails the execution (States.Runtime)
      expect(state.ResultSelector).toEqual({ 'JobRunId.$': '$.Id', 'JobRunState.$': '$.JobRunState' });
      const check = stateNamed(deployed, state.Next!);
      expect(check.Type).toBe('Choice');
      expect(check.Choices).toEqual([
        expect.objectContaining({ Variable: `${String(state.ResultPath)}.JobRunState`, StringEquals: 'SUCCEEDED' }),
      ]);
      expect(Object.keys(check.Choices?.[0] ?? {}).sort()).toEqual(['Next', 'StringEquals', 'Variable']);
      // anything else goes to the failure path, naming the job
      const failurePath = happyPath(deployed, check.Default);
      expect(failurePath).toContain('NotifyFailure');
      const named = failurePath.map((n) => stateNamed(deployed, n)).find((s) => s.ResultPath === '$.failedStep');
      expect(named?.Result).toEqual({ name: jobOf(name), description: `Glue job ${jobOf(name)}` });
    }
  });

  it("reads a failure only through checks for what it holds: Cause and the job run's fields are tested for presence before any state uses them (a caught error may have no Cause)", () => {
    const uses = (state: AslState, path: string) => JSON.stringify(state.Parameters ?? {}).includes(path);
    const guarded = (rule: unknown, path: string) =>
      JSON.stringify(rule).includes(`{"Variable":"${path}","IsPresent":true}`) &&
      JSON.stringify(rule).includes(`{"Variable":"${path}","IsString":true}`);
    /** The states that lead into a state, and how. */
    const entries = (target: string) =>
      Object.entries(deployed.States).flatMap(([name, s]) => [
        ...(s.Next === target || (s.Catch ?? []).some((c) => c.Next === target) ? [{ name, rule: undefined }] : []),
        ...(s.Default === target ? [{ name, rule: 'Default' }] : []),
        ...(s.Choices ?? []).filter((c) => c.Next === target).map((rule) => ({ name, rule: rule })),
      ]);
    const readers = Object.entries(deployed.States).filter(([, s]) => uses(s, '$.failure.Cause'));
    expect(readers.map(([n]) => n).sort()).toEqual(['AlertWithCause', 'ReadJobRun']);
    // DescribeFailure sends there only when Cause is there; DescribeJobRun is only reached through ReadJobRun.
    expect(entries('ReadJobRun')).toEqual([{ name: 'DescribeFailure', rule: expect.anything() }]);
    expect(guarded(entries('ReadJobRun')[0]?.rule, '$.failure.Cause')).toBe(true);
    expect(
      entries('AlertWithCause')
        .map((e) => e.name)
        .sort(),
    ).toEqual(['DescribeFailure', 'DescribeJobRun']);
    for (const e of entries('AlertWithCause').filter((x) => x.name === 'DescribeFailure'))
      expect(guarded(e.rule!, '$.failure.Cause')).toBe(true);
    expect(entries('DescribeJobRun')).toEqual([{ name: 'ReadJobRun', rule: undefined }]);
    expect(entries('AlertFromJobRun')).toEqual([{ name: 'DescribeJobRun', rule: expect.anything() }]);
    for (const field of ['Id', 'JobRunState', 'ErrorMessage'])
      expect(guarded(entries('AlertFromJobRun')[0]?.rule, `$.failedRun.run.${field}`)).toBe(true);
    // No other state on the failure path reads the Cause or the parsed run.
    for (const name of reachable(deployed, 'DescribeFailure')) {
      if (['ReadJobRun', 'AlertWithCause', 'AlertFromJobRun'].includes(name)) continue;
      const state = stateNamed(deployed, name);
      expect({ name, reads: uses(state, '.Cause') || uses(state, '$.failedRun') }).toEqual({ name, reads: false });
    }
  });
});

/** Terminal states: End, Succeed or Fail. */
const isTerminal = (state: AslState) => state.End === true || state.Type === 'Succeed' || state.Type === 'Fail';

describe('the pipeline lock (AWS\'s "control concurrency with DynamoDB" pattern, limit one)', () => {
  const acquire = stateNamed(deployed, 'AcquireLock');

  it('is taken by a conditional write before any job runs, after the input is checked', () => {
    expect(happyPath(deployed).slice(0, 6)).toEqual([
      'ApplyDefaults',
      'MergeInput',
      'CheckInput',
      'CheckConsentPolicy',
      'AcquireLock',
      'ChooseFirstJob',
    ]);
    expect(acquire.Resource).toBe(DYNAMODB_RESOURCES.updateItem);
    expect(acquire.Parameters).toMatchObject({
      ConditionExpression: 'attribute_not_exists(#owner) OR #owner = :owner',
      ExpressionAttributeNames: { '#owner': 'owner' },
      ExpressionAttributeValues: { ':owner': { 'S.$': '$$.Execution.Id' } },
    });
    // Without AcquireLock's success (its Next), no job can be reached.
    const withoutLock: AslDefinition = structuredClone(deployed);
    delete stateNamed(withoutLock, 'AcquireLock').Next;
    const reached = reachable(withoutLock, withoutLock.StartAt);
    for (const [name] of glueTasks) expect(reached.has(name)).toBe(false);
  });

  it('makes a second execution wait and try again while another holds it', () => {
    expect(acquire.Catch![0]).toMatchObject({
      ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'],
      Next: 'ReadLockHolder',
    });
    expect(acquire.Retry![0]).toEqual({ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], MaxAttempts: 0 });
    expect(happyPath(deployed, 'ReadLockHolder').slice(0, 3)).toEqual(['ReadLockHolder', 'WaitForLock', 'AcquireLock']);
    expect(stateNamed(deployed, 'ReadLockHolder').Next).toBe('WaitForLock');
    expect(stateNamed(deployed, 'ReadLockHolder').Catch?.[0]?.Next).toBe('WaitForLock');
    expect(stateNamed(deployed, 'WaitForLock')).toMatchObject({ Type: 'Wait', Next: 'AcquireLock' });
  });

  it('is released on every way out of the execution that Step Functions can catch', () => {
    const released = new Set(['ReleaseLock', 'ReleaseLockAfterFailure']);
    for (const name of released)
      expect(stateNamed(deployed, name)).toMatchObject({
        Resource: DYNAMODB_RESOURCES.updateItem,
        Parameters: {
          UpdateExpression: expect.stringMatching(/^REMOVE #owner\b/),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeValues: { ':owner': { 'S.$': '$$.Execution.Id' } },
        },
      });
    // From the moment the lock is held, every terminal state lies behind a release.
    const cut: AslDefinition = structuredClone(deployed);
    for (const name of released) cut.States[name] = { Type: 'Pass', End: true, Comment: 'released' };
    for (const name of reachable(cut, 'ChooseFirstJob')) {
      const state = stateNamed(cut, name);
      if (isTerminal(state)) expect({ name, released: state.Comment === 'released' }).toEqual({ name, released: true });
    }
    // Timeouts, aborts and uncatchable errors end the execution without passing there: the
    // lock-cleanup state machine, started by EventBridge, releases the lock of such an execution.
    const release = stateNamed(cleanup, cleanup.StartAt);
    expect(release).toMatchObject({
      Resource: DYNAMODB_RESOURCES.updateItem,
      Parameters: {
        UpdateExpression: stateNamed(deployed, 'ReleaseLock').Parameters!.UpdateExpression,
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeValues: { ':owner': { 'S.$': '$.detail.executionArn' } },
      },
    });
    // A lock that execution does not hold is left alone, and that is no failure.
    expect(release.Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], Next: 'LockNotHeld' }),
    ]);
    expect(stateNamed(cleanup, 'LockNotHeld').Type).toBe('Succeed');
  });
});

/** The longest a task state can take: its timeout, plus every retry's longest wait (retried calls fail fast). */
function worstCaseSeconds(state: AslState): number {
  let total = state.TimeoutSeconds ?? 0;
  for (const retry of state.Retry ?? []) {
    for (let attempt = 0; attempt < (retry.MaxAttempts ?? 3); attempt++)
      total += Math.min(
        (retry.IntervalSeconds ?? 1) * (retry.BackoffRate ?? 2) ** attempt,
        retry.MaxDelaySeconds ?? Infinity,
      );
  }
  return total;
}

describe('timeouts, retries and Glue job-run queuing tell one story', () => {
  const glueTimeoutSeconds = (_state: AslState) => GLUE_JOB.TimeoutMinutes * 60;
  // The checks run MaxConcurrency at a time: each round at worst a query's and its rows' task times.
  const runChecks = stateNamed(deployed, 'RunChecks');
  const checkStates = Object.values((runChecks.ItemProcessor as AslDefinition).States);
  const checkRounds = Math.ceil(checksFor(LOCAL_DATABASE).length / Number(runChecks.MaxConcurrency ?? 1));
  const ownWork =
    glueTasks.reduce((sum, [, s]) => sum + worstCaseSeconds(s), 0) +
    worstCaseSeconds(stateNamed(deployed, 'PublishRun')) +
    worstCaseSeconds(stateNamed(deployed, 'AuditRunBranches')) +
    worstCaseSeconds(stateNamed(deployed, 'ReadAuditedChecks')) +
    checkRounds * checkStates.reduce((sum, s) => sum + worstCaseSeconds(s), 0) +
    lockTasks(deployed).reduce((sum, [, s]) => sum + worstCaseSeconds(s), 0);

  it("gives each job task time to wait in Glue's queue behind one whole run of the same job, then run its own", () => {
    // With queuing on and MaxConcurrentRuns 1, a run started while another run of the job is active
    // (started by hand, or still stopping after an aborted execution) waits, and the wait counts
    // against the task's TimeoutSeconds; the Glue Timeout counts only the run's own running time.
    for (const [, state] of glueTasks) {
      expect(glueTimeoutSeconds(state)).toBe(30 * 60);
      expect(state.TimeoutSeconds).toBeGreaterThanOrEqual(2 * glueTimeoutSeconds(state) + 300);
    }
  });

  it('lets an execution wait for the lock through one whole other execution, then do its own', () => {
    expect(deployed.TimeoutSeconds).toBeGreaterThanOrEqual(2 * ownWork);
    expect(deployed.TimeoutSeconds).toBeLessThanOrEqual(3 * ownWork); // and no more: a stuck run must end
  });

  it('keeps the longest lock wait within the 25,000 events of an execution history', () => {
    // each round: AcquireLock fails (5 events), ReadLockHolder (5), WaitForLock (2)
    const rounds = deployed.TimeoutSeconds! / (stateNamed(deployed, 'WaitForLock').Seconds as number);
    expect(rounds * 12).toBeLessThan(25_000);
  });
});

describe('the job order, derived from the inputs each SQL file declares', () => {
  const jobs = loadJobs();
  const producer = new Map<TableName, JobName>(jobs.map((j) => [j.target, j.name]));
  /** Jobs each job needs to have run before it: the producers of the tables its SQL reads. */
  const needs = new Map(
    jobs.map((j) => [j.name, j.reads.filter((t) => !isLandingTable(t)).map((t) => producer.get(t)!)]),
  );
  /** Every job that must rerun when a landing table changes: its readers and, transitively, theirs. */
  function affectedBy(landingTable: TableName): Set<JobName> {
    const affected = new Set(jobs.filter((j) => j.reads.includes(landingTable)).map((j) => j.name));
    let grew = true;
    while (grew) {
      grew = false;
      for (const job of jobs) {
        if (!affected.has(job.name) && needs.get(job.name)!.some((n) => affected.has(n))) {
          affected.add(job.name);
          grew = true;
        }
      }
    }
    return affected;
  }

  it('runs every job after the jobs whose tables it reads', () => {
    const order = glueTasksFrom(deployed, deployed.StartAt).map(jobOf);
    expect(order).toEqual([...JOB_NAMES]); // each job once: the publish task is no job of its own
    for (const [job, needed] of needs) {
      for (const r of needed) expect(order.indexOf(r)).toBeLessThan(order.indexOf(job));
    }
  });

  it.each([
    ['all', null],
    ['customer', 'customer_landing'],
    ['accelerometer', 'accelerometer_landing'],
    ['step_trainer', 'step_trainer_landing'],
  ] as const)('enters at the right job for from = %s', (from, landingTable) => {
    const choice = stateNamed(deployed, 'ChooseFirstJob');
    const rule = choice.Choices!.find((c) => JSON.stringify(c).includes(`"StringEquals":"${from}"`))!;
    const ran = glueTasksFrom(deployed, rule.Next).map(jobOf);
    const expected = landingTable ? [...affectedBy(landingTable)] : [...JOB_NAMES];
    expect(new Set(ran)).toEqual(new Set(expected));
    // What `stedi run --from` checks its --fail jobs against (a fault for a job not run is a usage error).
    expect(jobsRunFrom(from)).toEqual(ran);
  });
});

describe('the state machine diagram (docs/state-machine.md)', () => {
  it('is the Mermaid rendering of the ASL file', () => {
    const page = readFileSync(path.join(projectRoot(), 'docs', 'state-machine.md'), 'utf8');
    const block = /<!-- state-machine:start -->\n```mermaid\n([\s\S]*?)\n```\n<!-- state-machine:end -->/.exec(page);
    expect(block?.[1]).toBe(toMermaid(local));
  });
});

// The failure path run on its own (aws-local-stepfunctions) with error outputs of every shape a
// Catch can hand it, including ones the fault injection cannot make: it must always publish one
// alert, release the lock and end in PipelineFailed with the caught error's name.
describe('the failure path, run on every error shape', () => {
  const jobRun = { Id: 'jr_1', JobName: 'machine_learning_curated', JobRunState: 'FAILED', ErrorMessage: 'boom' };
  it.each([
    [
      'a failed job run',
      { Error: 'States.TaskFailed', Cause: JSON.stringify(jobRun) },
      'job run jr_1 ended FAILED: boom',
    ],
    ['no Cause at all (States.Timeout)', { Error: 'States.Timeout' }, '(none given)'],
    ['an empty Cause', { Error: 'Custom.Error', Cause: '' }, ''],
    ['a Cause in plain words', { Error: 'States.TaskFailed', Cause: 'it broke' }, 'it broke'],
    [
      'a job run without ErrorMessage',
      { Error: 'States.TaskFailed', Cause: '{"Id":"jr_2","JobRunState":"FAILED"}' },
      '{"Id":"jr_2","JobRunState":"FAILED"}',
    ],
    [
      'a job run whose Id is no string',
      { Error: 'States.TaskFailed', Cause: '{"Id":7,"JobRunState":"FAILED","ErrorMessage":"x"}' },
      '{"Id":7,"JobRunState":"FAILED","ErrorMessage":"x"}',
    ],
    [
      'a job run cut short',
      { Error: 'States.TaskFailed', Cause: '{"Id":"jr_3","JobRunState":"FAILED","ErrorMessage":"long' },
      '{"Id":"jr_3","JobRunState":"FAILED","ErrorMessage":"long',
    ],
    [
      'a run JSON under another error name',
      { Error: 'Glue.Whatever', Cause: JSON.stringify(jobRun) },
      JSON.stringify(jobRun),
    ],
  ])('%s', async (_, failure, cause) => {
    const definition: AslDefinition = { ...copyOf(local), StartAt: 'MachineLearningCuratedFailed' };
    const published: { Subject: string; Message: string }[] = [];
    const released: unknown[] = [];
    const execution = startLocal(
      definition,
      {
        [SNS_PUBLISH_RESOURCE]: (input) => {
          published.push(input as { Subject: string; Message: string });
          return Promise.resolve({ MessageId: '1' });
        },
        [DYNAMODB_RESOURCES.updateItem]: (input) => {
          released.push(input);
          return Promise.resolve({});
        },
        [GLUE_SYNC_RESOURCE]: () => Promise.reject(new Error('no job runs on the failure path')),
        ...noGlueCalls('on the failure path'),
        [DYNAMODB_RESOURCES.getItem]: () => Promise.reject(new Error('no lock reads on the failure path')),
        [ATHENA_START_QUERY_SYNC_RESOURCE]: () => Promise.reject(new Error('no check runs on the failure path')),
        [ATHENA_GET_QUERY_RESULTS_RESOURCE]: () => Promise.reject(new Error('no check runs on the failure path')),
      },
      { request: { from: 'all', reason: 'test', files: [] }, failure },
      { executionName: 'shape', executionArn: 'arn:shape' },
    );
    const error = await execution.result.then(
      () => undefined,
      (e: Error & { cause?: Error }) => e.cause ?? e,
    );
    expect(error?.name).toBe(failure.Error);
    expect(error?.message).toBe(cause);
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe('STEDI pipeline failed: machine_learning_curated');
    expect(published[0]?.Message).toContain(`Error: ${failure.Error}\nCause: ${cause}\n`);
    expect(released).toHaveLength(1);
  });
});

describe('the data checks after the last job', () => {
  const checks = checksFor(LOCAL_DATABASE);
  const runChecks = stateNamed(deployed, 'RunChecks');
  const iteration = runChecks.ItemProcessor as AslDefinition;

  it("audits the run's branches, runs every check of glue/checks/ with the SQL the audit gives it, then publishes, before the lock is released", () => {
    const audit = stateNamed(deployed, 'AuditRunBranches');
    expect(audit.Resource).toBe(ATHENA_START_QUERY_SYNC_RESOURCE);
    expect(audit.Parameters).toEqual({
      QueryString: `deployed-${AUDIT_SQL_SUBSTITUTION}`,
      'ExecutionParameters.$': "States.Array(States.Format('\\'{}\\'', $.branch))",
      WorkGroup: 'deployed-AthenaWorkGroupName',
      QueryExecutionContext: { Catalog: 'AwsDataCatalog', Database: 'deployed-GlueDatabaseName' },
    });
    expect(stateNamed(local, 'AuditRunBranches').Parameters!.QueryString).toBe(auditRunBranchesSqlFor(LOCAL_DATABASE));
    const read = stateNamed(deployed, 'ReadAuditedChecks');
    expect(read).toMatchObject({
      Resource: ATHENA_GET_QUERY_RESULTS_RESOURCE,
      Parameters: { 'QueryExecutionId.$': '$.audit.QueryExecutionId', MaxResults: 2 },
      ResultSelector: { 'row.$': '$.ResultSet.Rows[1].Data' },
    });
    // One column a check, in the audit query's order: the check's name and its SQL on the run's branches.
    const list = stateNamed(deployed, 'ListChecks').Parameters!.items as { check: string; 'sql.$': string }[];
    expect(list.map((c) => c.check)).toEqual(checks.map((c) => c.name));
    for (const [i, c] of list.entries()) expect(c['sql.$']).toBe(`$.audit.row[${i}].VarCharValue`);
    expect(runChecks).toMatchObject({ Type: 'Map', ItemsPath: '$.checkList.items', ResultPath: '$.checks' });
    // On every way to success, from each entry point: audit, checks and publish after the last job, before ReleaseLock.
    for (const from of ['CustomerLandingToTrusted', 'AccelerometerLandingToTrusted', 'StepTrainerLandingToTrusted']) {
      const path = happyPath(deployed, from);
      const order = ['MachineLearningCurated', 'AuditRunBranches', 'ReadAuditedChecks', 'ListChecks', 'RunChecks'];
      order.push('ChecksPassed', 'PublishRun', 'CheckPublishRun', 'ReleaseLock', 'Summarise');
      expect(path.filter((s) => order.includes(s))).toEqual(order);
    }
    expect(stateNamed(deployed, 'Summarise').Parameters!['checks.$']).toBe('$.checks');
  });

  it("writes every job's table on the run's branch, and publishes each derived table with the last job's Glue job", () => {
    expect(stateNamed(deployed, 'MergeInput').Parameters!['branch.$']).toBe(
      "States.Format('run_{}', $$.Execution.Name)",
    );
    for (const [, task] of glueTasks)
      expect(task.Parameters!.Arguments).toMatchObject({ '--wap_branch.$': '$.branch' });
    const publish = stateNamed(deployed, 'PublishRun');
    expect(publish.Parameters).toEqual({
      JobName: 'deployed-MachineLearningCuratedJobName',
      Arguments: {
        '--run_id.$': '$$.Execution.Name',
        '--consent_policy': 'deployed-ConsentPolicy',
        '--wap_branch.$': '$.branch',
        '--publish_tables': DERIVED_TABLES.join(','),
      },
    });
    expect(stateNamed(deployed, 'ChecksPassed').Choices![0]!.Next).toBe('PublishRun');
    // Its failures take the alert path (a timeout stops its run first), as a job's do.
    expect(publish.Catch!.map((c) => c.Next)).toEqual(['PublishRunTimedOut', 'PublishRunFailed']);
    expect(reachable(deployed, 'PublishRunTimedOut')).toContain('StopTimedOutJobRun');
    expect(stateNamed(deployed, 'CheckPublishRun').Default).toBe('PublishRunNotSucceeded');
  });

  it("queries Athena in the stack's workgroup and database (startQueryExecution.sync), then reads the first rows", () => {
    const start = stateNamed(iteration, iteration.StartAt);
    expect(start.Resource).toBe(ATHENA_START_QUERY_SYNC_RESOURCE);
    expect(start.Parameters).toEqual({
      'QueryString.$': '$.sql',
      WorkGroup: 'deployed-AthenaWorkGroupName',
      QueryExecutionContext: { Catalog: 'AwsDataCatalog', Database: 'deployed-GlueDatabaseName' },
    });
    expect(start.TimeoutSeconds).toBeGreaterThan(0);
    const read = stateNamed(iteration, start.Next!);
    expect(read.Resource).toBe(ATHENA_GET_QUERY_RESULTS_RESOURCE);
    expect(read.Parameters).toEqual({ 'QueryExecutionId.$': '$.query.QueryExecutionId', MaxResults: 6 });
    for (const task of [start, read]) {
      const retried = task.Retry!.flatMap((r) => r.ErrorEquals);
      expect(retried.every((e) => e.startsWith('Athena.'))).toBe(true); // never a failed query
      for (const r of task.Retry!) expect(r.JitterStrategy).toBe('FULL');
    }
  });

  it('sends a failed check, and checks that could not run, down the one alert path, which releases the lock', () => {
    for (const state of [
      runChecks,
      stateNamed(deployed, 'AuditRunBranches'),
      stateNamed(deployed, 'ReadAuditedChecks'),
    ])
      expect(state.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'DataChecksFailed' }]);
    const failed = reachable(deployed, 'DescribeFailedChecks');
    for (const s of [
      'DataChecksFailed',
      'DescribeFailure',
      'NotifyFailure',
      'ReleaseLockAfterFailure',
      'PipelineFailed',
    ])
      expect(failed).toContain(s);
    expect(failed).not.toContain('Summarise');
  });

  /** A check's SQL as the audit query gives it for the run's branch (here: marked, to tell it from the file's). */
  const audited = (sql: string, branch: string) => `${sql}\n-- on ${branch}`;

  /**
   * Runs the definition from AuditRunBranches with Athena answering the audit query (each check's SQL, marked)
   * and each check's SQL from `answers`, and the publish run ending `publishState`.
   */
  async function runChecksWith(answers: Record<string, string[][] | Error>, publishState = 'SUCCEEDED') {
    const definition: AslDefinition = { ...copyOf(local), StartAt: 'AuditRunBranches' };
    const published: { Subject: string; Message: string }[] = [];
    const released: unknown[] = [];
    const publishRuns: { JobName: string; Arguments: Record<string, string> }[] = [];
    const auditParameters: unknown[] = [];
    const queries = new Map<string, string[][]>();
    const execution = startLocal(
      definition,
      {
        [ATHENA_START_QUERY_SYNC_RESOURCE]: (input) => {
          const { QueryString: sql, ExecutionParameters } = input as {
            QueryString: string;
            ExecutionParameters?: string[];
          };
          const id = `q-${queries.size}`;
          if (sql === auditRunBranchesSqlFor(LOCAL_DATABASE)) {
            auditParameters.push(ExecutionParameters);
            queries.set(id, [checks.map((c) => c.name), checks.map((c) => audited(c.sql, 'run_checks'))]);
            return Promise.resolve({ QueryExecution: { QueryExecutionId: id, Status: { State: 'SUCCEEDED' } } });
          }
          const name = checks.find((c) => audited(c.sql, 'run_checks') === sql)!.name;
          const answer = answers[name] ?? [['x']];
          if (answer instanceof Error) return Promise.reject(answer);
          queries.set(id, answer);
          return Promise.resolve({ QueryExecution: { QueryExecutionId: id, Status: { State: 'SUCCEEDED' } } });
        },
        [ATHENA_GET_QUERY_RESULTS_RESOURCE]: (input) => {
          const { QueryExecutionId, MaxResults } = input as { QueryExecutionId: string; MaxResults: number };
          const rows = queries.get(QueryExecutionId)!.slice(0, MaxResults);
          return Promise.resolve({
            ResultSet: { Rows: rows.map((r) => ({ Data: r.map((v) => ({ VarCharValue: v })) })) },
          });
        },
        [SNS_PUBLISH_RESOURCE]: (input) => {
          published.push(input as { Subject: string; Message: string });
          return Promise.resolve({ MessageId: '1' });
        },
        [DYNAMODB_RESOURCES.updateItem]: (input) => {
          released.push(input);
          return Promise.resolve({});
        },
        [GLUE_SYNC_RESOURCE]: (input) => {
          publishRuns.push(input as { JobName: string; Arguments: Record<string, string> });
          return Promise.resolve({ Id: 'jr_publish', JobRunState: publishState });
        },
        ...noGlueCalls('in this test'),
        [DYNAMODB_RESOURCES.getItem]: () => Promise.reject(new Error('no lock reads in this test')),
      },
      { request: { from: 'all', reason: 'test', files: [] }, branch: 'run_checks', jobs: {} },
      { executionName: 'checks', executionArn: 'arn:checks' },
    );
    const outcome = await execution.result.then(
      (output) => ({ output: output as Record<string, unknown>, error: undefined }),
      (e: Error & { cause?: Error }) => ({ output: undefined, error: e.cause ?? e }),
    );
    return { ...outcome, published, released, publishRuns, auditParameters };
  }

  it("succeeds when no check returns a row on the run's branches, then publishes the run, listing each check in the output", async () => {
    const { output, error, published, released, publishRuns, auditParameters } = await runChecksWith({});
    expect(error).toBeUndefined();
    expect(auditParameters).toEqual([["'run_checks'"]]); // the branch, as an Athena string parameter
    expect(output!.checks).toEqual(checks.map((c) => ({ check: c.name, failed: false })));
    expect(publishRuns).toHaveLength(1);
    expect(publishRuns[0]).toMatchObject({
      JobName: 'machine_learning_curated',
      Arguments: { '--wap_branch': 'run_checks', '--publish_tables': DERIVED_TABLES.join(',') },
    });
    expect(published).toEqual([]);
    expect(released).toHaveLength(1);
  });

  it('alerts, releases the lock and fails when the publish run does not succeed: main stays where it was', async () => {
    const { error, published, released, publishRuns } = await runChecksWith({}, 'STOPPED');
    expect(error?.name).toBe('JobRunNotSucceeded');
    expect(publishRuns).toHaveLength(1);
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe('STEDI pipeline failed: publish');
    expect(published[0]?.Message).toContain('job run jr_publish ended STOPPED');
    expect(released).toHaveLength(1);
  });

  it('fails with DataCheckFailed and one alert naming the check and its first rows when a check returns rows', async () => {
    const rows = [['customerId', 'row_count'], ...Array.from({ length: 9 }, (_, i) => [`id-${i}`, '2'])];
    const { error, published, released, publishRuns } = await runChecksWith({
      customer_curated_unique_customer_id: rows,
    });
    expect(error?.name).toBe('DataCheckFailed');
    expect(publishRuns).toEqual([]); // main is left where it was
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe('STEDI pipeline failed: data_checks');
    const message = required(published[0], 'the alert').Message;
    // The failed checks first, by name, then every check with the first rows of each failed one.
    expect(message).toContain('Cause: Data checks failed: ["customer_curated_unique_customer_id"].');
    const cause = required(/names\): (\[.*\])\n/s.exec(message)?.[1], 'its Cause');
    const reported = JSON.parse(cause) as { check: string; failed: boolean; rows?: unknown[] }[];
    expect(reported.filter((c) => c.failed).map((c) => c.check)).toEqual(['customer_curated_unique_customer_id']);
    const failedRows = reported.find((c) => c.failed)!.rows!;
    expect(failedRows).toHaveLength(6); // the column names and the first five rows
    expect(failedRows[1]).toEqual({ Data: [{ VarCharValue: 'id-0' }, { VarCharValue: '2' }] });
    expect(published[0]?.Message).toContain(
      'The tables of this run are not published: readers keep the previous ones (on AWS each table keeps its main snapshot',
    );
    expect(released).toHaveLength(1);
  });

  it('fails with the query error, through the same alert, when a check cannot run', async () => {
    const broken = Object.assign(new Error('{"QueryExecution":{"Status":{"State":"FAILED"}}}'), {
      name: 'States.TaskFailed',
    });
    const { error, published, released } = await runChecksWith({ tables_not_emptied: broken });
    expect(error?.name).toBe('States.TaskFailed');
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe('STEDI pipeline failed: data_checks');
    expect(published[0]?.Message).toContain('"State":"FAILED"');
    expect(released).toHaveLength(1);
  });
});

// Step Functions' TimeoutSeconds on a task (States.Timeout) ends the wait, not Glue's run: a run still queued or
// running could start or go on after the lock is released and overlap the next execution. The timeout path finds
// this execution's run of the job (GetJobRuns; the run carries the execution name as --run_id), stops it
// (BatchStopJobRun), polls it (GetJobRun) until it is in a state it never leaves ("AWS Glue job run statuses"),
// and only then alerts and releases. Run here with aws-local-stepfunctions over the Glue API model of
// src/stand-ins/glue/local-glue.ts.
describe('a Glue task that times out: its run is stopped, and has ended, before the lock is released', () => {
  const JOB = 'machine_learning_curated';
  const EXECUTION = 'timed-out-execution';
  const run = (id: string, state: string, runId?: string): LocalJobRun => ({
    Id: id,
    JobName: JOB,
    JobRunState: state,
    Arguments: runId === undefined ? {} : { '--run_id': runId, '--consent_policy': 'any' },
  });

  async function timeOutWith(runs: LocalJobRun[], glue = new LocalGlueJobRuns()) {
    for (const r of runs) glue.record(r);
    const order: string[] = [];
    const handlers = glue.handlers();
    const traced = Object.fromEntries(
      Object.entries(handlers).map(([resource, handler]) => [
        resource,
        async (input: unknown) => {
          const output = await handler(input);
          const last = required(glue.calls.at(-1), 'the call just made');
          order.push(`${last.action}${last.states ? ` ${last.states.join(',')}` : ''}`);
          return output;
        },
      ]),
    );
    const definition: AslDefinition = { ...copyOf(local), StartAt: 'MachineLearningCurated' };
    const execution = startLocal(
      definition,
      {
        [GLUE_SYNC_RESOURCE]: () => {
          order.push('task timed out');
          return Promise.reject(Object.assign(new Error(), { name: 'States.Timeout', message: undefined }));
        },
        ...traced,
        [SNS_PUBLISH_RESOURCE]: () => {
          order.push('alert');
          return Promise.resolve({ MessageId: '1' });
        },
        [DYNAMODB_RESOURCES.updateItem]: () => {
          order.push('lock released');
          return Promise.resolve({});
        },
        [DYNAMODB_RESOURCES.getItem]: () => Promise.reject(new Error('no lock reads here')),
        [ATHENA_START_QUERY_SYNC_RESOURCE]: () => Promise.reject(new Error('no checks here')),
        [ATHENA_GET_QUERY_RESULTS_RESOURCE]: () => Promise.reject(new Error('no checks here')),
      },
      { request: { from: 'step_trainer', reason: 'test', files: [] }, branch: `run_${EXECUTION}`, jobs: {} },
      { executionName: EXECUTION, executionArn: `arn:${EXECUTION}`, retryIntervalMs: 1, waitMs: 5 },
    );
    const error = await execution.result.then(
      () => undefined,
      (e: Error & { cause?: Error }) => e.cause ?? e,
    );
    return { error, order, glue };
  }

  it.each(['RUNNING', 'WAITING', 'STARTING'])(
    'stops its run when the task times out while the run is %s, waits until Glue reports it STOPPED, then alerts and releases',
    async (state) => {
      const { error, order, glue } = await timeOutWith([run('jr_own', state, EXECUTION)]);
      expect(error?.name).toBe('States.Timeout');
      expect(order).toEqual([
        'task timed out',
        `GetJobRuns ${state}`,
        'BatchStopJobRun',
        'GetJobRun STOPPING',
        'GetJobRun STOPPED',
        'alert',
        'lock released',
      ]);
      expect(glue.of(JOB).map((r) => r.JobRunState)).toEqual(['STOPPED']);
    },
  );

  it("stops only this execution's run: a run started by hand (no --run_id) or by another execution is left alone", async () => {
    const { order, glue } = await timeOutWith([
      run('jr_earlier', 'SUCCEEDED', 'an-earlier-execution'),
      run('jr_own', 'RUNNING', EXECUTION),
      run('jr_by_hand', 'WAITING'),
      run('jr_other', 'RUNNING', 'another-execution'),
    ]);
    expect(glue.calls.filter((c) => c.action === 'BatchStopJobRun').map((c) => c.input)).toEqual([
      { JobName: JOB, JobRunIds: ['jr_own'] },
    ]);
    expect(Object.fromEntries(glue.of(JOB).map((r) => [r.Id, r.JobRunState]))).toEqual({
      jr_earlier: 'SUCCEEDED',
      jr_own: 'STOPPED',
      jr_by_hand: 'WAITING',
      jr_other: 'RUNNING',
    });
    expect(order.slice(-2)).toEqual(['alert', 'lock released']);
  });

  it('waits for a run already STOPPING without stopping it again', async () => {
    const { order } = await timeOutWith([run('jr_own', 'STOPPING', EXECUTION)]);
    expect(order).toEqual([
      'task timed out',
      'GetJobRuns STOPPING',
      'GetJobRun STOPPING',
      'GetJobRun STOPPED',
      'alert',
      'lock released',
    ]);
  });

  it.each(['SUCCEEDED', 'FAILED', 'TIMEOUT', 'STOPPED'])(
    'stops nothing and releases at once when the run has ended (%s) by the time it is looked up',
    async (state) => {
      const { order } = await timeOutWith([run('jr_own', state, EXECUTION)]);
      expect(order).toEqual(['task timed out', `GetJobRuns ${state}`, 'alert', 'lock released']);
    },
  );

  it('still alerts and releases when Glue cannot be asked (after its retries): the execution ends FAILED with States.Timeout', async () => {
    const glue = new LocalGlueJobRuns();
    glue.getJobRuns = () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'Glue.ThrottlingException' });
    };
    const { error, order } = await timeOutWith([run('jr_own', 'RUNNING', EXECUTION)], glue);
    expect(error?.name).toBe('States.Timeout');
    expect(order.slice(-2)).toEqual(['alert', 'lock released']);
  });

  it('polls only while the run is in a state it leaves by itself (AWS Glue guide, "AWS Glue job run statuses")', () => {
    const iteration = stateNamed(deployed, 'StopTimedOutJobRun').ItemProcessor as AslDefinition;
    const poll = stateNamed(iteration, 'IsJobRunStillActive');
    expect(JSON.stringify(poll.Choices)).toBe(
      JSON.stringify([
        {
          Or: ACTIVE_JOB_RUN_STATES.map((s) => ({ Variable: '$.now.JobRunState', StringEquals: s })),
          Next: 'WaitForJobRunToStop',
        },
      ]),
    );
    expect(stateNamed(iteration, 'StopJobRun').Resource).toBe(GLUE_BATCH_STOP_JOB_RUN_RESOURCE);
    expect(stateNamed(deployed, 'FindTimedOutJobRuns').Resource).toBe(GLUE_GET_JOB_RUNS_RESOURCE);
    expect(stateNamed(iteration, 'ReadStoppingJobRun').Resource).toBe(GLUE_GET_JOB_RUN_RESOURCE);
    // Each job's timeout names that job's Glue job, substituted as the task's JobName is.
    for (const [name, state] of glueTasks) {
      const timedOut = stateNamed(deployed, required(state.Catch?.[0]?.Next, 'the timeout catcher'));
      expect((timedOut.Result as { jobName: string }).jobName).toBe(state.Parameters!.JobName);
      expect(timedOut.Next).toBe('FindTimedOutJobRuns');
      expect(name).toBeTruthy();
    }
  });
});
