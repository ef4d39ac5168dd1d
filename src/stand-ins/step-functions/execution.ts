import { ConsentPolicy, JobName } from '../../definition/pipeline';
import type { JobResult, PublishRequest, RunParameters } from '../../build/engine';
import { LocalDynamoDb } from '../dynamodb/dynamodb';
import type { Lake, LakeSnapshot } from '../../lake/lake';
import { FaultInjection } from '../../statemachine/faults';
import { LocalGlueJobRuns } from '../glue/local-glue';

// What a local execution of the pipeline state machine is given, reports and returns, and the job engine it runs on.

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
  /** The publish task moved the run's tables to what readers see (write, audit, publish). */
  | { type: 'run-published'; branch: string }
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
 * What the Glue tasks run on: the DuckDB engine (src/build/engine.ts) or the Glue engine, glue/run_sql_job.py
 * on local Spark (src/glue-engine/). `lake` is where the job's tables are read from by the data checks.
 */
export interface JobEngine {
  readonly lake: Lake;
  /** Opens the execution's run under its consent policy (write, audit, publish where the engine has it). */
  beginRun(runId: string, consentPolicy: ConsentPolicy): Promise<void>;
  /** What the run's checks read: the lake with the run's tables in it. */
  view(): Promise<LakeSnapshot>;
  /** The publish task (every check passed): the run's tables become what readers see. */
  publishRun(publish: PublishRequest): Promise<void>;
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
