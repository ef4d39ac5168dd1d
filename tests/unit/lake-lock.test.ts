import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { LakeBusyError, LakeLock, LakeLockHolder, isAlive, processStartTime } from '../../src/lake/lake-lock';
import { nextTurn } from '../helpers/wait';

const owner = (execution: string) => ({ execution, executionArn: `arn:test:${execution}`, command: 'test' });

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

function writeHolder(lock: LakeLock, holder: Partial<LakeLockHolder>): void {
  writeFileSync(
    lock.file,
    JSON.stringify({
      ...owner('dead-run'),
      pid: deadPid(),
      host: hostname(),
      startedAt: '2026-11-30T10:00:00.000Z',
      ...holder,
    }),
  );
}

describe('the lake lock', () => {
  let dir: string;
  let lock: LakeLock;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'stedi-lock-'));
    lock = new LakeLock(new Lake(dir));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is a file naming the execution, pid, host and start time, removed on release', async () => {
    const held = await lock.acquire(owner('first'));
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toEqual({
      ...owner('first'),
      pid: process.pid,
      host: hostname(),
      startedAt: expect.stringMatching(/Z$/),
      processStart: processStartTime(process.pid),
    });
    expect(await lock.holder()).toEqual({ holder: held.holder, alive: true });
    await held.release();
    expect(existsSync(lock.file)).toBe(false);
    expect(await lock.holder()).toBeUndefined();
  });

  it('with wait: false fails at once, naming the running execution', async () => {
    const held = await lock.acquire(owner('first'));
    const error = await lock.acquire(owner('second'), { wait: false }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(LakeBusyError);
    expect((error as Error).message).toMatch(
      /^execution first is running on this lake \(test, pid \d+ on .*\); not waiting/,
    );
    await held.release();
  });

  it('makes the next one wait, saying for which execution once, and hands over when released', async () => {
    const held = await lock.acquire(owner('first'));
    const waits: string[] = [];
    // The waiter's clock, stepped by the test: it looks three times while `first` holds, then waits until
    // `first` has released.
    let looks = 0;
    let lookedThrice!: () => void;
    const thirdLook = new Promise<void>((resolve) => (lookedThrice = resolve));
    let releasedFirst!: () => void;
    const firstReleased = new Promise<void>((resolve) => (releasedFirst = resolve));
    const second = lock.acquire(owner('second'), {
      onWaiting: (h) => waits.push(h.execution),
      sleep: async () => {
        if (++looks === 3) {
          lookedThrice();
          await firstReleased;
        }
      },
    });
    await thirdLook;
    expect(waits).toEqual(['first']);
    await held.release();
    releasedFirst();
    const next = await second;
    expect(next.holder.execution).toBe('second');
    expect((await lock.holder())?.holder.execution).toBe('second');
    await next.release();
  });

  it('takes over the lock of a process that is gone (kill -9), saying so', async () => {
    writeHolder(lock, {});
    const tookOver: string[] = [];
    const held = await lock.acquire(owner('next'), { wait: false, onTakeover: (h) => tookOver.push(h.execution) });
    expect(tookOver).toEqual(['dead-run']);
    expect(held.tookOver.map((h) => h.execution)).toEqual(['dead-run']);
    await held.release();
  });

  it('tells a reused pid from the holder by its process start time', () => {
    const me = { ...owner('x'), pid: process.pid, host: hostname(), startedAt: '' };
    expect(isAlive({ ...me, processStart: processStartTime(process.pid) })).toBe(true);
    expect(isAlive({ ...me, processStart: '1' })).toBe(processStartTime(process.pid) === undefined);
    expect(isAlive({ ...me, host: 'another-host', pid: deadPid() })).toBe(true); // cannot tell: never taken over
  });

  it('lets exactly one of many waiters take over a dead lock', async () => {
    writeHolder(lock, {});
    const holders: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map(async (name) => {
        // Between looks, one turn of the event loop: the others run, no time need pass.
        const held = await lock.acquire(owner(name), { sleep: nextTurn });
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        holders.push(name);
        for (let turn = 0; turn < 10; turn++) await nextTurn(); // held while the others look
        concurrent--;
        await held.release();
      }),
    );
    expect(holders.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(maxConcurrent).toBe(1);
  });
});
