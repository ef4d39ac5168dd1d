import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { Lake } from './lake';

/** Who runs an execution on the lake. */
export interface LakeLockOwner {
  /** The execution name (local-… for `stedi run`, s3-… for a file drop). */
  execution: string;
  /** $$.Execution.Id of that execution: what the pipeline lock table records. */
  executionArn: string;
  /** The command that holds it, e.g. "stedi run". */
  command: string;
}

/** The content of the lock file. */
export interface LakeLockHolder extends LakeLockOwner {
  pid: number;
  host: string;
  startedAt: string;
  /** The process's start time (Linux /proc/<pid>/stat), so a pid the system has reused is not taken for the holder. */
  processStart?: string;
}

/** The lake is held by a running execution and the caller would not wait (--no-wait). */
export class LakeBusyError extends Error {
  constructor(readonly holder: LakeLockHolder) {
    super(`execution ${holder.execution} is running on this lake (${describeHolder(holder)}); not waiting (--no-wait)`);
    this.name = 'LakeBusy';
  }
}

/** The lock file is there but cannot be read, or is not a lock file this code wrote. The message names it. */
export class LakeLockFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`the lake lock file ${file} ${reason}; remove it if no run is going on`);
    this.name = 'LakeLockFileError';
  }
}

/** Whether parsed JSON has what telling a live holder from a dead one takes: execution, pid, host, start. */
function isLockHolder(value: unknown): value is LakeLockHolder {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.execution === 'string' &&
    Number.isInteger(v.pid) &&
    typeof v.host === 'string' &&
    typeof v.startedAt === 'string'
  );
}

export function describeHolder(holder: LakeLockHolder): string {
  return `${holder.command}, pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}`;
}

export interface AcquireOptions {
  /** Wait for the holder to finish (default), or fail at once with LakeBusyError. */
  wait?: boolean;
  /** Called when a live execution holds the lake and this one starts waiting for it (again for each new holder). */
  onWaiting?: (holder: LakeLockHolder) => void;
  /** Called when the holder's process is gone (killed) and its lock is taken over. */
  onTakeover?: (holder: LakeLockHolder) => void;
  /** How often to look again while waiting. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Waits pollMs between looks (a timer); tests inject their own to step the wait without time passing. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface HeldLakeLock {
  holder: LakeLockHolder;
  /** Holders whose lock this one took over because their process was gone. */
  tookOver: LakeLockHolder[];
  release(): Promise<void>;
}

/** Linux: a process's start time in clock ticks since boot, field 22 of /proc/<pid>/stat. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote a lock file still runs; a holder on another host is taken to be alive. */
export function isAlive(holder: LakeLockHolder): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStartTime(holder.pid);
  return !(holder.processStart && start && start !== holder.processStart);
}

const abortError = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason : new Error('stopped while waiting for the lake');

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(abortError(signal!));
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

/**
 * The lake lock: one execution at a time on a local lake, across processes. The lock file
 * `<lake>/_lock.json` names the execution, pid, host and start time. It is created whole and
 * atomically (written aside, then hard-linked into place, which fails if it exists), so a reader
 * never sees half of it. A lock whose process is gone (kill -9) is taken over; a takeover holds
 * `_lock.json.takeover` (created exclusively) while it checks the file is still the dead holder's
 * and removes it, so two waiters never both take it. Its file changes are synchronous, on the main
 * thread, as all the lake's own are: their order is then the program's (libuv's thread pool would
 * spread them over its threads), which the crash tests rely on to kill a run at each of them.
 */
export class LakeLock {
  readonly file: string;

  constructor(readonly lake: Lake) {
    this.file = lake.path('_lock.json');
  }

  /** The current holder, if any, and whether its process still runs. */
  holder(): Promise<{ holder: LakeLockHolder; alive: boolean } | undefined> {
    try {
      const holder = this.read();
      return Promise.resolve(holder && { holder, alive: isAlive(holder) });
    } catch (error) {
      // A promise that rejects, as callers expect of it (e.g. a LakeLockFileError), never a throw.
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async acquire(owner: LakeLockOwner, options: AcquireOptions = {}): Promise<HeldLakeLock> {
    const { wait = true, pollMs = 100 } = options;
    mkdirSync(this.lake.root, { recursive: true });
    const holder: LakeLockHolder = {
      ...owner,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      processStart: processStartTime(process.pid),
    };
    const text = `${JSON.stringify(holder, null, 2)}\n`;
    const tmp = `${this.file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, text);
    const tookOver: LakeLockHolder[] = [];
    let reported: string | undefined;
    try {
      for (;;) {
        try {
          linkSync(tmp, this.file);
          return { holder, tookOver, release: () => this.release(holder) };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const current = this.read();
        if (!current) continue; // released in between: try again at once
        if (!isAlive(current)) {
          if (await this.takeOver(current)) {
            tookOver.push(current);
            options.onTakeover?.(current);
          }
          continue;
        }
        if (!wait) throw new LakeBusyError(current);
        const identity = `${current.execution} ${current.pid} ${current.startedAt}`;
        if (identity !== reported) {
          reported = identity;
          options.onWaiting?.(current);
        }
        await (options.sleep ?? sleep)(pollMs, options.signal);
      }
    } finally {
      removeQuietly(tmp);
    }
  }

  private read(): LakeLockHolder | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      const why =
        code === 'EISDIR'
          ? 'is a folder'
          : code === 'EACCES' || code === 'EPERM'
            ? 'cannot be read: permission denied'
            : `cannot be read: ${(error as Error).message}`;
      throw new LakeLockFileError(this.file, why);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    // Not written by this code (it links whole files, every field set): report it rather than guess.
    if (!isLockHolder(parsed)) throw new LakeLockFileError(this.file, 'is not a lake lock file this version wrote');
    return parsed;
  }

  /** Removes a dead holder's lock file, unless someone else already did or took the lock since. */
  private async takeOver(dead: LakeLockHolder): Promise<boolean> {
    const guard = `${this.file}.takeover`;
    let fd: number;
    try {
      fd = openSync(guard, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Another process is taking over. A guard left by one that died meanwhile is removed once it is old.
      let age = 0;
      try {
        age = Date.now() - statSync(guard).mtimeMs;
      } catch {
        // gone meanwhile
      }
      if (age > 10_000) removeQuietly(guard);
      await sleep(20);
      return false;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const current = this.read();
      if (!current || JSON.stringify(current) !== JSON.stringify(dead)) return false;
      unlinkSync(this.file);
      return true;
    } finally {
      removeQuietly(guard);
    }
  }

  /** Removes the lock file if it is still this holder's. */
  private release(holder: LakeLockHolder): Promise<void> {
    let current: LakeLockHolder | undefined;
    try {
      current = this.read();
    } catch {
      current = undefined;
    }
    if (current && current.pid === holder.pid && current.startedAt === holder.startedAt) unlinkSync(this.file);
    return Promise.resolve();
  }
}

/** Removes a file of the lock's own (a temporary copy, a takeover guard), if it is still there. */
function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
