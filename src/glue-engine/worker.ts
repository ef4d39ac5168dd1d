import { ChildProcess, spawn } from 'node:child_process';
import { WriteStream, createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../project';

/** How a job run ended in the worker: its exception's class and message, as the Glue run's ErrorMessage. */
export class GlueJobRunError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(`${errorName}: ${message}`);
    this.name = 'GlueJobRunError';
  }
}

/** The worker process ended (or never started): every run it had not answered fails with this. */
export class GlueWorkerExitedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GlueWorkerExitedError';
  }
}

export interface GlueWorkerOptions {
  python: string;
  /** The moto server's environment (AWS_ENDPOINT_URL, dummy credentials, region). */
  env: Record<string, string>;
  /** Spark's and the runner's logs (the worker's stderr) are appended here. */
  logFile: string;
  /** The Python arguments that start it (default: -m glue_local.worker). */
  args?: string[];
}

type Pending = { resolve: () => void; reject: (error: Error) => void };

/**
 * The Glue stand-in's worker (tools/glue-local/glue_local/worker.py): one Python process, one SparkContext,
 * that runs glue/run_sql_job.py's main() for each request. Requests and answers are JSON lines on its stdin
 * and stdout ({"id", "argv"} -> {"id", "ok", "error"?}); Spark's logs go to its stderr, kept in `logFile`.
 * Runs are sent one at a time, as the state machine runs the jobs.
 */
export class GlueWorker {
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private exited?: GlueWorkerExitedError;
  private readonly log: WriteStream;
  private stderrTail = '';

  private constructor(
    private readonly child: ChildProcess,
    logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-3000);
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.answer(line));
    child.once('error', (error) => this.fail(`the Glue worker could not start: ${error.message}`));
    child.once('exit', (code, signal) =>
      this.fail(
        `the Glue worker exited (${signal ?? `code ${code}`}); the end of its log (${logFile}):\n${this.stderrTail.slice(-1500)}`,
      ),
    );
  }

  static start(options: GlueWorkerOptions): GlueWorker {
    const root = projectRoot();
    const child = spawn(options.python, options.args ?? ['-m', 'glue_local.worker'], {
      cwd: root,
      env: {
        ...process.env,
        ...options.env,
        PYTHONPATH: [path.join(root, 'tools', 'glue-local'), process.env.PYTHONPATH]
          .filter(Boolean)
          .join(path.delimiter),
        PYTHONUNBUFFERED: '1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new GlueWorker(child, options.logFile);
  }

  private answer(line: string): void {
    let message: { id?: string; ok?: boolean; ready?: boolean; error?: { name?: string; message?: string } };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      this.log.write(`[stdout, not an answer] ${line}\n`);
      return;
    }
    // Its first line: Spark started ({"ready": true}), or could not ({"ready": false, "error"}), and it exits.
    if (message.ready !== undefined && message.id === undefined) {
      if (!message.ready)
        this.fail(`the Glue worker could not start Spark: ${message.error?.name}: ${message.error?.message}`);
      return;
    }
    const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
    if (!waiting) {
      this.log.write(`[stdout, no request of this id] ${line}\n`);
      return;
    }
    this.pending.delete(message.id!);
    if (message.ok) waiting.resolve();
    else
      waiting.reject(
        new GlueJobRunError(
          message.error?.name ?? 'Error',
          message.error?.message ?? 'the job failed without a message',
        ),
      );
  }

  private fail(message: string): void {
    this.exited ??= new GlueWorkerExitedError(message);
    for (const { reject } of this.pending.values()) reject(this.exited);
    this.pending.clear();
  }

  /** Runs glue/run_sql_job.py with these arguments (sys.argv[1:]); resolves when it returns, rejects with its error. */
  run(argv: string[]): Promise<void> {
    return this.request({ argv });
  }

  /**
   * Writes the current snapshot of the Iceberg table `database.table` as Parquet into the local folder `dir`
   * (key=value folders for the partition keys): the files under the table's prefix also hold older snapshots'.
   */
  exportTable(table: string, dir: string, partitionKeys: string[], branch?: string): Promise<void> {
    return this.request({ export: { table, dir, partition_keys: partitionKeys, ...(branch ? { branch } : {}) } });
  }

  private request(body: object): Promise<void> {
    if (this.exited) return Promise.reject(this.exited);
    const id = String(this.nextId++);
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  /** Closes its stdin (it exits when it has finished) and waits for it; kills it after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && !this.exited) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    await new Promise((resolve) => this.log.end(resolve));
  }
}
