/**
 * `npm run bench`: times `stedi run` on generated data at 1x, 10x and 100x the STEDI volume and
 * on the real STEDI files, next to the same SQL run straight on DuckDB (bench/baseline.ts), and
 * prints each figure beside its target. Both are child processes, so their start-up counts and
 * peak memory can be read by GNU time.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generate } from '../src/generate';
import { Lake } from '../src/local/lake';
import { projectRoot } from '../src/project';

const STEDI_CUSTOMERS = 956;
const DEFAULT_SCALES = [1, 10, 100];
const TARGET_100X_SECONDS = 30;
const TARGET_100X_MIB = 2048;
const TARGET_RATIO = 1.2;
const TARGET_REAL_SECONDS = 2;
const TARGET_BUNDLE_KIB = 400;
const TARGET_INIT_MS = 100;
const GNU_TIME = '/usr/bin/time';
// One salt for both sides, so the hashed customerIds (and the work to make them) are the same.
const SALT = 'bench-salt-0123456789';
const LANDING_TABLES = ['customer_landing', 'accelerometer_landing', 'step_trainer_landing'];

const HELP = `usage: npm run bench [-- --scales 1,10,100]

Times \`stedi run\` on generated data (1x = ${STEDI_CUSTOMERS} customers, the STEDI volume) and on
the real STEDI data, and the same SQL run directly on DuckDB as a baseline.

  --scales LIST   comma-separated multiples of the STEDI volume (default ${DEFAULT_SCALES.join(',')})
  --help          show this help

Generated data is kept in .bench/data-<N>x/ and reused by later runs.`;

interface Measured {
  wallS: number;
  /** Peak resident memory of the child in MiB; undefined without GNU time. */
  peakMiB?: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

interface StediSummary {
  status: string;
  tables: Record<string, { rows: number }>;
  error?: string;
}

interface BaselineSummary {
  jobs: { name: string; target: string; rows: number; ms: number }[];
}

interface ScaleResult {
  scale: number;
  customers: number;
  landingRows: number;
  stedi: Measured;
  baseline: Measured;
}

const root = projectRoot();
const benchDir = path.join(root, '.bench');
const hasGnuTime = existsSync(GNU_TIME);

function parseArgs(argv: string[]): number[] {
  let scales = DEFAULT_SCALES;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const value = arg === '--scales' ? argv[++i] : arg.startsWith('--scales=') ? arg.slice('--scales='.length) : undefined;
    if (value === undefined) fail(arg === '--scales' ? '--scales needs a value, e.g. 1,10' : `unknown argument ${arg}\n\n${HELP}`, 2);
    scales = value.split(',').map((s) => Number(s.trim()));
    if (scales.length === 0 || scales.some((n) => !Number.isInteger(n) || n < 1)) {
      fail(`--scales ${value}: expected whole numbers >= 1, e.g. 1,10,100`, 2);
    }
  }
  return scales;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(code);
}

const say = (line = ''): void => void process.stdout.write(`${line}\n`);
const mib = (bytes: number): number => bytes / 1024 / 1024;
const fmt = (n: number | undefined, digits = 2): string => (n === undefined ? 'n/a' : n.toFixed(digits));
const grouped = (n: number): string => n.toLocaleString('en-US');

/** Runs a command from the repo root under GNU time (when present) for its peak RSS. */
function measure(command: string[]): Promise<Measured> {
  const [file, args] = hasGnuTime ? [GNU_TIME, ['-f', '%e %M', ...command]] : [command[0], command.slice(1)];
  const env: NodeJS.ProcessEnv = { ...process.env, STEDI_PII_SALT: SALT };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = (performance.now() - started) / 1000;
      let peakMiB: number | undefined;
      if (hasGnuTime) {
        // GNU time writes "%e %M" as the last line of stderr, after the child has exited.
        const lines = stderr.trimEnd().split('\n');
        const m = /^([\d.]+) (\d+)$/.exec(lines[lines.length - 1] ?? '');
        if (m) {
          peakMiB = Number(m[2]) / 1024;
          stderr = lines.slice(0, -1).join('\n');
        }
      }
      resolve({ wallS, peakMiB, code, stdout, stderr });
    });
  });
}

function lastJsonLine<T>(text: string, what: string): T {
  const line = text.trimEnd().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    return fail(`${what}: the last stdout line is not JSON: ${line}`);
  }
}

async function ensureData(scale: number): Promise<string> {
  const dir = path.join(benchDir, `data-${scale}x`);
  const marker = path.join(dir, '.complete');
  if (existsSync(marker)) {
    say(`  reusing generated data in ${path.relative(root, dir)}/`);
    return dir;
  }
  const customers = scale * STEDI_CUSTOMERS;
  say(`  generating ${grouped(customers)} customers into ${path.relative(root, dir)}/ ...`);
  const started = performance.now();
  await rm(dir, { recursive: true, force: true });
  const files = await generate(dir, 'drop', { customers, seed: 1 });
  // Written last, so an interrupted generation is redone rather than reused.
  await writeFile(marker, `${JSON.stringify({ customers, seed: 1, files: files.length })}\n`);
  say(`  generated ${files.length} files in ${fmt((performance.now() - started) / 1000, 1)} s`);
  return dir;
}

/**
 * `stedi run --json` on a fresh lake; exits non-zero unless the run SUCCEEDED. With `predrop`
 * the files are dropped into the landing zone first (timed apart: at 100x it is a 1.1 GB copy
 * the baseline does not make) and `stedi run` runs over what landing holds.
 */
async function runStedi(landing: string, lakeName: string, predrop: boolean): Promise<{ measured: Measured; summary: StediSummary }> {
  const lake = path.join(benchDir, lakeName);
  await rm(lake, { recursive: true, force: true });
  await mkdir(lake, { recursive: true });
  if (predrop) {
    const started = performance.now();
    await new Lake(lake).dropFolder(landing);
    say(`  dropped the landing files into the lake in ${fmt((performance.now() - started) / 1000)} s (not counted below)`);
  }
  const args = predrop ? ['--lake', lake] : ['--landing', landing, '--lake', lake];
  const measured = await measure(['node', 'bin/stedi.js', 'run', ...args, '--json']);
  const summary = lastJsonLine<StediSummary>(measured.stdout, 'stedi run');
  if (measured.code !== 0 || summary.status !== 'SUCCEEDED') {
    process.stderr.write(measured.stderr + '\n');
    fail(`stedi run on ${landing} ended ${summary.status} (exit ${measured.code})${summary.error ? `: ${summary.error}` : ''}`);
  }
  return { measured, summary };
}

async function runBaseline(landing: string, scale: number): Promise<{ measured: Measured; summary: BaselineSummary }> {
  const out = path.join(benchDir, `baseline-${scale}x`);
  const measured = await measure(['node', 'dist/bench/baseline.js', landing, out]);
  if (measured.code !== 0) {
    process.stderr.write(measured.stderr + '\n');
    fail(`baseline on ${landing} failed (exit ${measured.code})`);
  }
  return { measured, summary: lastJsonLine<BaselineSummary>(measured.stdout, 'baseline') };
}

/** Per-job seconds from stedi's "  ✓ job: N in, M out (1.23s)" progress lines on stderr. */
function stediJobSeconds(stderr: string): Map<string, number> {
  const jobs = new Map<string, number>();
  for (const m of stderr.matchAll(/✓ (\w+): .*\(([\d.]+)s\)\s*$/gm)) jobs.set(m[1], Number(m[2]));
  return jobs;
}

async function benchScale(scale: number): Promise<ScaleResult> {
  const customers = scale * STEDI_CUSTOMERS;
  say(`\n== ${scale}x: ${grouped(customers)} customers ==`);
  const data = await ensureData(scale);

  say('  running stedi run ...');
  const stedi = await runStedi(data, `lake-${scale}x`, true);
  const landingRows = LANDING_TABLES.reduce((n, t) => n + (stedi.summary.tables[t]?.rows ?? 0), 0);
  say(`  stedi run: ${fmt(stedi.measured.wallS)} s, ${grouped(Math.round(landingRows / stedi.measured.wallS))} rows/s, ` +
    `peak ${fmt(stedi.measured.peakMiB, 0)} MiB (${grouped(landingRows)} landing rows)`);

  say('  running baseline (same SQL on plain DuckDB) ...');
  const baseline = await runBaseline(data, scale);
  const ratio = stedi.measured.wallS / baseline.measured.wallS;
  say(`  baseline:  ${fmt(baseline.measured.wallS)} s, peak ${fmt(baseline.measured.peakMiB, 0)} MiB; ` +
    `overhead ratio ${fmt(ratio)} (target <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'OK' : 'MISSED'})`);

  // Per job, so an overhead can be traced to a step; rows must agree or the comparison is void.
  const stediJobs = stediJobSeconds(stedi.measured.stderr);
  say('  job                                stedi s  baseline s  rows (stedi / baseline)');
  for (const job of baseline.summary.jobs) {
    const ours = stedi.summary.tables[job.target]?.rows;
    const mark = ours === job.rows ? '' : '  <- ROW COUNTS DIFFER';
    say(`  ${job.name.padEnd(34)} ${fmt(stediJobs.get(job.name)).padStart(7)}  ${fmt(job.ms / 1000).padStart(10)}  ` +
      `${grouped(ours ?? 0)} / ${grouped(job.rows)}${mark}`);
  }
  // What the jobs don't account for: process start-up, DuckDB start, the state machine, the catalog.
  const jobsS = (ms: number[]): number => ms.reduce((a, b) => a + b, 0);
  const stediRest = stedi.measured.wallS - jobsS([...stediJobs.values()]);
  const baselineRest = baseline.measured.wallS - jobsS(baseline.summary.jobs.map((j) => j.ms / 1000));
  say(`  ${'(outside the jobs)'.padEnd(34)} ${fmt(stediRest).padStart(7)}  ${fmt(baselineRest).padStart(10)}`);
  return { scale, customers, landingRows, stedi: stedi.measured, baseline: baseline.measured };
}

function target(label: string, goal: string, measured: string, ok: boolean | undefined): void {
  const verdict = ok === undefined ? 'not measured' : ok ? 'OK' : 'MISSED';
  say(`  ${label.padEnd(26)} ${goal.padEnd(12)} measured ${measured.padEnd(12)} ${verdict}`);
}

/** The landing handler bundled as it is deployed: its size and its module init time (median of 5 cold starts). */
async function benchHandler(): Promise<{ kib: number; initMs: number }> {
  say('\n== landing handler ==');
  const esbuild = require('esbuild') as typeof import('esbuild');
  const options = (require(path.join(root, 'esbuild.config.js')) as () => Record<string, unknown>)();
  const { exclude: _exclude, ...buildOptions } = options;
  void _exclude;
  const outfile = path.join(benchDir, 'on-landing', 'on-landing.js');
  await esbuild.build({ ...buildOptions, entryPoints: [path.join(root, 'functions', 'on-landing.ts')], outfile, logLevel: 'error' });
  const kib = statSync(outfile).size / 1024;
  const script = `const t = process.hrtime.bigint(); require(${JSON.stringify(outfile)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`;
  const env = { ...process.env, STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:bench', AWS_REGION: 'us-east-1' };
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) samples.push(Number(execFileSync(process.execPath, ['--no-warnings', '-e', script], { env, encoding: 'utf8' })));
  const initMs = samples.sort((a, b) => a - b)[2];
  say(`  bundle (minified, SDK included): ${fmt(kib, 0)} KiB; module init: ${fmt(initMs, 1)} ms (median of 5)`);
  return { kib, initMs };
}

async function main(): Promise<void> {
  const scales = parseArgs(process.argv.slice(2));
  await mkdir(benchDir, { recursive: true });

  say('stedi-lakehouse benchmark');
  say(`  machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ` +
    `${fmt(mib(os.totalmem()) / 1024, 1)} GiB memory, ${os.type()} ${os.release()} ${os.arch()}, node ${process.version}`);
  say(`  peak memory: ${hasGnuTime ? `${GNU_TIME} -f '%e %M' (max RSS of the child)` : `not measured (${GNU_TIME} not found)`}`);

  const handler = await benchHandler();
  const results: ScaleResult[] = [];
  for (const scale of scales) results.push(await benchScale(scale));

  const realLanding = path.resolve(root, '..', 'shared', 'data', 'stedi', 'landing');
  say('\n== real STEDI data ==');
  let real: Measured | undefined;
  if (existsSync(realLanding)) {
    say(`  running stedi run on ${realLanding} ...`);
    real = (await runStedi(realLanding, 'lake-real', false)).measured;
    say(`  stedi run: ${fmt(real.wallS)} s, peak ${fmt(real.peakMiB, 0)} MiB`);
  } else {
    say(`  skipped: ${realLanding} not found`);
  }

  say('\n== targets ==');
  const x100 = results.find((r) => r.scale === 100);
  target('100x wall time', `< ${TARGET_100X_SECONDS} s`, x100 ? `${fmt(x100.stedi.wallS)} s` : 'n/a', x100 && x100.stedi.wallS < TARGET_100X_SECONDS);
  target('100x peak memory', `< ${TARGET_100X_MIB} MiB`, x100?.stedi.peakMiB !== undefined ? `${fmt(x100.stedi.peakMiB, 0)} MiB` : 'n/a',
    x100?.stedi.peakMiB === undefined ? undefined : x100.stedi.peakMiB < TARGET_100X_MIB);
  for (const r of results) {
    const ratio = r.stedi.wallS / r.baseline.wallS;
    target(`overhead ratio ${r.scale}x`, `<= ${TARGET_RATIO}`, fmt(ratio), ratio <= TARGET_RATIO);
  }
  target('handler bundle', `<= ${TARGET_BUNDLE_KIB} KiB`, `${fmt(handler.kib, 0)} KiB`, handler.kib <= TARGET_BUNDLE_KIB);
  target('handler module init', `<= ${TARGET_INIT_MS} ms`, `${fmt(handler.initMs, 1)} ms`, handler.initMs <= TARGET_INIT_MS);
  target('real STEDI data wall time', `< ${TARGET_REAL_SECONDS} s`, real ? `${fmt(real.wallS)} s` : 'n/a', real && real.wallS < TARGET_REAL_SECONDS);

  say('\n== results (Markdown) ==\n');
  say('| scale | customers | landing rows | stedi run wall s | rows/s | peak MiB | baseline wall s | ratio |');
  say('|------:|----------:|-------------:|-----------------:|-------:|---------:|----------------:|------:|');
  for (const r of results) {
    say(`| ${r.scale}x | ${grouped(r.customers)} | ${grouped(r.landingRows)} | ${fmt(r.stedi.wallS)} | ` +
      `${grouped(Math.round(r.landingRows / r.stedi.wallS))} | ${fmt(r.stedi.peakMiB, 0)} | ${fmt(r.baseline.wallS)} | ` +
      `${fmt(r.stedi.wallS / r.baseline.wallS)} |`);
  }
  say(`\n${os.cpus().length} CPUs, ${fmt(mib(os.totalmem()) / 1024, 1)} GiB memory; ` +
    `command: npm run bench -- --scales ${scales.join(',')}`);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.stack ?? error.message : String(error)));
