import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { DATASETS, Dataset } from '../definition/layout';
import { LandedFile, readBatch } from './s3-records';

/** What the trigger needs of Step Functions: AWS's client, or the local runner. */
export interface StepFunctionsPort {
  /** True while an execution of the pipeline is running. */
  hasRunningExecution(): Promise<boolean>;
  /** Starts an execution; 'duplicate' when one of that name already exists. */
  startExecution(name: string, input: PipelineRunInput): Promise<'started' | 'duplicate'>;
}

export interface PipelineRunInput {
  from: Dataset;
  reason: 's3';
  files: string[];
}

export interface TriggerLogger {
  info(message: string, extra: Record<string, unknown>): void;
  error(message: string, extra: Record<string, unknown>): void;
}

/** FilesReceived counts every change that starts a run; FilesRemoved, the removals among them. */
export type TriggerMetric = 'FilesReceived' | 'FilesRemoved' | 'FilesIgnored' | 'ExecutionsStarted' | 'BatchesDeferred';

export interface TriggerMetrics {
  count(metric: TriggerMetric, value: number): void;
}

export interface TriggerDependencies {
  stepFunctions: StepFunctionsPort;
  logger: TriggerLogger;
  metrics: TriggerMetrics;
}

/**
 * The first dataset in pipeline order among those that changed: the run starts at the first job that reads
 * it, and every job after it runs, so a removed file's rows leave trusted, curated and machine learning too.
 */
export function earliestDataset(files: readonly { dataset: Dataset }[]): Dataset {
  return DATASETS.find((d) => files.some((f) => f.dataset === d))!;
}

/**
 * A name the batch always gets, from its object keys, changes and versions: a redelivered batch asks for
 * the same execution again and Step Functions refuses a second one. The change is part of it, so the
 * removal of a file is never taken for its upload, even where a notification carries no version.
 */
export function executionNameFor(files: readonly LandedFile[]): string {
  const identity = files
    .map((f) => `${f.bucket}/${f.key}\u0000${f.change}\u0000${f.versionId ?? ''}\u0000${f.sequencer ?? ''}`)
    .sort()
    .join('\n');
  return `s3-${createHash('sha256').update(identity).digest('hex').slice(0, 40)}`;
}

/**
 * Handles one batch of landing notifications: starts one execution for all its files, created or removed,
 * from the earliest affected dataset, unless an execution is running, in which case the batch's messages
 * go back to the queue (batchItemFailures) for a later run. Nothing is dropped, no two runs overlap. A
 * run reads landing as it is when it runs, so a key deleted and uploaded again within one batch is one
 * run over the new content, named once in `files`.
 */
export async function handleLandingBatch(records: SQSRecord[], deps: TriggerDependencies): Promise<SQSBatchResponse> {
  const { logger, metrics, stepFunctions } = deps;
  const { files, ignored } = readBatch(records);
  for (const i of ignored) logger.info('record ignored', { messageId: i.messageId, key: i.key, reason: i.reason });
  metrics.count('FilesIgnored', ignored.length);
  metrics.count('FilesReceived', files.length);
  metrics.count('FilesRemoved', files.filter((f) => f.change === 'removed').length);
  if (files.length === 0) return { batchItemFailures: [] };

  const keys = [...new Set(files.map((f) => f.key))].sort();
  const removed = [...new Set(files.filter((f) => f.change === 'removed').map((f) => f.key))].sort();
  const retryLater = (): SQSBatchResponse => ({
    batchItemFailures: [...new Set(files.map((f) => f.messageId))].map((itemIdentifier) => ({ itemIdentifier })),
  });
  const executionName = executionNameFor(files);
  try {
    if (await stepFunctions.hasRunningExecution()) {
      logger.info('batch deferred: an execution is running', { executionName, keys });
      metrics.count('BatchesDeferred', 1);
      return retryLater();
    }
    const input: PipelineRunInput = { from: earliestDataset(files), reason: 's3', files: keys };
    const outcome = await stepFunctions.startExecution(executionName, input);
    if (outcome === 'started') {
      logger.info('execution started', { executionName, from: input.from, keys, removed });
      metrics.count('ExecutionsStarted', 1);
    } else {
      logger.info('execution already exists: a redelivered batch', { executionName, keys });
    }
    return { batchItemFailures: [] };
  } catch (error) {
    // Not swallowed: the messages return to the queue and are retried, then dead-lettered.
    logger.error('could not start the execution; the batch will be retried', {
      executionName,
      keys,
      // An Error, so the logger keeps its name and stack.
      error: error instanceof Error ? error : new Error(String(error)),
    });
    return retryLater();
  }
}
