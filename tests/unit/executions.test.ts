import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExecutionRecord, ExecutionRegistry } from '../../src/local/executions';
import { Lake } from '../../src/local/lake';

const input = (files: string[]) => ({ from: 'customer' as const, reason: 's3' as const, files });

describe("a lake's execution names (Step Functions: one execution per name)", () => {
  let dir: string;
  let executions: ExecutionRegistry;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'stedi-executions-'));
    executions = new ExecutionRegistry(new Lake(dir));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

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
    const file = path.join(executions.dir, 's3-b.json');
    const dead = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
    );
    const record = JSON.parse(readFileSync(file, 'utf8')) as ExecutionRecord;
    writeFileSync(file, JSON.stringify({ ...record, pid: dead }));
    expect(await executions.follow('s3-b', 10)).toMatchObject({
      status: 'FAILED',
      error: { name: 'ExecutionAbandoned', cause: `its process ${dead} (stedi watch) is gone` },
    });
  });
});
