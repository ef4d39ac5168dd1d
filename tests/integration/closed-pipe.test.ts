import { expect } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/project';
import { removeDir, tempDir } from '../helpers/lake';

// `stedi tables | head` and the like (issue 21): a reader that closes its end of the pipe early.
const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const ENV = { ...process.env, STEDI_PII_SALT: 'closed-pipe-salt-0123456789' };

/** Runs the CLI with its stdout's reading end closed before it writes: every write of it meets EPIPE. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a command whose reader closed the pipe', () => {
  let dir: string;
  let lake: string;
  beforeAll(() => {
    dir = tempDir('closed-pipe');
    lake = path.join(dir, 'lake');
    const generate = spawnSync(process.execPath, [BIN, 'generate', '--customers', '40', '--lake', lake], { env: ENV });
    expect(generate.status).toBe(0);
  });
  afterAll(() => removeDir(dir));

  it('finishes a run (its tables committed) without an EPIPE stack trace', async () => {
    const run = await withClosedStdout(['run', '--lake', lake]);
    expect(run.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
    expect(run.code).toBe(0);
    const tables = spawnSync(process.execPath, [BIN, 'tables', '--lake', lake, '--json'], {
      env: ENV,
      encoding: 'utf8',
    });
    expect(tables.status).toBe(0);
    expect(tables.stdout).toContain('machine_learning_curated');
  });

  it.each([['tables'], ['quarantine'], ['query', 'select * from customer_trusted']])(
    'stedi %s exits 0 without an EPIPE stack trace',
    async (...command: string[]) => {
      const result = await withClosedStdout([...command, '--lake', lake]);
      expect(result.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
      expect(result.code).toBe(0);
    },
  );
});
