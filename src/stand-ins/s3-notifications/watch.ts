import type { SQSRecord } from 'aws-lambda';
import { FSWatcher, existsSync, mkdirSync, watch } from 'node:fs';
import { DATASETS, Dataset, landingPrefix } from '../../definition/layout';
import { executionNameFor } from '../../landing-trigger/trigger';
import { readBatch } from '../../landing-trigger/s3-records';
import { ExecutionRegistry } from '../step-functions/executions';
import { Lake } from '../../lake/lake';
import { LocalStepFunctions, Trigger, notificationFor, removalNotificationFor } from './local-trigger';

export interface WatchOptions {
  /** How long to gather notifications after the last one before handing them over as one batch. */
  batchWindowMs: number;
  onError: (error: unknown) => void;
  /** The lake's executions: a file a `stedi drop` has already started its own execution for is left out. */
  executions?: ExecutionRegistry;
  /** Told of each file left out of a batch because its execution was already started elsewhere. */
  onLeftOut?: (file: string) => void;
}

/**
 * Watches a lake's landing folders as S3 notifies SQS: each new, replaced or removed file becomes a
 * notification; notifications gathered within the batching window go to the trigger as one
 * batch; those it hands back (an execution was running) are delivered again once it ends.
 */
export class LandingWatcher {
  private readonly watchers: FSWatcher[] = [];
  private readonly pending = new Map<string, SQSRecord>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly lake: Lake,
    private readonly trigger: Trigger,
    private readonly stepFunctions: LocalStepFunctions,
    private readonly options: WatchOptions,
  ) {}

  start(): void {
    for (const dataset of DATASETS) {
      const dir = this.lake.path(landingPrefix(dataset));
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
      this.watchers.push(watch(dir, (_event, name) => name && this.onChange(dataset, name.toString())));
    }
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Resolves when every notification so far has been handed over and its run has ended. */
  async settled(): Promise<void> {
    for (;;) {
      await this.flushing;
      await this.stepFunctions.idle();
      if (!this.timer && this.pending.size === 0 && !(await this.stepFunctions.hasRunningExecution())) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private onChange(dataset: Dataset, name: string): void {
    if (name.startsWith('.') || !name.endsWith('.json')) return; // our own partial uploads, other files
    // Epoch nanoseconds (sub-millisecond from the monotonic clock): two removals of one key differ.
    const seenAtNs = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    notificationFor(this.lake, dataset, name)
      .catch((error: NodeJS.ErrnoException) => {
        // Gone: removed from landing, as S3 notifies ObjectRemoved. Its rows must leave every zone.
        if (error.code === 'ENOENT') return removalNotificationFor(dataset, name, seenAtNs);
        throw error;
      })
      .then((record) => {
        // The latest event of a file wins: deleted and dropped again within the window is one upload.
        this.pending.set(`${dataset}/${name}`, record);
        this.schedule();
      })
      .catch(this.options.onError);
  }

  /**
   * Whether the file's version already has its execution: `stedi drop` starts one named after that one
   * file (executionNameFor), the name this watcher's notification of the drop gives too. Such a file is
   * not handed over again, alone or in a batch with others: one drop, one execution.
   */
  private startedElsewhere(record: SQSRecord): boolean {
    const { files } = readBatch([record]);
    return files.length > 0 && this.options.executions?.has(executionNameFor(files)) === true;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flushing.then(() => this.flush()).catch(this.options.onError);
    }, this.options.batchWindowMs);
  }

  private async flush(): Promise<void> {
    const batch = [...this.pending.entries()].filter(([id, record]) => {
      if (!this.startedElsewhere(record)) return true;
      this.options.onLeftOut?.(id);
      return false;
    });
    this.pending.clear();
    if (batch.length === 0) return;
    const response = await this.trigger(batch.map(([, record]) => record));
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const deferred = batch.filter(([, record]) => failed.has(record.messageId));
    if (deferred.length === 0) return;
    // Like SQS after the visibility timeout: delivered again, here once the running execution ends.
    void this.stepFunctions.idle().then(() => {
      for (const [id, record] of deferred) if (!this.pending.has(id)) this.pending.set(id, record);
      this.schedule();
    });
  }
}
