import './promise-with-resolvers'; // before aws-local-stepfunctions: see the file
import './unused-aws-deps'; // likewise
import { ExecutionError } from 'aws-local-stepfunctions';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ConsentPolicy, JobName, isConsentPolicy, isJobName } from '../../definition/pipeline';
import { isJobRunFaultState, taskErrorOf } from '../../statemachine/faults';
import { LOCAL_DATABASE, checksFor } from '../../checks/definitions';
import { AUDIT_SQL_SUBSTITUTION, auditRunBranchesSqlFor } from '../../checks/audit';
import { LakeCheckSession } from '../../checks/lake-session';
import { chooseConsentPolicy } from '../../lake/consent';
import {
  ATHENA_GET_QUERY_RESULTS_RESOURCE,
  ATHENA_START_QUERY_SYNC_RESOURCE,
  localAthena,
} from '../athena/local-athena';
import { LocalGlueJobRuns } from '../glue/local-glue';
import {
  GLUE_SYNC_RESOURCE,
  SNS_PUBLISH_RESOURCE,
  jobOfSubstitution,
  readAslText,
  substitute,
  substitutionNames,
} from '../../statemachine/definition';
import {
  Alert,
  ExecutionEvent,
  ExecutionResult,
  JobEngine,
  JobRun,
  JobRunState,
  LocalRunOptions,
  TaskFailure,
} from './execution';
import { LOCAL_LOCK_TABLE, dynamoDbHandlers, lockTableFor } from './lock-table';
import { TaskError, serviceErrorCause, localExecutionArn, startLocal } from './start-local';

// Runs statemachines/pipeline.asl.json locally: Glue tasks on the job engine, SNS to the lake's alerts file,
// DynamoDB to the lock table, Athena (the data checks) to DuckDB over the lake.

export const LOCAL_ALERTS_TOPIC = 'arn:aws:sns:local:000000000000:stedi-pipeline-alerts';

/** The substitutions `stedi run` makes: each Glue job is named after its SQL file. */
export function localSubstitutions(consentPolicy: ConsentPolicy, text = readAslText()): Record<string, string> {
  const values: Record<string, string> = {
    AlertsTopicArn: LOCAL_ALERTS_TOPIC,
    ConsentPolicy: consentPolicy,
    LockTableName: LOCAL_LOCK_TABLE,
    AthenaWorkGroupName: LOCAL_ATHENA_WORKGROUP,
    GlueDatabaseName: LOCAL_DATABASE,
    [AUDIT_SQL_SUBSTITUTION]: auditRunBranchesSqlFor(),
  };
  for (const name of substitutionNames(text)) {
    const job = jobOfSubstitution(name);
    if (job) values[name] = job;
  }
  return values;
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
    const publishTables = args['--publish_tables'];
    if (publishTables !== undefined) return publishRun(job, args, publishTables);
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

  // The publish task: a run of the job's Glue job in its publish mode (glue/run_sql_job.py --publish_tables), not
  // one of the pipeline's job runs. As the runner, it refuses --publish_tables without --wap_branch.
  let publishAttempts = 0;
  const publishRun = async (job: JobName, args: Record<string, string>, publishTables: string) => {
    const branch = args['--wap_branch'];
    const id = `jr_${executionName}_publish_${++publishAttempts}`;
    const run = (state: JobRunState, error?: string) => ({
      ...jobRunOf(job, publishAttempts, state, args, error),
      Id: id,
    });
    try {
      if (!branch) throw new Error('--publish_tables needs --wap_branch, the branch whose heads it publishes');
      await engine.publishRun({
        job,
        runId: args['--run_id'] ?? executionName,
        branch,
        tables: publishTables.split(',').filter((t) => t !== ''),
        taskArguments: args,
        jobRunId: id,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      glueJobRuns.record(run('FAILED', message));
      throw new TaskError('States.TaskFailed', JSON.stringify(run('FAILED', message)));
    }
    glueJobRuns.record(run('SUCCEEDED'));
    onEvent({ type: 'run-published', branch });
    return run('SUCCEEDED');
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
  // Write, audit, publish: the jobs stage their tables (on AWS, write them on the run's Iceberg branch), the
  // checks read them, and only when every check passed does the state machine's PublishRun task publish them.
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
      // The audit query (src/checks/audit.ts) is no check: its failure fails the checks' step, as the alert says.
      const check = checksFor(LOCAL_DATABASE).find((c) => c.sql === sql)?.name;
      if (check === undefined) return;
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
