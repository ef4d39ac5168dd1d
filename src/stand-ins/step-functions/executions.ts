import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { PipelineRunInput } from '../../landing-trigger/trigger';
import type { ExecutionResult } from './execution';
import type { Lake } from '../../lake/lake';
import { isAlive, processStartTime } from '../../lake/lake-lock';

/** The folder of a lake where the executions the local trigger started are recorded, one file each. */
export const EXECUTIONS_DIR = '_executions';

/** One execution a local trigger (`stedi drop`, `stedi watch`) started on the lake. */
export interface ExecutionRecord {
  name: string;
  input: PipelineRunInput;
  /** The command that runs it, e.g. "stedi watch". */
  command: string;
  pid: number;
  host: string;
  startedAt: string;
  processStart?: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** When it ended (records written before this field was kept have none: their start counts). */
  endedAt?: string;
  error?: { name: string; cause: string };
}

/**
 * How long an ended execution's record, and so its name, is kept: Step Functions removes a standard
 * workflow's execution history 90 days after it closes, and then lets its name be used again
 * ("Execution guarantees", Step Functions Developer Guide).
 */
export const EXECUTION_RETENTION_MS = 90 * 24 * 60 * 60 * 1000;
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
const PRUNE_LOCK = '.prune.lock';
const PRUNE_LOCK_STALE_MS = 10 * 60 * 1000;

function removeIfStale(lock: string, now: number): void {
  try {
    if (now - statSync(lock).mtimeMs > PRUNE_LOCK_STALE_MS) unlinkSync(lock);
  } catch {
    // gone meanwhile: the pruner finished
  }
}

/**
 * The names of the executions started on a lake, kept as Step Functions keeps them: a name is taken
 * once (Step Functions refuses a second execution of the same name), whichever process asks. `stedi drop`
 * and `stedi watch` both turn a dropped file into a notification, named after the file's version
 * (executionNameFor): the first to ask starts the execution, the other finds it here and, for a drop,
 * follows it to its end. Each record is created whole (written aside, then hard-linked into place,
 * which fails if the name exists) and replaced by a rename when the execution ends.
 */
export class ExecutionRegistry {
  readonly dir: string;

  /** When this registry last pruned (epoch ms): a long-running watcher prunes at most hourly. */
  private prunedAt = -Infinity;

  constructor(lake: Lake) {
    this.dir = lake.path(EXECUTIONS_DIR);
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** Records a new execution; false when one of that name exists already. */
  claim(name: string, input: PipelineRunInput, command: string): boolean {
    mkdirSync(this.dir, { recursive: true });
    if (Date.now() - this.prunedAt > PRUNE_INTERVAL_MS) {
      this.prune();
      this.prunedAt = Date.now();
    }
    const record: ExecutionRecord = {
      name,
      input,
      command,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      processStart: processStartTime(process.pid),
      status: 'RUNNING',
    };
    const tmp = `${this.file(name)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record)}\n`);
    try {
      linkSync(tmp, this.file(name));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      unlinkSync(tmp);
    }
  }

  /** Records how an execution ended. */
  finish(name: string, result: Pick<ExecutionResult, 'status' | 'error'>): void {
    const record = this.read(name);
    if (!record) return;
    const ended: ExecutionRecord = {
      ...record,
      status: result.status,
      endedAt: new Date().toISOString(),
      ...(result.error ? { error: result.error } : {}),
    };
    const tmp = `${this.file(name)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(ended)}\n`);
    renameSync(tmp, this.file(name));
  }

  /**
   * Removes the records of executions that ended more than EXECUTION_RETENTION_MS ago (one whose process
   * died while it ran counts as ended at its start), so the folder does not grow for ever and, as on
   * AWS, their names can be taken again. Returns the names removed.
   *
   * Best effort: a record it cannot read or remove is kept, and pruning never fails a claim. One process
   * prunes at a time (PRUNE_LOCK, created exclusively), so no pruner removes a record another process
   * has just claimed under a name a second pruner freed; a lock older than PRUNE_LOCK_STALE_MS (its
   * process died while pruning) is removed and pruning left to a later claim.
   */
  prune(now = Date.now()): string[] {
    if (!existsSync(this.dir)) return [];
    const lock = path.join(this.dir, PRUNE_LOCK);
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return [];
      removeIfStale(lock, now);
      return [];
    }
    const removed: string[] = [];
    try {
      for (const file of readdirSync(this.dir).filter((n) => n.endsWith('.json'))) {
        const name = file.slice(0, -'.json'.length);
        const record = this.readIfParsable(name);
        if (!record) continue;
        const ended = Date.parse(record.endedAt ?? record.startedAt);
        if (!(now - ended > EXECUTION_RETENTION_MS)) continue;
        if (record.status === 'RUNNING' && isAlive({ ...record, execution: name, executionArn: name })) continue;
        try {
          unlinkSync(this.file(name));
          removed.push(name);
        } catch {
          // kept: removed by hand meanwhile, or not removable here
        }
      }
    } finally {
      rmSync(lock, { force: true });
    }
    return removed;
  }

  /** A record, or undefined when it is missing or is not a record (a file cut short by a power cut). */
  private readIfParsable(name: string): ExecutionRecord | undefined {
    try {
      return this.read(name);
    } catch {
      return undefined;
    }
  }

  read(name: string): ExecutionRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.file(name), 'utf8')) as ExecutionRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // never made, or pruned
      throw error;
    }
  }

  has(name: string): boolean {
    return existsSync(this.file(name));
  }

  /** The executions whose input lists `key`, started at or after `since` (epoch ms), oldest first. */
  startedFor(key: string, since: number): ExecutionRecord[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((n) => n.endsWith('.json'))
      .flatMap((n) => {
        const record = this.readIfParsable(n.slice(0, -'.json'.length));
        return record && record.input.files.includes(key) && Date.parse(record.startedAt) >= since ? [record] : [];
      })
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /**
   * Waits for an execution to end and returns its record. One still RUNNING whose process is gone ended
   * without finishing: it is returned as FAILED, saying so.
   */
  async follow(name: string, pollMs = 200): Promise<ExecutionRecord> {
    for (;;) {
      const record = this.read(name);
      if (!record) throw new Error(`no execution ${name} is recorded in ${this.dir}`);
      if (record.status !== 'RUNNING') return record;
      if (!isAlive({ ...record, execution: name, executionArn: name })) {
        const cause = `its process ${record.pid} (${record.command}) is gone`;
        return { ...record, status: 'FAILED', error: { name: 'ExecutionAbandoned', cause } };
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
