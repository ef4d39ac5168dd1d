import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Dataset, landingPrefix } from '../../definition/layout';
import {
  PipelineRunInput,
  StepFunctionsPort,
  TriggerDependencies,
  handleLandingBatch,
} from '../../landing-trigger/trigger';
import { ExecutionResult } from '../step-functions/execution';
import { ExecutionRegistry } from '../step-functions/executions';
import { Lake } from '../../lake/lake';

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
    /** Where the lake records its executions, so a name is taken once across processes (drop and watch). */
    private readonly registry?: { executions: ExecutionRegistry; command: string },
  ) {}

  hasRunningExecution(): Promise<boolean> {
    return Promise.resolve(this.running !== undefined);
  }

  startExecution(name: string, input: PipelineRunInput): Promise<'started' | 'duplicate'> {
    if (this.names.has(name)) return Promise.resolve('duplicate');
    if (this.registry && !this.registry.executions.claim(name, input, this.registry.command))
      return Promise.resolve('duplicate');
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
        this.registry?.executions.finish(name, result);
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

/**
 * An SQS message carrying the S3 ObjectCreated notification for a file in the lake's landing zone. Its
 * version id and sequencer come from the file's version (inode, size, modification and change times), as
 * S3 gives every notification of one upload the same ones: `stedi drop` and `stedi watch`, noticing the
 * same drop, make the same notification, hence the same execution name (executionNameFor).
 */
export async function notificationFor(lake: Lake, dataset: Dataset, name: string): Promise<SQSRecord> {
  const info = await stat(path.join(lake.path(landingPrefix(dataset)), name), { bigint: true });
  const key = `${landingPrefix(dataset)}${name}`;
  const encoded = encodedKey(key);
  const body = {
    Records: [
      {
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        // The file's inode, size, modification and change times stand in for S3's versionId: a replaced file
        // is a new version, even one of the same size whose mtime was put back (cp -p, rsync -t, touch -r),
        // as the validated copy tells them (validated.ts identityOf). The sequencer, which grows with each
        // event of a key, is the change time: unlike the mtime, no one can set it back.
        s3: {
          bucket: { name: LOCAL_BUCKET },
          object: {
            key: encoded,
            size: Number(info.size),
            versionId: `${info.mtimeNs}-${info.ctimeNs}-${info.size}-${info.ino}`,
            sequencer: info.ctimeNs.toString(16).toUpperCase().padStart(16, '0'),
          },
        },
      },
    ],
  };
  return { messageId: `local-${key}-${info.ctimeNs}`, body: JSON.stringify(body) } as SQSRecord;
}

/**
 * An SQS message carrying the S3 ObjectRemoved:Delete notification for a file gone from the lake's landing
 * zone, as S3 sends it for an object of an unversioned bucket (a folder keeps no versions): no size, no
 * version id, a sequencer that grows with each event of the key (here the time the removal was seen).
 */
export function removalNotificationFor(dataset: Dataset, name: string, seenAtNs: bigint): SQSRecord {
  const key = `${landingPrefix(dataset)}${name}`;
  const body = {
    Records: [
      {
        eventSource: 'aws:s3',
        eventName: 'ObjectRemoved:Delete',
        s3: {
          bucket: { name: LOCAL_BUCKET },
          object: { key: encodedKey(key), sequencer: seenAtNs.toString(16).toUpperCase().padStart(16, '0') },
        },
      },
    ],
  };
  return { messageId: `local-${key}-removed-${seenAtNs}`, body: JSON.stringify(body) } as SQSRecord;
}

/** A key as S3 puts it in a notification: each segment URL-encoded, a space as +. */
function encodedKey(key: string): string {
  return key
    .split('/')
    .map((p) => encodeURIComponent(p).replace(/%20/g, '+'))
    .join('/');
}

export type Trigger = (records: SQSRecord[]) => Promise<SQSBatchResponse>;

export function localTrigger(deps: TriggerDependencies): Trigger {
  return (records) => handleLandingBatch(records, deps);
}
