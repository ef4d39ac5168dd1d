import { JobName, isJobName } from '../pipeline';

/** Makes a job's task fail with an error name, on every attempt or on the first `times`. */
export interface FaultInjection {
  job: JobName;
  errorName: string;
  times: number | 'every';
}

export const DEFAULT_FAULT_ERROR = 'Glue.JobRunFailed';

/** Parses `JOB[:ERROR_NAME][:TIMES]`, e.g. `machine_learning_curated:Glue.ConcurrentRunsExceededException:1`. */
export function parseFault(spec: string): FaultInjection {
  const [job, ...rest] = spec.split(':');
  if (!isJobName(job)) throw new RangeError(`--fail ${spec}: unknown job "${job}"`);
  let errorName = DEFAULT_FAULT_ERROR;
  let times: number | 'every' = 'every';
  if (rest.length > 0 && !/^\d+$/.test(rest[0])) errorName = rest.shift()!;
  if (rest.length > 0) {
    if (!/^[1-9]\d*$/.test(rest[0]) || rest.length > 1)
      throw new RangeError(`--fail ${spec}: TIMES must be a whole number >= 1`);
    times = Number(rest[0]);
  }
  if (!/^[A-Za-z][\w.]*$/.test(errorName)) throw new RangeError(`--fail ${spec}: bad error name "${errorName}"`);
  return { job, errorName, times };
}
