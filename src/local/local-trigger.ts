import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Dataset, landingPrefix } from '../layout';
import {
  PipelineRunInput,
  StepFunctionsPort,
  TriggerDependencies,
  handleLandingBatch,
} from '../landing-trigger/trigger';
import { ExecutionResult } from '../statemachine/local-runner';
import { Lake } from './lake';

/** The bucket name local notifications carry. */
export const LOCAL_BUCKET = 'local-lake';

export type StartLocalExecution = (name: string, input: PipelineRunInput) => Promise<ExecutionResult>;

/**
 * The trigger's Step Functions port for the local runner: one execution at a time, names
 * remembered, so the handler logic behaves as it does against AWS. An execution that throws
 * instead of returning a result (the lake cannot be written, a stop while waiting for the lake
 * lock...) ends FAILED like any other: it frees the port and is reported through `onThrown`.
 */
export class LocalStepFunctions implements StepFunctionsPort {
  private running: Promise<ExecutionResult> | undefined;
  private readonly names = new Set<string>();
  readonly results: ExecutionResult[] = [];

  constructor(
    private readonly start: StartLocalExecution,
    private readonly onThrown: (executionName: string, error: unknown) => void = () => undefined,
  ) {}

  hasRunningExecution(): Promise<boolean> {
    return Promise.resolve(this.running !== undefined);
  }

  startExecution(name: string, input: PipelineRunInput): Promise<'started' | 'duplicate'> {
    if (this.names.has(name)) return Promise.resolve('duplicate');
    this.names.add(name);
    const running = Promise.resolve()
      .then(() => this.start(name, input))
      .catch((error: unknown): ExecutionResult => {
        this.onThrown(name, error);
        const { name: errorName, message } = error instanceof Error ? error : { name: 'Error', message: String(error) };
        return {
          status: 'FAILED',
          executionName: name,
          jobs: [],
          alerts: [],
          taskFailures: [],
          error: { name: errorName, cause: message },
        };
      })
      .then((result) => {
        this.results.push(result);
        if (this.running === running) this.running = undefined;
        return result;
      });
    this.running = running;
    return Promise.resolve('started');
  }

  /** Waits for the running execution, if any, to end. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }
}

let sequence = 0;

/** An SQS message carrying the S3 ObjectCreated notification for a file in the lake's landing zone. */
export async function notificationFor(lake: Lake, dataset: Dataset, name: string): Promise<SQSRecord> {
  const info = await stat(path.join(lake.path(landingPrefix(dataset)), name));
  const key = `${landingPrefix(dataset)}${name}`;
  const encoded = key
    .split('/')
    .map((p) => encodeURIComponent(p).replace(/%20/g, '+'))
    .join('/');
  const body = {
    Records: [
      {
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        // The file's modification time and size stand in for S3's versionId: a replaced file is a new version.
        s3: {
          bucket: { name: LOCAL_BUCKET },
          object: {
            key: encoded,
            size: info.size,
            versionId: `${Math.trunc(info.mtimeMs)}-${info.size}`,
            sequencer: (++sequence).toString(16),
          },
        },
      },
    ],
  };
  return { messageId: `local-${key}-${Math.trunc(info.mtimeMs)}`, body: JSON.stringify(body) } as SQSRecord;
}

export type Trigger = (records: SQSRecord[]) => Promise<SQSBatchResponse>;

export function localTrigger(deps: TriggerDependencies): Trigger {
  return (records) => handleLandingBatch(records, deps);
}
