import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExecutionRecord, ExecutionRegistry } from '../../src/stand-ins/step-functions/executions';
import { Lake } from '../../src/lake/lake';
import { required } from '../../src/required';

const input = (files: string[]) => ({ from: 'customer' as const, reason: 's3' as const, files });

describe("a lake's execution names (Step Functions: one execution per name)", () => {
  let dir: string;
  let executions: ExecutionRegistry;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'stedi-executions-'));
    executions = new ExecutionRegistry(new Lake(dir));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Rewrites an execution's record with some fields changed; returns the record as it was. */
  function rewrite(name: string, change: Partial<ExecutionRecord>): ExecutionRecord {
    const file = path.join(executions.dir, `${name}.json`);
    const record = JSON.parse(readFileSync(file, 'utf8')) as ExecutionRecord;
    writeFileSync(file, JSON.stringify({ ...record, ...change }));
    return record;
  }

  /** The pid of a process that has ended. */
  function deadPid(): number {
    return Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
    );
  }

  it('gives a name once, whoever asks again, and records how the execution ended', async () => {
    expect(executions.claim('s3-a', input(['customer/landing/a.json']), 'stedi drop')).toBe(true);
    expect(executions.claim('s3-a', input(['customer/landing/a.json']), 'stedi watch')).toBe(false);
    expect(executions.read('s3-a')).toMatchObject({ command: 'stedi drop', status: 'RUNNING', pid: process.pid });
    expect(executions.startedFor('customer/landing/a.json', Date.now() - 60_000).map((r) => r.name)).toEqual(['s3-a']);
    expect(executions.startedFor('customer/landing/a.json', Date.now() + 60_000)).toEqual([]);
    expect(executions.startedFor('customer/landing/b.json', 0)).toEqual([]);
    executions.finish('s3-a', { status: 'FAILED', error: { name: 'States.TaskFailed', cause: 'a job failed' } });
    expect(await executions.follow('s3-a')).toMatchObject({
      status: 'FAILED',
      error: { name: 'States.TaskFailed', cause: 'a job failed' },
    });
  });

  it('reports an execution whose process died while it ran as abandoned, not as running for ever', async () => {
    expect(executions.claim('s3-b', input(['customer/landing/b.json']), 'stedi watch')).toBe(true);
    const dead = deadPid();
    rewrite('s3-b', { pid: dead });
    expect(await executions.follow('s3-b', 10)).toMatchObject({
      status: 'FAILED',
      error: { name: 'ExecutionAbandoned', cause: `its process ${dead} (stedi watch) is gone` },
    });
  });
  it('keeps an ended execution, and its name, for 90 days after it ended, as Step Functions does, then removes it', () => {
    const day = 24 * 60 * 60 * 1000;
    expect(executions.claim('s3-old', input(['customer/landing/a.json']), 'stedi drop')).toBe(true);
    executions.finish('s3-old', { status: 'SUCCEEDED' });
    const ended = Date.parse(required(executions.read('s3-old')?.endedAt, 'endedAt'));
    expect(executions.claim('s3-running', input(['customer/landing/b.json']), 'stedi watch')).toBe(true);

    expect(executions.prune(ended + 90 * day)).toEqual([]);
    expect(executions.has('s3-old')).toBe(true);
    // Past 90 days: the ended one goes; the one still running (its process, this one, alive) stays.
    expect(executions.prune(ended + 90 * day + 1)).toEqual(['s3-old']);
    expect([executions.has('s3-old'), executions.has('s3-running')]).toEqual([false, true]);
  });

  it('lets a name be taken again once its record is past the retention, and prunes when a name is claimed', () => {
    expect(executions.claim('s3-c', input(['customer/landing/c.json']), 'stedi drop')).toBe(true);
    executions.finish('s3-c', { status: 'FAILED', error: { name: 'States.TaskFailed', cause: 'x' } });
    expect(executions.claim('s3-c', input(['customer/landing/c.json']), 'stedi drop')).toBe(false);
    // Age the record: it ended 91 days ago.
    const longAgo = new Date(Date.now() - 91 * 24 * 60 * 60 * 1000).toISOString();
    rewrite('s3-c', { startedAt: longAgo, endedAt: longAgo });
    // Another process (a registry of its own) prunes as it claims; this one pruned within the hour.
    const other = new ExecutionRegistry(new Lake(dir));
    expect(executions.claim('s3-c', input(['customer/landing/c.json']), 'stedi watch')).toBe(false);
    expect(other.claim('s3-c', input(['customer/landing/c.json']), 'stedi watch')).toBe(true);
    expect(executions.read('s3-c')).toMatchObject({ command: 'stedi watch', status: 'RUNNING' });
  });

  it('prunes one process at a time, keeps what it cannot read, and never fails a claim for it', () => {
    expect(executions.claim('s3-e', input(['customer/landing/e.json']), 'stedi drop')).toBe(true);
    executions.finish('s3-e', { status: 'SUCCEEDED' });
    const later = Date.now() + 91 * 24 * 60 * 60 * 1000;
    // A record cut short (a power cut before its write reached the disk) is kept, and read as none.
    writeFileSync(path.join(executions.dir, 's3-cut.json'), '');
    // While another process prunes (its lock there, fresh), this one leaves it all to that one.
    const lock = path.join(executions.dir, '.prune.lock');
    writeFileSync(lock, '12345');
    expect(executions.prune(later)).toEqual([]);
    expect(executions.has('s3-e')).toBe(true);
    // A lock left by a pruner that died (older than 10 minutes) is removed; the next prune runs.
    expect(executions.prune(Date.now() + 11 * 60 * 1000)).toEqual([]);
    expect(existsSync(lock)).toBe(false);
    expect(executions.prune(later)).toEqual(['s3-e']);
    expect([executions.has('s3-cut'), existsSync(lock)]).toEqual([true, false]);
    expect(new ExecutionRegistry(new Lake(dir)).claim('s3-f', input(['customer/landing/f.json']), 'stedi watch')).toBe(
      true,
    );
    expect(executions.startedFor('customer/landing/f.json', 0).map((r) => r.name)).toEqual(['s3-f']);
  });

  it('removes a record left RUNNING by a process that died, 90 days after it started', () => {
    expect(executions.claim('s3-d', input(['customer/landing/d.json']), 'stedi watch')).toBe(true);
    const record = rewrite('s3-d', { pid: deadPid() });
    const started = Date.parse(record.startedAt);
    expect(executions.prune(started + 89 * 24 * 60 * 60 * 1000)).toEqual([]);
    expect(executions.prune(started + 91 * 24 * 60 * 60 * 1000)).toEqual(['s3-d']);
  });
});
