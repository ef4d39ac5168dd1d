/**
 * The Glue API calls the pipeline's timeout path makes (Step Functions' AWS SDK integrations,
 * arn:aws:states:::aws-sdk:glue:<action>), over the job runs a local execution started, shaped as the Glue API
 * reference gives them ("Job runs": GetJobRuns, BatchStopJobRun, GetJobRun; "AWS Glue job run statuses"):
 *
 * - GetJobRuns returns a job's runs, newest first, at most MaxResults;
 * - BatchStopJobRun moves a run that is STARTING, RUNNING or WAITING to STOPPING and lists it in
 *   SuccessfulSubmissions; a run in another state is listed in Errors;
 * - GetJobRun returns one run; a STOPPING run has stopped (STOPPED) by the next read: locally stopping
 *   takes one poll, on AWS it takes what Spark needs to shut down.
 */

export const GLUE_GET_JOB_RUNS_RESOURCE = 'arn:aws:states:::aws-sdk:glue:getJobRuns';
export const GLUE_BATCH_STOP_JOB_RUN_RESOURCE = 'arn:aws:states:::aws-sdk:glue:batchStopJobRun';
export const GLUE_GET_JOB_RUN_RESOURCE = 'arn:aws:states:::aws-sdk:glue:getJobRun';

/** The states a run leaves by itself (AWS Glue guide, "AWS Glue job run statuses"); any other is final. */
export const ACTIVE_JOB_RUN_STATES = ['STARTING', 'RUNNING', 'WAITING', 'STOPPING'] as const;
const STOPPABLE = new Set(['STARTING', 'RUNNING', 'WAITING']);

/** A job run as GetJobRun's JobRun has it (the fields the local runner gives). */
export interface LocalJobRun {
  Id: string;
  JobName: string;
  JobRunState: string;
  Arguments: Record<string, string>;
  [field: string]: unknown;
}

/** An error as the AWS SDK integration reports it: Step Functions matches `Glue.<code>`. */
export class GlueApiError extends Error {
  constructor(code: string, message: string) {
    super(`${message} (Service: AWSGlue; Status Code: 400; Error Code: ${code}; Request ID: local; Proxy: null)`);
    this.name = `Glue.${code}`;
  }
}

export class LocalGlueJobRuns {
  private readonly runs: LocalJobRun[] = [];
  /** Every call made, in order: tests check what was stopped and when. */
  readonly calls: { action: string; input: unknown; states?: string[] }[] = [];

  /** Records a run the local runner started (or updates it, by Id). */
  record(run: LocalJobRun): void {
    const at = this.runs.findIndex((r) => r.Id === run.Id);
    if (at >= 0) this.runs[at] = run;
    else this.runs.push(run);
  }

  /** The runs of a job, newest first. */
  of(jobName: string): LocalJobRun[] {
    return this.runs.filter((r) => r.JobName === jobName).reverse();
  }

  handlers(): Record<string, (input: unknown) => Promise<unknown>> {
    return {
      [GLUE_GET_JOB_RUNS_RESOURCE]: (input) => Promise.resolve(this.getJobRuns(input as never)),
      [GLUE_BATCH_STOP_JOB_RUN_RESOURCE]: (input) => Promise.resolve(this.batchStopJobRun(input as never)),
      [GLUE_GET_JOB_RUN_RESOURCE]: (input) => Promise.resolve(this.getJobRun(input as never)),
    };
  }

  private known(jobName: string): void {
    if (!this.runs.some((r) => r.JobName === jobName))
      throw new GlueApiError('EntityNotFoundException', `Job ${jobName} not found`);
  }

  getJobRuns(input: { JobName: string; MaxResults?: number }) {
    this.known(input.JobName);
    const runs = this.of(input.JobName).slice(0, input.MaxResults ?? 100);
    this.calls.push({ action: 'GetJobRuns', input, states: runs.map((r) => r.JobRunState) });
    return { JobRuns: runs.map((r) => structuredClone(r)) };
  }

  batchStopJobRun(input: { JobName: string; JobRunIds: string[] }) {
    this.known(input.JobName);
    const SuccessfulSubmissions: { JobName: string; JobRunId: string }[] = [];
    const Errors: { JobName: string; JobRunId: string; ErrorDetail: { ErrorCode: string; ErrorMessage: string } }[] =
      [];
    for (const id of input.JobRunIds) {
      const run = this.runs.find((r) => r.JobName === input.JobName && r.Id === id);
      if (run && STOPPABLE.has(run.JobRunState)) {
        run.JobRunState = 'STOPPING';
        SuccessfulSubmissions.push({ JobName: input.JobName, JobRunId: id });
      } else {
        const state = run?.JobRunState ?? 'not found';
        Errors.push({
          JobName: input.JobName,
          JobRunId: id,
          ErrorDetail: { ErrorCode: 'InvalidInputException', ErrorMessage: `Job run ${id} is ${state}` },
        });
      }
    }
    this.calls.push({ action: 'BatchStopJobRun', input });
    return { SuccessfulSubmissions, Errors };
  }

  getJobRun(input: { JobName: string; RunId: string }) {
    const run = this.runs.find((r) => r.JobName === input.JobName && r.Id === input.RunId);
    if (!run) throw new GlueApiError('EntityNotFoundException', `Job run ${input.RunId} not found`);
    const seen = run.JobRunState;
    if (run.JobRunState === 'STOPPING') run.JobRunState = 'STOPPED';
    this.calls.push({ action: 'GetJobRun', input, states: [seen] });
    return { JobRun: structuredClone({ ...run, JobRunState: seen }) };
  }
}
