import { JobName, isJobName } from '../definition/pipeline';
import { required } from '../required';

/**
 * Makes a job's task end as AWS reports it, on every attempt or on the first `times`:
 *
 * - a JobRunState the run ends in. FAILED, TIMEOUT and ERROR fail the glue:startJobRun.sync task
 *   with States.TaskFailed and the run (GetJobRun's JobRun) as a JSON string in Cause; STOPPED
 *   completes the task normally, with JobRunState STOPPED in its output;
 * - an error name: States.Timeout and States.HeartbeatTimeout come without a Cause; any other name
 *   is an error code of the StartJobRun call, `Glue.<code>` (Glue.ThrottlingException,
 *   Glue.ConcurrentRunsExceededException…), reported as Step Functions reports it (taskErrorOf).
 */
export interface FaultInjection {
  job: JobName;
  outcome: string;
  times: number | 'every';
}

export const JOB_RUN_FAULT_STATES = ['FAILED', 'TIMEOUT', 'ERROR', 'STOPPED'] as const;
export type JobRunFaultState = (typeof JOB_RUN_FAULT_STATES)[number];
export const DEFAULT_FAULT: JobRunFaultState = 'FAILED';
/** Errors Step Functions reports without a Cause. */
export const CAUSELESS_ERRORS = ['States.Timeout', 'States.HeartbeatTimeout'];

export const isJobRunFaultState = (outcome: string): outcome is JobRunFaultState =>
  (JOB_RUN_FAULT_STATES as readonly string[]).includes(outcome);

/**
 * The errors the Glue API reference lists for StartJobRun. Step Functions names an error of a service
 * integration `ServiceName.ExceptionName` after these codes (Step Functions guide, "Handling errors").
 */
export const START_JOB_RUN_ERRORS = [
  'ConcurrentRunsExceededException',
  'EntityNotFoundException',
  'InternalServiceException',
  'InvalidInputException',
  'OperationTimeoutException',
  'ResourceNumberLimitExceededException',
] as const;

/**
 * What a Glue task reports for an error code StartJobRun does not model (Glue's common errors:
 * ThrottlingException, AccessDeniedException…): the code is only in the Cause. AWS Knowledge Center,
 * "How do I resolve the ThrottlingException or Rate exceeded error in AWS Glue?": a throttled
 * glue:startJobRun.sync fails with "Glue.AWSGlueException", cause "Rate exceeded (Service: AWSGlue;
 * Status Code: 400; Error Code: ThrottlingException; Request ID: …; Proxy: null)".
 */
export const GLUE_UNMODELLED_ERROR = 'Glue.AWSGlueException';

/** Each code's message as the service words it, where the injected fault's own message would not do. */
const SERVICE_MESSAGES: Record<string, string> = { ThrottlingException: 'Rate exceeded' };

/**
 * The error a job's task fails with for `outcome`, and its Cause (absent: none), as AWS reports it; undefined
 * for a STOPPED run, which completes the task. For a run state the Cause is `message` (the caller gives the run).
 */
export function taskErrorOf(
  outcome: string,
  message = `injected fault: ${outcome}`,
): { error: string; cause?: string } | undefined {
  if (outcome === 'STOPPED') return undefined;
  if (isJobRunFaultState(outcome)) return { error: 'States.TaskFailed', cause: message };
  if (CAUSELESS_ERRORS.includes(outcome)) return { error: outcome };
  const [service, dotted] = outcome.split('.', 2);
  const code = required(dotted, `the error code of ${outcome} (Service.Code)`);
  const cause = `${SERVICE_MESSAGES[code] ?? message} (Service: ${service === 'Glue' ? 'AWSGlue' : service}; Status Code: 400; Error Code: ${code}; Request ID: local; Proxy: null)`;
  if (service === 'Glue' && !(START_JOB_RUN_ERRORS as readonly string[]).includes(code))
    return { error: GLUE_UNMODELLED_ERROR, cause };
  return { error: outcome, cause };
}

/** Parses `JOB[:OUTCOME][:TIMES]`, e.g. `machine_learning_curated:STOPPED` or `…:Glue.ThrottlingException:1`. */
export function parseFault(spec: string): FaultInjection {
  const [job = '', ...rest] = spec.split(':');
  if (!isJobName(job)) throw new RangeError(`--fail ${spec}: unknown job "${job}"`);
  let outcome: string = DEFAULT_FAULT;
  let times: number | 'every' = 'every';
  if (rest[0] !== undefined && !/^\d+$/.test(rest[0])) {
    outcome = rest[0];
    rest.shift();
  }
  const [count, ...extra] = rest;
  if (count !== undefined) {
    if (!/^[1-9]\d*$/.test(count) || extra.length > 0)
      throw new RangeError(`--fail ${spec}: TIMES must be a whole number >= 1`);
    times = Number(count);
  }
  if (!isJobRunFaultState(outcome) && !/^[A-Za-z][\w]*(\.[A-Za-z][\w]*)+$/.test(outcome))
    throw new RangeError(
      `--fail ${spec}: "${outcome}" is neither a job run state (${JOB_RUN_FAULT_STATES.join(', ')}) nor an error name like Glue.ThrottlingException`,
    );
  if (outcome === GLUE_UNMODELLED_ERROR)
    throw new RangeError(
      `--fail ${spec}: give the API's error code (e.g. Glue.ThrottlingException); Step Functions reports the codes StartJobRun does not model as ${GLUE_UNMODELLED_ERROR}`,
    );
  return { job, outcome, times };
}
