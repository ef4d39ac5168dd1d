import './promise-with-resolvers'; // before aws-local-stepfunctions: see the file
import './unused-aws-deps'; // likewise
import { ExecutionError, StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ConsentPolicy, JobName, isConsentPolicy, isJobName } from '../pipeline';
import type { JobResult, RunParameters } from '../local/engine';
import { LocalDynamoDb } from '../stand-ins/dynamodb/dynamodb';
import { DynamoDbError, FileItemStore } from '../stand-ins/dynamodb/items';
import type { Lake, LakeSnapshot } from '../local/lake';
import { FaultInjection, isJobRunFaultState, taskErrorOf } from './faults';
import { LOCAL_DATABASE, checkSqlSubstitutions, checksFor } from '../checks/definitions';
import { LakeCheckSession } from '../checks/lake-session';
import { chooseConsentPolicy } from '../local/consent';
import { ATHENA_GET_QUERY_RESULTS_RESOURCE, ATHENA_START_QUERY_SYNC_RESOURCE, localAthena } from './local-athena';
import { LocalGlueJobRuns } from './local-glue';
import {
  AslState,
  DYNAMODB_RESOURCES,
  GLUE_SYNC_RESOURCE,
  LOCK_CLEANUP_ASL_FILE,
  SNS_PUBLISH_RESOURCE,
  jobOfSubstitution,
  readAslText,
  substitute,
  substitutionNames,
} from './definition';

export interface PipelineInput {
  from?: string;
  reason?: string;
  files?: string[];
  /** The consent policy the run expects: the state machine refuses one that is not the deployed policy. */
  consentPolicy?: string;
}

/** How a Glue job run ends (GetJobRun's JobRunState). */
export type JobRunState = 'SUCCEEDED' | 'FAILED' | 'TIMEOUT' | 'ERROR' | 'STOPPED';

export interface JobRun {
  name: JobName;
  status: JobRunState;
  rowsOut: number;
  durationMs: number;
  attempts: number;
  result?: JobResult;
}

export interface Alert {
  topicArn: string;
  subject: string;
  message: string;
  execution: string;
  publishedAt: string;
}

export type ExecutionEvent =
  | { type: 'state-entered'; state: string }
  | { type: 'check-finished'; check: string; violations?: number; error?: string }
  | { type: 'job-finished'; run: JobRun }
  | { type: 'job-failed'; job: JobName; error: string; cause: string }
  | { type: 'state-retried'; state: string; attempt: number }
  | { type: 'alert'; alert: Alert };

export interface TaskFailure {
  state: string;
  error: string;
  cause: string;
}

export interface ExecutionResult {
  status: 'SUCCEEDED' | 'FAILED';
  executionName: string;
  /** $$.Execution.Id: the owner the pipeline lock records. */
  executionArn?: string;
  jobs: JobRun[];
  output?: unknown;
  error?: { name: string; cause: string };
  alerts: Alert[];
  /** Every task failure the execution saw, retried or not: tests check each was an injected one. */
  taskFailures: TaskFailure[];
}

/**
 * What the Glue tasks run on: the DuckDB engine (src/local/engine.ts) or the Glue engine, glue/run_sql_job.py
 * on local Spark (src/glue-engine/). `lake` is where the job's tables are read from by the data checks.
 */
export interface JobEngine {
  readonly lake: Lake;
  /** Opens the execution's run under its consent policy (write, audit, publish where the engine has it). */
  beginRun(runId: string, consentPolicy: ConsentPolicy): Promise<void>;
  /** What the run's checks read: the lake with the run's tables in it. */
  view(): Promise<LakeSnapshot>;
  /** The execution succeeded (every check passed): its tables become what readers see. */
  publishRun(): void;
  /** The execution failed: readers keep what they had, where the engine can keep it. */
  abortRun(): void;
  runJob(
    job: JobName,
    params: RunParameters & {
      /** The task's Arguments (statemachines/pipeline.asl.json), as glue:startJobRun passes them. */
      taskArguments?: Record<string, string>;
      jobRunId?: string;
    },
  ): Promise<JobResult>;
}

export interface LocalRunOptions {
  engine: JobEngine;
  executionName: string;
  input: PipelineInput;
  /**
   * The consent policy asked for; by default the lake's (chooseConsentPolicy): another one is refused
   * with ConsentPolicyError unless `changeConsent`, which runs every job under it.
   */
  consentPolicy?: ConsentPolicy;
  changeConsent?: boolean;
  piiSalt: string;
  /** Appends each alert as a JSON line (the lake's _alerts.jsonl). */
  alertsFile: string;
  faults?: FaultInjection[];
  /** Local wait before each retry, in milliseconds (AWS waits seconds to minutes). */
  retryIntervalMs?: number;
  /** Local time of the WaitForLock state, in milliseconds (60 s on AWS). */
  lockWaitMs?: number;
  /** Where the lock states' DynamoDB calls go; by default the lake's lock table (lockTableFor). */
  dynamoDb?: LocalDynamoDb;
  /** The job runs the execution starts, which the timeout path lists, stops and polls; by default its own. */
  glueJobRuns?: LocalGlueJobRuns;
  onEvent?: (event: ExecutionEvent) => void;
}

export const LOCAL_ALERTS_TOPIC = 'arn:aws:sns:local:000000000000:stedi-pipeline-alerts';
/** The lock table's name in local runs (on AWS: the stack's PipelineLockTable). */
export const LOCAL_LOCK_TABLE = 'stedi-pipeline-lock';
export const LOCK_TABLE_PARTITION_KEY = 'LockName';
/** The one item of the lock table: the pipeline's lock (its key in statemachines/*.asl.json). */
export const LOCK_NAME = 'pipeline';
const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:local:000000000000:stateMachine:stedi-pipeline';

/** $$.Execution.Id of a local execution, shaped as AWS shapes execution ARNs. */
export function localExecutionArn(executionName: string): string {
  return `${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

/** The lake's lock table: a local DynamoDB table in <lake>/_dynamodb/, used under the lake lock. */
export function lockTableFor(lake: Lake): LocalDynamoDb {
  return new LocalDynamoDb([
    {
      definition: { name: LOCAL_LOCK_TABLE, partitionKey: LOCK_TABLE_PARTITION_KEY },
      store: new FileItemStore(lake.path(`_dynamodb/${LOCAL_LOCK_TABLE}.json`)),
    },
  ]);
}

/** The substitutions `stedi run` makes: each Glue job is named after its SQL file. */
export function localSubstitutions(consentPolicy: ConsentPolicy, text = readAslText()): Record<string, string> {
  const values: Record<string, string> = {
    AlertsTopicArn: LOCAL_ALERTS_TOPIC,
    ConsentPolicy: consentPolicy,
    LockTableName: LOCAL_LOCK_TABLE,
    AthenaWorkGroupName: LOCAL_ATHENA_WORKGROUP,
    GlueDatabaseName: LOCAL_DATABASE,
    ...checkSqlSubstitutions(),
  };
  for (const name of substitutionNames(text)) {
    const job = jobOfSubstitution(name);
    if (job) values[name] = job;
  }
  return values;
}

/**
 * An error a Task reports: Step Functions matches Retry and Catch on its name, and its message is
 * the Cause. States.Timeout and States.HeartbeatTimeout have no Cause on AWS, so for those the
 * message is left undefined, and aws-local-stepfunctions' error output then has no Cause either.
 */
export class TaskError extends Error {
  constructor(name: string, cause: string | undefined) {
    super(cause ?? '');
    this.name = name;
    if (cause === undefined) Object.defineProperty(this, 'message', { value: undefined });
  }
}

/** The Cause of an API error as Step Functions' service integrations word it. */
function serviceErrorCause(errorName: string, message: string): string {
  const [service, code] = errorName.split('.', 2);
  return `${message} (Service: ${service === 'Glue' ? 'AWSGlue' : service}; Status Code: 400; Error Code: ${code}; Request ID: local; Proxy: null)`;
}

/** Binds a state machine's DynamoDB tasks to a LocalDynamoDb. */
export function dynamoDbHandlers(dynamoDb: LocalDynamoDb): Record<string, (input: unknown) => Promise<unknown>> {
  const call = (action: (input: never) => Promise<unknown>) => async (input: unknown) => {
    try {
      return await action(input as never);
    } catch (error) {
      if (error instanceof DynamoDbError) throw new TaskError(error.name, error.message);
      throw error;
    }
  };
  return {
    [DYNAMODB_RESOURCES.getItem]: call((i) => dynamoDb.getItem(i)),
    [DYNAMODB_RESOURCES.putItem]: call((i) => dynamoDb.putItem(i)),
    [DYNAMODB_RESOURCES.updateItem]: call((i) => dynamoDb.updateItem(i)),
    [DYNAMODB_RESOURCES.deleteItem]: call((i) => dynamoDb.deleteItem(i)),
  };
}

/**
 * Runs statemachines/pipeline.asl.json with aws-local-stepfunctions: each Glue task bound to the
 * job engine (job name → SQL job), the SNS task to the local alert sink.
 */
export async function runLocalExecution(options: LocalRunOptions): Promise<ExecutionResult> {
  const { engine, executionName, onEvent = () => undefined } = options;
  const consent = chooseConsentPolicy(
    engine.lake,
    (await engine.lake.snapshot()).catalog,
    options.consentPolicy,
    options.changeConsent,
  );
  // A new policy is carried through every table: the run starts from the first job.
  const input = consent.changed ? { ...options.input, from: 'all' } : options.input;
  const text = readAslText();
  const definition = substitute(text, localSubstitutions(consent.policy, text));
  const jobs = new Map<JobName, JobRun>();
  const alerts: Alert[] = [];
  const taskFailures: TaskFailure[] = [];
  const injected = new Map<JobName, number>();
  const glueJobRuns = options.glueJobRuns ?? new LocalGlueJobRuns();

  const jobRunOf = (
    job: JobName,
    attempt: number,
    state: JobRunState | 'RUNNING',
    args: Record<string, string>,
    error?: string,
  ) => ({
    // GetJobRun's JobRun, the output of glue:startJobRun.sync (Step Functions adds JobName)
    Id: `jr_${executionName}_${job}_${attempt}`,
    Attempt: 0,
    JobName: job,
    JobMode: 'SCRIPT',
    Arguments: args,
    JobRunState: state,
    ...(error === undefined ? {} : { ErrorMessage: error }),
    StartedOn: new Date().toISOString(),
    CompletedOn: new Date().toISOString(),
    ExecutionTime: 0,
    GlueVersion: '5.1',
    WorkerType: 'G.1X',
    NumberOfWorkers: 2,
  });

  const runGlueJob = async (input: unknown) => {
    await new Promise((resolve) => setImmediate(resolve)); // let the event log report this state's entry first
    const { JobName: job, Arguments: args = {} } = input as { JobName: string; Arguments?: Record<string, string> };
    if (!isJobName(job))
      throw new TaskError(
        'Glue.EntityNotFoundException',
        serviceErrorCause('Glue.EntityNotFoundException', `Job ${job} not found`),
      );
    const policy = args['--consent_policy'] ?? consent.policy;
    if (!isConsentPolicy(policy))
      throw new TaskError(
        'Glue.InvalidInputException',
        serviceErrorCause('Glue.InvalidInputException', `--consent_policy ${policy} is not any or since-consent`),
      );
    const run: JobRun = jobs.get(job) ?? { name: job, status: 'FAILED', rowsOut: 0, durationMs: 0, attempts: 0 };
    jobs.set(job, run); // a retry updates the job's entry; Map order is the order jobs first ran
    run.attempts++;
    const fault = options.faults?.find((f) => f.job === job);
    const faultsSoFar = injected.get(job) ?? 0;
    if (fault && (fault.times === 'every' || faultsSoFar < fault.times)) {
      injected.set(job, faultsSoFar + 1);
      if (fault.outcome === 'States.Timeout') {
        // The task gave up waiting; Glue's run goes on (queued or running) until something stops it.
        const { CompletedOn: _done, ...running } = jobRunOf(job, run.attempts, 'RUNNING', args);
        glueJobRuns.record(running);
      } else if (isJobRunFaultState(fault.outcome)) {
        glueJobRuns.record(jobRunOf(job, run.attempts, fault.outcome, args));
      }
      const message = `injected fault: ${job} ${isJobRunFaultState(fault.outcome) ? 'ended' : 'failed with'} ${fault.outcome} (attempt ${run.attempts})`;
      if (fault.outcome === 'STOPPED') {
        // glue:startJobRun.sync completes normally for a stopped run: the state machine must look at JobRunState.
        run.status = 'STOPPED';
        onEvent({ type: 'job-failed', job, error: 'STOPPED', cause: message });
        // stopped while it waited in the queue: it never started, so it has no StartedOn or ExecutionTime
        const { StartedOn: _started, ExecutionTime: _time, ...stopped } = jobRunOf(job, run.attempts, 'STOPPED', args);
        return stopped;
      }
      run.status = isJobRunFaultState(fault.outcome) ? fault.outcome : 'FAILED';
      if (isJobRunFaultState(fault.outcome)) {
        onEvent({ type: 'job-failed', job, error: fault.outcome, cause: message });
        throw new TaskError(
          'States.TaskFailed',
          JSON.stringify(jobRunOf(job, run.attempts, fault.outcome, args, message)),
        );
      }
      const { error, cause } = taskErrorOf(fault.outcome, message)!;
      onEvent({ type: 'job-failed', job, error, cause: cause ?? message });
      throw new TaskError(error, cause);
    }
    try {
      const result = await engine.runJob(job, {
        runId: args['--run_id'] ?? executionName,
        consentPolicy: policy,
        piiSalt: options.piiSalt,
        taskArguments: args,
        jobRunId: jobRunOf(job, run.attempts, 'SUCCEEDED', args).Id,
      });
      Object.assign(run, { status: 'SUCCEEDED', rowsOut: result.rowsOut, durationMs: result.durationMs, result });
      glueJobRuns.record(jobRunOf(job, run.attempts, 'SUCCEEDED', args));
      onEvent({ type: 'job-finished', run });
      return { ...jobRunOf(job, run.attempts, 'SUCCEEDED', args), ExecutionTime: Math.round(result.durationMs / 1000) };
    } catch (error) {
      // On AWS the job's exception fails the run: the task fails with States.TaskFailed, the run as its Cause.
      run.status = 'FAILED';
      const message = error instanceof Error ? error.message : String(error);
      glueJobRuns.record(jobRunOf(job, run.attempts, 'FAILED', args, message));
      onEvent({ type: 'job-failed', job, error: 'FAILED', cause: message });
      throw new TaskError('States.TaskFailed', JSON.stringify(jobRunOf(job, run.attempts, 'FAILED', args, message)));
    }
  };

  const publishAlert = async (input: unknown) => {
    const { TopicArn, Subject, Message } = input as { TopicArn: string; Subject: string; Message: string };
    const alert: Alert = {
      topicArn: TopicArn,
      subject: Subject,
      message: Message,
      execution: executionName,
      publishedAt: new Date().toISOString(),
    };
    alerts.push(alert);
    await mkdir(path.dirname(options.alertsFile), { recursive: true });
    await appendFile(options.alertsFile, `${JSON.stringify(alert)}\n`);
    onEvent({ type: 'alert', alert });
    return { MessageId: `local-${alerts.length}` };
  };

  const resources: Record<string, (input: unknown) => Promise<unknown>> = {
    [GLUE_SYNC_RESOURCE]: runGlueJob,
    [SNS_PUBLISH_RESOURCE]: publishAlert,
    ...dynamoDbHandlers(options.dynamoDb ?? lockTableFor(engine.lake)),
    ...athenaHandlers(engine, onEvent),
    ...glueJobRuns.handlers(),
  };
  const executionArn = localExecutionArn(executionName);
  // Write, audit, publish: the jobs stage their tables, the checks read them, and only an execution
  // that succeeds (every check passed) publishes them, all in one commit.
  await engine.beginRun(executionName, consent.policy);
  const execution = startLocal(definition, resources, input as Record<string, unknown>, {
    executionName,
    executionArn,
    retryIntervalMs: options.retryIntervalMs,
    waitMs: options.lockWaitMs,
  });
  const events = (async () => {
    for await (const event of execution.eventLogs) {
      const e = event as {
        type: string;
        state?: { name: string; type: string };
        Error?: string;
        Cause?: string;
        retry?: { attempt: number };
      };
      if (e.type === 'StateEntered' && e.state) onEvent({ type: 'state-entered', state: e.state.name });
      if (e.type === 'StateRetried' && e.state)
        onEvent({ type: 'state-retried', state: e.state.name, attempt: e.retry?.attempt ?? 0 });
      if (e.type === 'StateFailed' && e.state?.type === 'Task')
        taskFailures.push({ state: e.state.name, error: e.Error ?? '', cause: e.Cause ?? '' });
    }
  })();

  try {
    const output = await execution.result;
    await events;
    engine.publishRun();
    return { status: 'SUCCEEDED', executionName, executionArn, jobs: [...jobs.values()], output, alerts, taskFailures };
  } catch (error) {
    engine.abortRun();
    await events.catch(() => undefined);
    const cause = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : (error as Error);
    return {
      status: 'FAILED',
      executionName,
      executionArn,
      jobs: [...jobs.values()],
      error: { name: cause.name, cause: cause.message ?? '' },
      alerts,
      taskFailures,
    };
  }
}

/** The names of the local Athena workgroup and database the data checks' tasks are given. */
export const LOCAL_ATHENA_WORKGROUP = 'local';
export { LOCAL_DATABASE };

/**
 * The state machine's Athena tasks (the data checks) bound to DuckDB over the lake, as the Glue tasks
 * are bound to the local engine: each query sees the tables as they are when it runs.
 */
function athenaHandlers(engine: JobEngine, onEvent: (event: ExecutionEvent) => void) {
  const athena = localAthena(async () => LakeCheckSession.open(engine.lake, await engine.view()), {
    workGroup: LOCAL_ATHENA_WORKGROUP,
    database: LOCAL_DATABASE,
    onQuery: (sql, outcome) => {
      const check = checksFor(LOCAL_DATABASE).find((c) => c.sql === sql)?.name ?? 'query';
      onEvent(
        'rows' in outcome
          ? { type: 'check-finished', check, violations: outcome.rows }
          : { type: 'check-finished', check, error: outcome.error },
      );
    },
  });
  return {
    [ATHENA_START_QUERY_SYNC_RESOURCE]: athena.startQueryExecutionSync,
    [ATHENA_GET_QUERY_RESULTS_RESOURCE]: athena.getQueryResults,
  };
}

/** Every state, those inside Map and Parallel states too: aws-local-stepfunctions binds nested tasks by name. */
function nestedStates(states: Record<string, AslState>): [string, AslState][] {
  return Object.entries(states).flatMap(([name, state]) => {
    const inner = [state.ItemProcessor, state.Iterator, ...((state.Branches as unknown[]) ?? [])] as (
      { States: Record<string, AslState> } | undefined
    )[];
    return [[name, state] as [string, AslState], ...inner.flatMap((p) => (p ? nestedStates(p.States) : []))];
  });
}

/** Starts a local execution of an ASL definition, each Task bound by its Resource. */
export function startLocal(
  definition: ReturnType<typeof substitute>,
  resources: Record<string, (input: unknown) => Promise<unknown>>,
  input: Record<string, unknown>,
  options: { executionName: string; executionArn: string; retryIntervalMs?: number; waitMs?: number },
) {
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  const waitTimeOverrides: Record<string, number> = {};
  for (const [name, state] of nestedStates(definition.States)) {
    if (state.Type === 'Task') {
      const handler = state.Resource ? resources[state.Resource] : undefined;
      if (!handler) throw new Error(`state ${name}: no local binding for resource ${state.Resource}`);
      handlers[name] = handler;
    }
    if (state.Retry) retryIntervalOverrides[name] = options.retryIntervalMs ?? 10;
    if (state.Type === 'Wait') waitTimeOverrides[name] = options.waitMs ?? 200;
  }
  // Validation is the tests' job (asl-validator); skipping it here saves ~200 ms per run.
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { noValidate: true },
  });
  return machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides, waitTimeOverrides },
    context: { Execution: { Name: options.executionName, Id: options.executionArn } },
  });
}

/** Which execution ended how: the detail of EventBridge's "Step Functions Execution Status Change". */
export interface ExecutionStatusChange {
  executionArn: string;
  status: 'FAILED' | 'TIMED_OUT' | 'ABORTED';
}

/**
 * Runs statemachines/release-lock.asl.json locally, as the EventBridge rule starts it on AWS when an
 * execution fails, times out or is aborted: it releases the pipeline lock if that execution holds it.
 * Returns the end state: LockReleased or LockNotHeld.
 */
export async function runLockCleanup(dynamoDb: LocalDynamoDb, change: ExecutionStatusChange): Promise<string> {
  const text = readAslText(LOCK_CLEANUP_ASL_FILE);
  const definition = substitute(text, { LockTableName: LOCAL_LOCK_TABLE });
  const name = `lock-cleanup-${Date.now()}`;
  const event = {
    version: '0',
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: {
      executionArn: change.executionArn,
      stateMachineArn: LOCAL_STATE_MACHINE_ARN,
      name: change.executionArn.split(':').pop(),
      status: change.status,
    },
  };
  const execution = startLocal(definition, dynamoDbHandlers(dynamoDb), event, {
    executionName: name,
    executionArn: localExecutionArn(name),
  });
  let last = '';
  const events = (async () => {
    for await (const e of execution.eventLogs) {
      const entered = e as { type: string; state?: { name: string } };
      if (entered.type === 'StateEntered' && entered.state) last = entered.state.name;
    }
  })();
  await execution.result;
  await events;
  return last;
}
