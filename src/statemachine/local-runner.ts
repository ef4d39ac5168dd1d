import './promise-with-resolvers'; // before aws-local-stepfunctions: see the file
import './unused-aws-deps'; // likewise
import { ExecutionError, StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ConsentPolicy, JobName, isConsentPolicy, isJobName } from '../pipeline';
import { JobResult, LocalEngine } from '../local/engine';
import { FaultInjection } from './faults';
import { GLUE_SYNC_RESOURCE, SNS_PUBLISH_RESOURCE, readAslText, substitute, substitutionNames } from './definition';

export interface PipelineInput {
  from?: string;
  reason?: string;
  files?: string[];
}

export interface JobRun {
  name: JobName;
  status: 'SUCCEEDED' | 'FAILED';
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
  jobs: JobRun[];
  output?: unknown;
  error?: { name: string; cause: string };
  alerts: Alert[];
  /** Every task failure the execution saw, retried or not: tests check each was an injected one. */
  taskFailures: TaskFailure[];
}

export interface LocalRunOptions {
  engine: LocalEngine;
  executionName: string;
  input: PipelineInput;
  consentPolicy: ConsentPolicy;
  piiSalt: string;
  /** Appends each alert as a JSON line (the lake's _alerts.jsonl). */
  alertsFile: string;
  faults?: FaultInjection[];
  /** Local wait before each retry, in milliseconds (AWS waits seconds to minutes). */
  retryIntervalMs?: number;
  onEvent?: (event: ExecutionEvent) => void;
}

export const LOCAL_ALERTS_TOPIC = 'arn:aws:sns:local:000000000000:stedi-pipeline-alerts';

/** The substitutions `stedi run` makes: each Glue job is named after its SQL file. */
export function localSubstitutions(consentPolicy: ConsentPolicy, text = readAslText()): Record<string, string> {
  const values: Record<string, string> = { AlertsTopicArn: LOCAL_ALERTS_TOPIC, ConsentPolicy: consentPolicy };
  for (const name of substitutionNames(text)) {
    const job = /^(\w+)JobName$/.exec(name);
    if (job) values[name] = job[1].replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  }
  return values;
}

class TaskError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name; // Step Functions matches Retry and Catch on this
  }
}

/**
 * Runs statemachines/pipeline.asl.json with aws-local-stepfunctions: each Glue task bound to the
 * local engine (job name → SQL job), the SNS task to the local alert sink.
 */
export async function runLocalExecution(options: LocalRunOptions): Promise<ExecutionResult> {
  const { engine, executionName, onEvent = () => undefined } = options;
  const text = readAslText();
  const definition = substitute(text, localSubstitutions(options.consentPolicy, text));
  const jobs = new Map<JobName, JobRun>();
  const alerts: Alert[] = [];
  const taskFailures: TaskFailure[] = [];
  const injected = new Map<JobName, number>();

  const runGlueJob = async (input: unknown) => {
    await new Promise((resolve) => setImmediate(resolve)); // let the event log report this state's entry first
    const { JobName: job, Arguments: args = {} } = input as { JobName: string; Arguments?: Record<string, string> };
    if (!isJobName(job)) throw new TaskError('Glue.EntityNotFoundException', `no Glue job named ${job}`);
    const consent = args['--consent_policy'] ?? options.consentPolicy;
    if (!isConsentPolicy(consent))
      throw new TaskError('Glue.InvalidInputException', `--consent_policy ${consent} is not any or since-consent`);
    const run: JobRun = jobs.get(job) ?? { name: job, status: 'FAILED', rowsOut: 0, durationMs: 0, attempts: 0 };
    jobs.set(job, run); // a retry updates the job's entry; Map order is the order jobs first ran
    run.attempts++;
    const fault = options.faults?.find((f) => f.job === job);
    const faultsSoFar = injected.get(job) ?? 0;
    if (fault && (fault.times === 'every' || faultsSoFar < fault.times)) {
      injected.set(job, faultsSoFar + 1);
      run.status = 'FAILED';
      const error = new TaskError(
        fault.errorName,
        `injected fault: ${job} failed with ${fault.errorName} (attempt ${run.attempts})`,
      );
      onEvent({ type: 'job-failed', job, error: error.name, cause: error.message });
      throw error;
    }
    try {
      const result = await engine.runJob(job, {
        runId: args['--run_id'] ?? executionName,
        consentPolicy: consent,
        piiSalt: options.piiSalt,
      });
      Object.assign(run, { status: 'SUCCEEDED', rowsOut: result.rowsOut, durationMs: result.durationMs, result });
      onEvent({ type: 'job-finished', run });
      return {
        Id: `jr_${executionName}_${job}`,
        JobName: job,
        JobRunState: 'SUCCEEDED',
        ExecutionTime: Math.round(result.durationMs / 1000),
      };
    } catch (error) {
      run.status = 'FAILED';
      const message = error instanceof Error ? error.message : String(error);
      onEvent({ type: 'job-failed', job, error: 'Glue.JobRunFailed', cause: message });
      throw new TaskError('Glue.JobRunFailed', message);
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

  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Resource === GLUE_SYNC_RESOURCE) handlers[name] = runGlueJob;
    else if (state.Resource === SNS_PUBLISH_RESOURCE) handlers[name] = publishAlert;
    else if (state.Type === 'Task') throw new Error(`state ${name}: no local binding for resource ${state.Resource}`);
    if (state.Retry) retryIntervalOverrides[name] = options.retryIntervalMs ?? 10;
  }

  // Validation is the tests' job (asl-validator); skipping it here saves ~200 ms per run.
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { noValidate: true },
  });
  const execution = machine.run(options.input as Record<string, unknown> as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides },
    context: { Execution: { Name: executionName } },
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
    return { status: 'SUCCEEDED', executionName, jobs: [...jobs.values()], output, alerts, taskFailures };
  } catch (error) {
    await events.catch(() => undefined);
    const cause = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : (error as Error);
    return {
      status: 'FAILED',
      executionName,
      jobs: [...jobs.values()],
      error: { name: cause.name, cause: cause.message },
      alerts,
      taskFailures,
    };
  }
}
