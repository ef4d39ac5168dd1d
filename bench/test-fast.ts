/**
 * `npm run bench:test-fast`: times `npm run test:fast`'s jest (projects unit and integration) from a built
 * checkout and prints the figure beside its target, the load average around it (the machine may be shared)
 * and the slowest suites. Then, unless --no-open-handles, runs the same projects again with
 * --detectOpenHandles (in band, so not timed) and prints the handles jest found left open.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../src/project';

const TARGET_SECONDS = 90;
const GNU_TIME = '/usr/bin/time';

interface JestReport {
  success: boolean;
  numTotalTests: number;
  testResults: { name: string; startTime: number; endTime: number }[];
}

function main(): number {
  if (process.argv.includes('--help')) {
    console.log(
      `usage: npm run bench:test-fast [-- --no-open-handles]\n\nRuns jest --selectProjects unit integration once; target: at most ${TARGET_SECONDS} s.\n` +
        'Then runs them again with --detectOpenHandles and prints what jest found left open (target: nothing).',
    );
    return 0;
  }
  const root = projectRoot();
  const out = mkdtempSync(path.join(os.tmpdir(), 'bench-test-fast-'));
  const reportFile = path.join(out, 'jest.json');
  const loadBefore = os.loadavg();
  const started = process.hrtime.bigint();
  const jestArgs = [
    require.resolve('jest/bin/jest'),
    '--selectProjects',
    'unit',
    'integration',
    '--json',
    '--outputFile',
    reportFile,
  ];
  // GNU time counts the CPU of jest and every worker and child it waited for: a figure the load of other
  // processes on a shared machine barely moves, unlike the wall time.
  const cpuFile = path.join(out, 'cpu');
  const gnuTime = existsSync(GNU_TIME);
  const jest = gnuTime
    ? spawnSync(GNU_TIME, ['-f', '%U %S', '-o', cpuFile, process.execPath, ...jestArgs], {
        cwd: root,
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    : spawnSync(process.execPath, jestArgs, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const cpuSeconds = gnuTime
    ? readFileSync(cpuFile, 'utf8')
        .trim()
        .split(/\s+/)
        .reduce((sum, v) => sum + Number(v), 0)
    : undefined;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const loadAfter = os.loadavg();
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as JestReport;
  rmSync(out, { recursive: true, force: true });
  const slowest = report.testResults
    .map((r) => ({ suite: path.relative(root, r.name), seconds: (r.endTime - r.startTime) / 1000 }))
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 8);
  console.log(
    `\ntest:fast (jest unit + integration): ${seconds.toFixed(1)} s for ${report.numTotalTests} tests, ` +
      `${report.success ? 'all passed' : 'SOME FAILED'} (target <= ${TARGET_SECONDS} s: ${seconds <= TARGET_SECONDS ? 'ok' : 'OVER TARGET'})`,
  );
  console.log(
    `cores: ${os.cpus().length}; load average (1, 5, 15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}, after: ${loadAfter.map((l) => l.toFixed(2)).join(', ')}`,
  );
  if (cpuSeconds !== undefined)
    console.log(
      `CPU (user + system, jest and its workers): ${cpuSeconds.toFixed(0)} s, ${(cpuSeconds / os.cpus().length).toFixed(0)} s per core`,
    );
  console.log('slowest suites:');
  for (const { suite, seconds: s } of slowest) console.log(`  ${s.toFixed(1).padStart(6)} s  ${suite}`);
  if (jest.status !== 0 || process.argv.includes('--no-open-handles')) return jest.status ?? 1;
  return openHandles(root);
}

/** jest --detectOpenHandles over the same projects: the handles it reports, printed; 1 when there are any. */
function openHandles(root: string): number {
  const run = spawnSync(
    process.execPath,
    [require.resolve('jest/bin/jest'), '--selectProjects', 'unit', 'integration', '--detectOpenHandles'],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const output = `${run.stdout}${run.stderr}`;
  const found = /Jest has detected the following (\d+) open handles?/.exec(output);
  const count = found ? Number(found[1]) : 0;
  console.log(
    `--detectOpenHandles: ${count} open handle(s) (target: 0: ${count === 0 ? 'ok' : 'OVER TARGET'})` +
      (run.status === 0 ? '' : `; jest exited ${run.status ?? run.signal}`),
  );
  if (count > 0) console.log(output.slice(found!.index));
  return run.status === 0 && count === 0 ? 0 : 1;
}

process.exitCode = main();
