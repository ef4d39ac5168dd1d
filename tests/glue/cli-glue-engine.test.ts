import { afterAll, expect, jest, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/project';
import { describeWithGlue } from '../helpers/glue';
import { removeDir, tempDir } from '../helpers/lake';

jest.setTimeout(20 * 60_000);

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const ENV = { ...process.env, STEDI_PII_SALT: 'cli-glue-salt-0123456789' };

function stedi(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const summaryOf = (stdout: string) =>
  JSON.parse(stdout.trim().split('\n').pop()!) as {
    status: string;
    tables: Record<string, { rows: number }>;
    quarantined: Record<string, number>;
    emailCaseMismatches: number;
    landingFiles: Record<string, { checked: number; reused: number; removed: number }>;
    jobs: { name: string; status: string; rowsOut: number; rowsIn?: Record<string, number> }[];
  };

/** The moto server's port, from the progress line the Glue engine prints. */
const motoPort = (log: string) => /moto server on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1];
/** Whether a moto server still listens on the port (after the command it must not). */
const listening = async (port: string) =>
  fetch(`http://127.0.0.1:${port}/moto-api/`).then(
    () => true,
    () => false,
  );

describeWithGlue('stedi run --engine glue', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  test('runs the same state machine on Spark: the same summary as the DuckDB engine, results in <lake>/_glue, --from reuses them, the server stopped', async () => {
    const dir = tempDir('cli-glue');
    dirs.push(dir);
    const landing = path.join(dir, 'landing');
    expect(stedi(['generate', '--customers', '300', '--out', landing, '--bad-lines', '0.01']).code).toBe(0);

    const duckdb = stedi(['run', '--json', '--lake', path.join(dir, 'duckdb'), '--landing', landing]);
    expect(duckdb.code).toBe(0);
    const glue = stedi(['run', '--engine', 'glue', '--json', '--lake', path.join(dir, 'glue'), '--landing', landing]);
    expect(glue.stderr).toContain('on the Glue engine');
    expect(glue.code).toBe(0);
    const [expected, actual] = [summaryOf(duckdb.stdout), summaryOf(glue.stdout)];
    // The same shape (the same keys at every level but the durations' values) and the same counts.
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
    expect(actual.status).toBe('SUCCEEDED');
    expect(actual.tables).toEqual(expected.tables);
    expect(actual.quarantined).toEqual(expected.quarantined);
    expect(actual.landingFiles).toEqual(expected.landingFiles);
    expect(actual.emailCaseMismatches).toBe(expected.emailCaseMismatches);
    expect(actual.jobs.map(({ name, status, rowsOut, rowsIn }) => ({ name, status, rowsOut, rowsIn }))).toEqual(
      expected.jobs.map(({ name, status, rowsOut, rowsIn }) => ({ name, status, rowsOut, rowsIn })),
    );
    const port = motoPort(glue.stderr);
    expect(port).toBeDefined();
    expect(await listening(port!)).toBe(false);

    // The results lake: `stedi query` and `stedi check` read it.
    const results = path.join(dir, 'glue', '_glue');
    const count = stedi(['query', '--json', '--lake', results, 'select count(*) as n from machine_learning_curated']);
    expect(count.code).toBe(0);
    expect(JSON.parse(count.stdout)).toEqual([{ n: expected.tables.machine_learning_curated!.rows }]);
    expect(stedi(['check', '--lake', results]).code).toBe(0);

    // A second run from accelerometer reads customer_trusted as the first Glue run left it in its bucket.
    const from = stedi([
      'run',
      '--engine',
      'glue',
      '--json',
      '--from',
      'accelerometer',
      '--lake',
      path.join(dir, 'glue'),
    ]);
    expect(from.code).toBe(0);
    const again = summaryOf(from.stdout);
    expect(again.jobs.map((j) => j.name)).not.toContain('customer_landing_to_trusted');
    expect(again.tables).toEqual(expected.tables);
    expect(again.landingFiles.accelerometer).toEqual({
      checked: 0,
      reused: expected.landingFiles.accelerometer!.checked,
      removed: 0,
    });
  });

  test('Ctrl-C stops the worker and the moto server, and exits 130', async () => {
    const dir = tempDir('cli-glue-interrupt');
    dirs.push(dir);
    const landing = path.join(dir, 'landing');
    expect(stedi(['generate', '--customers', '50', '--out', landing]).code).toBe(0);
    const child = spawn(
      process.execPath,
      // --verbose: the state lines show when the first job has started
      [BIN, 'run', '--engine', 'glue', '--verbose', '--lake', path.join(dir, 'lake'), '--landing', landing],
      {
        env: ENV,
      },
    );
    let output = '';
    let sent = false;
    const interrupted = new Promise<void>((resolve) => {
      const watch = (chunk: Buffer) => {
        output += chunk.toString();
        // Once the first job has started: Spark and the server are both running.
        // Once: a second Ctrl-C is not handled (the default: the process ends at once).
        if (!sent && output.includes('CustomerLandingToTrusted') && child.exitCode === null) {
          sent = true;
          child.kill('SIGINT');
          resolve();
        }
      };
      child.stdout.on('data', watch);
      child.stderr.on('data', watch);
      // A run that ends before the first job shows fails here, not at the test's timeout.
      child.once('exit', () => resolve());
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await interrupted;
    expect(sent).toBe(true);
    expect(await exited).toBe(130);
    expect(output).toContain('interrupted: stopping the Glue worker and the moto server');
    const port = motoPort(output);
    expect(port).toBeDefined();
    expect(await listening(port!)).toBe(false);
    expect(existsSync(path.join(dir, 'lake', '_glue'))).toBe(true);
  });
});
