/**
 * `npm run bench`: times `stedi run` on generated data at 1x, 10x and 100x the STEDI volume and
 * on the real STEDI files, next to the same SQL run straight on DuckDB (bench/baseline.ts), and
 * prints each figure beside its target. Both are child processes, so their start-up counts and
 * peak memory can be read by GNU time.
 */
import * as esbuild from 'esbuild';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, linkSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { generate } from '../src/sample/generate';
import { DATASETS, Dataset, LANDING_TABLES, landingPrefix } from '../src/definition/layout';
import { Lake } from '../src/lake/lake';
import { projectRoot } from '../src/project';
import { required } from '../src/required';

const STEDI_CUSTOMERS = 956;
const DEFAULT_SCALES = [1, 10, 100];
const TARGET_100X_SECONDS = 30;
const TARGET_100X_MIB = 2048;
/** Cold: a full run on a fresh lake, against the baseline. */
const TARGET_COLD_RATIO = 1.3;
/** Warm: a rerun with landing unchanged, at 100x, against the baseline (which re-reads everything). */
const TARGET_WARM_RATIO = 0.3;
/** One drop: a run after one new accelerometer file of about 1% of the data, at 100x, against the baseline. */
const TARGET_DROP_RATIO = 0.4;
/** The share of the accelerometer readings the one-drop file holds. */
const DROP_SHARE = 0.01;
const DROP_FILE = 'accelerometer-bench-drop.json';
const TARGET_REAL_SECONDS = 2;
const TARGET_BUNDLE_KIB = 400;
const TARGET_INIT_MS = 100;
const GNU_TIME = '/usr/bin/time';
// One salt for both sides, so the hashed customerIds (and the work to make them) are the same.
const SALT = 'bench-salt-0123456789';

const DEFAULT_REPEAT = 3;

const HELP = `usage: npm run bench [-- --scales 1,10,100] [--repeat N] [--bad-lines RATE]

Times \`stedi run\` on generated data (1x = ${STEDI_CUSTOMERS} customers, the STEDI volume) and on
the real STEDI data, and the same SQL run directly on DuckDB as a baseline: cold (a fresh lake),
warm (the same run again, landing unchanged) and one drop (then one new accelerometer file of
${DROP_SHARE * 100}% of the readings, and a run), each against the baseline over the same landing files.

  --scales LIST   comma-separated multiples of the STEDI volume (default ${DEFAULT_SCALES.join(',')})
  --repeat N      runs of each side per scale, alternating; medians are reported (default ${DEFAULT_REPEAT})
  --bad-lines R   also time \`stedi run\` on data with this share of malformed lines, spread over
                  every file (e.g. 0.001); the baseline cannot read such data, so no ratio
  --help          show this help

Generated data is kept in .bench/data-<N>x/ (and with the drop in .bench/data-<N>x-with-drop/) and
reused by later runs.`;

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
  quarantined?: Record<string, number>;
  landingFiles?: Record<string, { checked: number; reused: number; removed: number }>;
  jobs?: { name: string; skipped?: boolean }[];
  error?: string;
}

interface BaselineSummary {
  jobs: { name: string; target: string; rows: number; ms: number }[];
}

interface ScaleResult {
  scale: number;
  customers: number;
  landingRows: number;
  /** stedi run on a fresh lake, then again with landing unchanged, then after one drop. */
  cold: Summary;
  warm: Summary;
  drop: Summary;
  /** The baseline over landing, and over landing with the drop. */
  baseline: Summary;
  baselineDrop: Summary;
  dropLines: number;
  /** Jobs the drop run skipped, and its accelerometer landing files checked / reused. */
  dropSkipped: string[];
  dropFiles: string;
}

/** Several runs of one side: median wall time, its spread, and the highest peak memory. */
interface Summary {
  wallS: number;
  minS: number;
  maxS: number;
  peakMiB?: number;
}

const root = projectRoot();
const benchDir = path.join(root, '.bench');
const hasGnuTime = existsSync(GNU_TIME);

interface BenchArgs {
  scales: number[];
  repeat: number;
  badLines: number;
}

function parseArgs(argv: string[]): BenchArgs {
  let scales = DEFAULT_SCALES;
  let repeat = DEFAULT_REPEAT;
  let badLines = 0;
  const rest = [...argv];
  for (let arg = rest.shift(); arg !== undefined; arg = rest.shift()) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    if (name !== '--scales' && name !== '--repeat' && name !== '--bad-lines')
      fail(`unknown argument ${arg}\n\n${HELP}`, 2);
    const value = inline ?? rest.shift();
    if (value === undefined)
      fail(`${name} needs a value, e.g. ${name === '--scales' ? '1,10' : name === '--repeat' ? '3' : '0.001'}`, 2);
    if (name === '--scales') {
      scales = value.split(',').map((v) => Number(v.trim()));
      if (scales.length === 0 || scales.some((n) => !Number.isInteger(n) || n < 1)) {
        fail(`--scales ${value}: expected whole numbers >= 1, e.g. 1,10,100`, 2);
      }
    } else if (name === '--repeat') {
      repeat = Number(value);
      if (!Number.isInteger(repeat) || repeat < 1) fail(`--repeat ${value}: expected a whole number >= 1`, 2);
    } else {
      badLines = Number(value);
      if (!(badLines > 0 && badLines < 1)) fail(`--bad-lines ${value}: expected a share in (0, 1), e.g. 0.001`, 2);
    }
  }
  return { scales, repeat, badLines };
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
function measure(command: [string, ...string[]]): Promise<Measured> {
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

async function ensureData(scale: number, badLineRate = 0): Promise<string> {
  const dir = path.join(benchDir, badLineRate > 0 ? `data-${scale}x-bad-${badLineRate}` : `data-${scale}x`);
  const marker = path.join(dir, '.complete');
  if (existsSync(marker)) {
    say(`  reusing generated data in ${path.relative(root, dir)}/`);
    return dir;
  }
  const customers = scale * STEDI_CUSTOMERS;
  say(`  generating ${grouped(customers)} customers into ${path.relative(root, dir)}/ ...`);
  const started = performance.now();
  await rm(dir, { recursive: true, force: true });
  const files = await generate(dir, 'drop', { customers, seed: 1, badLineRate });
  // Written last, so an interrupted generation is redone rather than reused.
  await writeFile(marker, `${JSON.stringify({ customers, seed: 1, badLineRate, files: files.length })}\n`);
  say(`  generated ${files.length} files in ${fmt((performance.now() - started) / 1000, 1)} s`);
  return dir;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  const upper = required(sorted[mid], 'a value to take the median of');
  return sorted.length % 2 ? upper : (required(sorted[mid - 1], 'the value below the median') + upper) / 2;
};

function summarise(runs: Measured[]): Summary {
  const walls = runs.map((r) => r.wallS);
  const peaks = runs.map((r) => r.peakMiB).filter((m): m is number => m !== undefined);
  return {
    wallS: median(walls),
    minS: Math.min(...walls),
    maxS: Math.max(...walls),
    peakMiB: peaks.length ? Math.max(...peaks) : undefined,
  };
}

const spread = (s: Summary): string => (s.minS === s.maxS ? '' : ` (runs ${fmt(s.minS)}-${fmt(s.maxS)})`);

/** Everything a run wrote, so the next run starts from landing only, as the first did. */
async function keepOnlyLanding(lake: string): Promise<void> {
  for (const entry of await readdir(lake, { withFileTypes: true })) {
    const full = path.join(lake, entry.name);
    if (entry.isDirectory() && DATASETS.includes(entry.name as Dataset)) {
      for (const zone of await readdir(full))
        if (zone !== 'landing') await rm(path.join(full, zone), { recursive: true, force: true });
    } else {
      await rm(full, { recursive: true, force: true });
    }
  }
}

/**
 * A fresh lake named `name` with `data` dropped into its landing zone, timed apart: at 100x it is a
 * 1.1 GB copy the baseline does not make.
 */
async function lakeWithLanding(name: string, data: string): Promise<string> {
  const lake = path.join(benchDir, name);
  await rm(lake, { recursive: true, force: true });
  await mkdir(lake, { recursive: true });
  const started = performance.now();
  await new Lake(lake).dropFolder(data);
  say(
    `  dropped the landing files into the lake in ${fmt((performance.now() - started) / 1000)} s (not counted below)`,
  );
  return lake;
}

/** `stedi run --json` over what the lake's landing zone holds; exits non-zero unless the run SUCCEEDED. */
async function runStedi(args: string[], what: string): Promise<{ measured: Measured; summary: StediSummary }> {
  const measured = await measure(['node', 'bin/stedi.js', 'run', ...args, '--json']);
  const summary = lastJsonLine<StediSummary>(measured.stdout, 'stedi run');
  if (measured.code !== 0 || summary.status !== 'SUCCEEDED') {
    process.stderr.write(measured.stderr + '\n');
    fail(
      `stedi run on ${what} ended ${summary.status} (exit ${measured.code})${summary.error ? `: ${summary.error}` : ''}`,
    );
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
  for (const m of stderr.matchAll(/✓ (\w+): .*\(([\d.]+)s\)\s*$/gm))
    jobs.set(required(m[1], 'the job of a progress line'), Number(m[2]));
  return jobs;
}

/**
 * The one-drop file: new readings of the generated customers, about DROP_SHARE of the accelerometer readings
 * (the first files' lines, a week later), and a copy of the data folder with it (hard links) for the baseline.
 */
async function oneDrop(data: string, scale: number): Promise<{ file: string; dataWithDrop: string; lines: number }> {
  const dataWithDrop = path.join(benchDir, `data-${scale}x-with-drop`);
  const file = path.join(dataWithDrop, 'accelerometer', DROP_FILE);
  const marker = path.join(dataWithDrop, '.complete');
  const names = (dataset: string) =>
    readdirSync(path.join(data, dataset))
      .filter((n) => n.endsWith('.json'))
      .sort();
  if (!existsSync(marker)) {
    await rm(dataWithDrop, { recursive: true, force: true });
    for (const dataset of DATASETS) {
      await mkdir(path.join(dataWithDrop, dataset), { recursive: true });
      for (const name of names(dataset))
        linkSync(path.join(data, dataset, name), path.join(dataWithDrop, dataset, name));
    }
    const lines = names('accelerometer').flatMap((name) =>
      readFileSync(path.join(data, 'accelerometer', name), 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    );
    const week = 7 * 86_400_000;
    const drop = lines
      .slice(0, Math.round(lines.length * DROP_SHARE))
      .map((l) => l.replace(/"timestamp":(\d+)/, (_, t: string) => `"timestamp":${Number(t) + week}`));
    await writeFile(file, `${drop.join('\n')}\n`);
    await writeFile(marker, `${drop.length}\n`);
  }
  return { file, dataWithDrop, lines: Number(readFileSync(marker, 'utf8')) };
}

interface Run {
  measured: Measured;
  summary: StediSummary;
}

/**
 * The files are dropped into a fresh lake once. Then, `repeat` times, the lake cut back to its landing zone:
 * `stedi run` (cold), the baseline, `stedi run` again (warm: landing unchanged), the one-drop file dropped
 * and `stedi run` (one drop), and the baseline over landing with that file.
 */
async function benchScale(scale: number, repeat: number): Promise<ScaleResult> {
  const customers = scale * STEDI_CUSTOMERS;
  say(`\n== ${scale}x: ${grouped(customers)} customers ==`);
  const data = await ensureData(scale);
  const drop = await oneDrop(data, scale);
  const lake = await lakeWithLanding(`lake-${scale}x`, data);

  const runs = { cold: [] as Run[], warm: [] as Run[], drop: [] as Run[] };
  const baselines = { full: [] as BaselineRun[], drop: [] as BaselineRun[] };
  for (let run = 1; run <= repeat; run++) {
    await keepOnlyLanding(lake);
    await rm(path.join(lake, landingPrefix('accelerometer'), DROP_FILE), { force: true });
    const cold = await runStedi(['--lake', lake], `${scale}x`);
    const baseline = await runBaseline(data, scale);
    const warm = await runStedi(['--lake', lake], `${scale}x, rerun`);
    await new Lake(lake).drop(drop.file, 'accelerometer');
    const dropped = await runStedi(['--lake', lake], `${scale}x, one drop`);
    const baselineDrop = await runBaseline(drop.dataWithDrop, scale);
    runs.cold.push(cold);
    baselines.full.push(baseline);
    runs.warm.push(warm);
    runs.drop.push(dropped);
    baselines.drop.push(baselineDrop);
    const wall = (r: { measured: Measured }) => fmt(r.measured.wallS);
    say(
      `  run ${run}/${repeat}: cold ${wall(cold)} s, baseline ${wall(baseline)} s, warm ${wall(warm)} s, ` +
        `one drop ${wall(dropped)} s, baseline with the drop ${wall(baselineDrop)} s`,
    );
  }
  const firstCold = required(runs.cold[0], 'the first cold run').summary;
  const firstDrop = required(runs.drop[0], 'the first one-drop run').summary;
  const result: ScaleResult = {
    scale,
    customers,
    landingRows: LANDING_TABLES.reduce((n, t) => n + (firstCold.tables[t]?.rows ?? 0), 0),
    cold: summarise(runs.cold.map((r) => r.measured)),
    warm: summarise(runs.warm.map((r) => r.measured)),
    drop: summarise(runs.drop.map((r) => r.measured)),
    baseline: summarise(baselines.full.map((r) => r.measured)),
    baselineDrop: summarise(baselines.drop.map((r) => r.measured)),
    dropLines: drop.lines,
    dropSkipped: (firstDrop.jobs ?? []).filter((j) => j.skipped).map((j) => j.name),
    dropFiles: filesOf(firstDrop),
  };
  for (const [label, ours, theirs] of [
    ['cold', result.cold, result.baseline],
    ['warm', result.warm, result.baseline],
    ['one drop', result.drop, result.baselineDrop],
  ] as const)
    say(
      `  ${label.padEnd(8)}: ${fmt(ours.wallS)} s median${spread(ours)}, peak ${fmt(ours.peakMiB, 0)} MiB; ` +
        `baseline ${fmt(theirs.wallS)} s${spread(theirs)}, peak ${fmt(theirs.peakMiB, 0)} MiB; ratio ${fmt(ours.wallS / theirs.wallS)}`,
    );
  say(
    `  one drop: ${grouped(drop.lines)} readings; ${result.dropFiles}; skipped: ${result.dropSkipped.join(', ') || 'none'}`,
  );
  jobBreakdown('cold', runs.cold, baselines.full);
  jobBreakdown('one drop', runs.drop, baselines.drop);
  return result;
}

type BaselineRun = { measured: Measured; summary: BaselineSummary };

const baselineJob = (run: BaselineRun, name: string): BaselineSummary['jobs'][number] =>
  required(
    run.summary.jobs.find((j) => j.name === name),
    `job ${name} in the baseline's summary`,
  );

function filesOf(summary: StediSummary): string {
  const files = summary.landingFiles?.accelerometer;
  return files ? `accelerometer files ${files.checked} checked, ${files.reused} reused` : 'n/a';
}

/** Per job (medians), so a cost can be traced to a step; rows must agree or the comparison is void. */
function jobBreakdown(label: string, runs: Run[], baselines: BaselineRun[]): void {
  const tables = required(runs[0], `the first ${label} run`).summary.tables;
  const stedi = runs.map((r) => ({ wallS: r.measured.wallS, jobs: stediJobSeconds(r.measured.stderr) }));
  const jobMedian = (name: string): number => median(stedi.map((r) => r.jobs.get(name) ?? NaN));
  say(
    `  ${label}: job (median s)${' '.repeat(Math.max(0, 24 - label.length))}stedi s  baseline s  rows (stedi / baseline)`,
  );
  for (const job of required(baselines[0], `the first ${label} baseline`).summary.jobs) {
    const ours = tables[job.target]?.rows;
    const mark = ours === job.rows ? '' : '  <- ROW COUNTS DIFFER';
    const theirs = median(baselines.map((r) => baselineJob(r, job.name).ms / 1000));
    say(
      `  ${job.name.padEnd(34)} ${fmt(jobMedian(job.name)).padStart(7)}  ${fmt(theirs).padStart(10)}  ` +
        `${grouped(ours ?? 0)} / ${grouped(job.rows)}${mark}`,
    );
  }
  // What the jobs don't account for: process start-up, DuckDB start, the state machine, the catalog.
  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
  const stediRest = median(stedi.map((r) => r.wallS - sum([...r.jobs.values()])));
  const baselineRest = median(baselines.map((r) => r.measured.wallS - sum(r.summary.jobs.map((j) => j.ms / 1000))));
  say(`  ${'(outside the jobs)'.padEnd(34)} ${fmt(stediRest).padStart(7)}  ${fmt(baselineRest).padStart(10)}`);
}

interface BadLinesResult {
  scale: number;
  rate: number;
  stedi: Summary;
  quarantined: number;
}

/** `stedi run` alone on data with malformed lines in every file: the line-by-line path at scale. */
async function benchBadLines(scale: number, rate: number, repeat: number): Promise<BadLinesResult> {
  say(`\n== ${scale}x with bad lines (share ${rate}) ==`);
  const data = await ensureData(scale, rate);
  const lake = await lakeWithLanding(`lake-${scale}x-bad`, data);
  const runs: { measured: Measured; summary: StediSummary }[] = [];
  for (let run = 1; run <= repeat; run++) {
    await keepOnlyLanding(lake);
    const done = await runStedi(['--lake', lake], `${scale}x with bad lines`);
    runs.push(done);
    say(`  run ${run}/${repeat}: stedi run ${fmt(done.measured.wallS)} s`);
  }
  const stedi = summarise(runs.map((r) => r.measured));
  const first = required(runs[0], 'the first run').summary;
  const quarantined = Object.values(first.quarantined ?? {}).reduce((a, b) => a + b, 0);
  say(
    `  stedi run: ${fmt(stedi.wallS)} s median${spread(stedi)}, peak ${fmt(stedi.peakMiB, 0)} MiB, ` +
      `${grouped(quarantined)} lines quarantined`,
  );
  return { scale, rate, stedi, quarantined };
}

function target(label: string, goal: string, measured: string, ok: boolean | undefined): void {
  const verdict = ok === undefined ? 'not measured' : ok ? 'OK' : 'MISSED';
  say(`  ${label.padEnd(26)} ${goal.padEnd(12)} measured ${measured.padEnd(12)} ${verdict}`);
}

/** The landing handler bundled as it is deployed: its size and its module init time (median of 5 cold starts). */
async function benchHandler(): Promise<{ kib: number; initMs: number }> {
  say('\n== landing handler ==');
  // esbuild.config.js is the CommonJS file serverless-esbuild loads.
  const options = (createRequire(__filename)(path.join(root, 'esbuild.config.js')) as () => Record<string, unknown>)();
  const { exclude: _exclude, ...buildOptions } = options;
  void _exclude;
  const outfile = path.join(benchDir, 'on-landing', 'on-landing.js');
  await esbuild.build({
    ...buildOptions,
    entryPoints: [path.join(root, 'functions', 'on-landing.ts')],
    outfile,
    logLevel: 'error',
  });
  const kib = statSync(outfile).size / 1024;
  const script = `const t = process.hrtime.bigint(); require(${JSON.stringify(outfile)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`;
  const env = {
    ...process.env,
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:bench',
    AWS_REGION: 'us-east-1',
  };
  const samples: number[] = [];
  for (let i = 0; i < 5; i++)
    samples.push(Number(execFileSync(process.execPath, ['--no-warnings', '-e', script], { env, encoding: 'utf8' })));
  const initMs = median(samples);
  say(`  bundle (minified, SDK included): ${fmt(kib, 0)} KiB; module init: ${fmt(initMs, 1)} ms (median of 5)`);
  return { kib, initMs };
}

async function main(): Promise<void> {
  const { scales, repeat, badLines } = parseArgs(process.argv.slice(2));
  await mkdir(benchDir, { recursive: true });

  say('stedi-lakehouse benchmark');
  say(
    `  machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ` +
      `${fmt(mib(os.totalmem()) / 1024, 1)} GiB memory, ${os.type()} ${os.release()} ${os.arch()}, node ${process.version}`,
  );
  say(
    `  peak memory: ${hasGnuTime ? `${GNU_TIME} -f '%e %M' (max RSS of the child)` : `not measured (${GNU_TIME} not found)`}`,
  );

  const handler = await benchHandler();
  const results: ScaleResult[] = [];
  say(`  each side runs ${repeat} time(s) per scale, alternating; figures are medians`);
  for (const scale of scales) results.push(await benchScale(scale, repeat));
  const withBadLines: BadLinesResult[] = [];
  if (badLines > 0) for (const scale of scales) withBadLines.push(await benchBadLines(scale, badLines, repeat));

  const realLanding = path.resolve(root, '..', 'shared', 'data', 'stedi', 'landing');
  say('\n== real STEDI data ==');
  let real: Summary | undefined;
  if (existsSync(realLanding)) {
    // The whole process, file drop included, into a fresh lake each time.
    say(`  running stedi run --landing ${realLanding} ...`);
    const runs: Measured[] = [];
    for (let run = 0; run < repeat; run++) {
      const lake = path.join(benchDir, 'lake-real');
      await rm(lake, { recursive: true, force: true });
      runs.push((await runStedi(['--landing', realLanding, '--lake', lake], realLanding)).measured);
    }
    real = summarise(runs);
    say(`  stedi run: ${fmt(real.wallS)} s median${spread(real)}, peak ${fmt(real.peakMiB, 0)} MiB`);
  } else {
    say(`  skipped: ${realLanding} not found`);
  }

  say('\n== targets ==');
  const x100 = results.find((r) => r.scale === 100);
  target(
    '100x wall time',
    `< ${TARGET_100X_SECONDS} s`,
    x100 ? `${fmt(x100.cold.wallS)} s` : 'n/a',
    x100 && x100.cold.wallS < TARGET_100X_SECONDS,
  );
  target(
    '100x peak memory',
    `< ${TARGET_100X_MIB} MiB`,
    x100?.cold.peakMiB !== undefined ? `${fmt(x100.cold.peakMiB, 0)} MiB` : 'n/a',
    x100?.cold.peakMiB === undefined ? undefined : x100.cold.peakMiB < TARGET_100X_MIB,
  );
  for (const r of results) {
    const cold = r.cold.wallS / r.baseline.wallS;
    target(`cold ratio ${r.scale}x`, `<= ${TARGET_COLD_RATIO}`, fmt(cold), cold <= TARGET_COLD_RATIO);
  }
  if (x100) {
    const warm = x100.warm.wallS / x100.baseline.wallS;
    target('warm ratio 100x', `<= ${TARGET_WARM_RATIO}`, fmt(warm), warm <= TARGET_WARM_RATIO);
    const drop = x100.drop.wallS / x100.baselineDrop.wallS;
    target('one-drop ratio 100x', `<= ${TARGET_DROP_RATIO}`, fmt(drop), drop <= TARGET_DROP_RATIO);
  }
  const peaks = results.flatMap((r) => [r.cold, r.warm, r.drop].map((s) => s.peakMiB));
  const peak = peaks.every((p) => p !== undefined) ? Math.max(...peaks) : undefined;
  target(
    'peak memory, every case',
    `< ${TARGET_100X_MIB} MiB`,
    peak === undefined ? 'n/a' : `${fmt(peak, 0)} MiB`,
    peak === undefined ? undefined : peak < TARGET_100X_MIB,
  );
  target(
    'handler bundle',
    `<= ${TARGET_BUNDLE_KIB} KiB`,
    `${fmt(handler.kib, 0)} KiB`,
    handler.kib <= TARGET_BUNDLE_KIB,
  );
  target(
    'handler module init',
    `<= ${TARGET_INIT_MS} ms`,
    `${fmt(handler.initMs, 1)} ms`,
    handler.initMs <= TARGET_INIT_MS,
  );
  target(
    'real STEDI data wall time',
    `< ${TARGET_REAL_SECONDS} s`,
    real ? `${fmt(real.wallS)} s` : 'n/a',
    real && real.wallS < TARGET_REAL_SECONDS,
  );

  say('\n== results (Markdown) ==\n');
  say(
    `Medians of ${repeat} alternating run(s) per side; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} at the end.\n`,
  );
  say('Cold: a full run on a fresh lake (every landing file checked).\n');
  say('| scale | landing rows | stedi run s | peak MiB | baseline s | baseline peak MiB | ratio | target |');
  say('|------:|-------------:|------------:|---------:|-----------:|------------------:|------:|-------:|');
  for (const r of results)
    say(
      `| ${r.scale}x | ${grouped(r.landingRows)} | ${fmt(r.cold.wallS)} | ${fmt(r.cold.peakMiB, 0)} | ${fmt(r.baseline.wallS)} | ` +
        `${fmt(r.baseline.peakMiB, 0)} | ${fmt(r.cold.wallS / r.baseline.wallS)} | <= ${TARGET_COLD_RATIO} |`,
    );
  say('\nWarm: the same run again, landing unchanged.\n');
  say('| scale | stedi run s | peak MiB | baseline s | ratio |');
  say('|------:|------------:|---------:|-----------:|------:|');
  for (const r of results)
    say(
      `| ${r.scale}x | ${fmt(r.warm.wallS)} | ${fmt(r.warm.peakMiB, 0)} | ${fmt(r.baseline.wallS)} | ` +
        `${fmt(r.warm.wallS / r.baseline.wallS)}${r.scale === 100 ? ` (target <= ${TARGET_WARM_RATIO})` : ''} |`,
    );
  say(
    `\nOne drop: after a full run, one new accelerometer file of ${DROP_SHARE * 100}% of the readings, then a run.\n`,
  );
  say('| scale | readings dropped | stedi run s | peak MiB | baseline s | ratio | jobs skipped |');
  say('|------:|-----------------:|------------:|---------:|-----------:|------:|-------------:|');
  for (const r of results)
    say(
      `| ${r.scale}x | ${grouped(r.dropLines)} | ${fmt(r.drop.wallS)} | ${fmt(r.drop.peakMiB, 0)} | ${fmt(r.baselineDrop.wallS)} | ` +
        `${fmt(r.drop.wallS / r.baselineDrop.wallS)}${r.scale === 100 ? ` (target <= ${TARGET_DROP_RATIO})` : ''} | ` +
        `${r.dropSkipped.length} of 5 |`,
    );
  if (withBadLines.length > 0) {
    say(`\nWith a share of ${badLines} malformed lines in every file (stedi run only):\n`);
    say('| scale | stedi run wall s | peak MiB | lines quarantined |');
    say('|------:|-----------------:|---------:|------------------:|');
    for (const r of withBadLines)
      say(`| ${r.scale}x | ${fmt(r.stedi.wallS)} | ${fmt(r.stedi.peakMiB, 0)} | ${grouped(r.quarantined)} |`);
  }
  say(
    `\n${os.cpus().length} CPUs, ${fmt(mib(os.totalmem()) / 1024, 1)} GiB memory; ` +
      `command: npm run bench -- --scales ${scales.join(',')} --repeat ${repeat}${badLines > 0 ? ` --bad-lines ${badLines}` : ''}`,
  );
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
