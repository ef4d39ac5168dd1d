import { JobName, isJobName } from '../pipeline';

/**
 * Makes a job's task end as AWS reports it, on every attempt or on the first `times`:
 *
 * - a JobRunState the run ends in. FAILED, TIMEOUT and ERROR fail the glue:startJobRun.sync task
 *   with States.TaskFailed and the run (GetJobRun's JobRun) as a JSON string in Cause; STOPPED
 *   completes the task normally, with JobRunState STOPPED in its output;
 * - an error name: States.Timeout and States.HeartbeatTimeout come without a Cause; any other name
 *   (Glue.ThrottlingException, Glue.ConcurrentRunsExceededException…) is an error of the
 *   StartJobRun call, with the service's message as Cause.
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

/** The error name the task fails with, or undefined when the task succeeds (a STOPPED run). */
export function taskErrorOf(outcome: string): string | undefined {
  if (outcome === 'STOPPED') return undefined;
  return isJobRunFaultState(outcome) ? 'States.TaskFailed' : outcome;
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
  return { job, outcome, times };
}
