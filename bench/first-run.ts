/**
 * `npm run bench:first-run`: times what `npm start` does on a built checkout (its prestart build check,
 * `stedi generate` of 956 customers, `stedi run`), on a fresh lake and again on that lake, and splits the
 * run into Node's start, loading the CLI, the jobs and the rest (the state machine, the checks, DuckDB's
 * start). Each step is the package.json script's own command line, with the lake moved to .bench/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../src/project';

const TARGET_SECONDS = 3;
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const root = projectRoot();
const lake = path.join('.bench', 'first-run-lake');

const HELP = `usage: npm run bench:first-run

Times \`npm start\` on a built checkout (target: at most ${TARGET_SECONDS} s): its prestart step, generating 956
customers and \`stedi run\`, on a fresh lake and again on the same lake; ${REPEAT} times each (BENCH_REPEAT),
medians. The lake is ${lake}/, not .lake.`;

interface Step {
  name: string;
  command: string;
}

/** The steps of `npm start`, read from package.json, writing to the bench's lake instead of .lake. */
function startSteps(): Step[] {
  const scripts = (
    JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  const start = required(scripts.start, 'scripts.start').split(' && ');
  const onBenchLake = (command: string) => command.replace(/--lake \.lake\b/g, `--lake ${lake}`);
  return [
    { name: 'prestart (build check)', command: required(scripts.prestart, 'scripts.prestart') },
    ...start.map((command) => ({
      name: /\bgenerate\b/.test(command) ? 'generate' : 'run',
      command: onBenchLake(command),
    })),
  ];
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`package.json has no ${what}`);
  return value;
}

const GNU_TIME = '/usr/bin/time';
const cpuFile = path.join(os.tmpdir(), `bench-first-run-cpu-${process.pid}`);

/**
 * Runs a shell command from the project root: its wall time in seconds, its stdout, and (with GNU time) the
 * CPU seconds it and its children used, which the load of other processes barely changes.
 */
function timed(command: string): { seconds: number; cpu?: number; stdout: string } {
  const gnuTime = existsSync(GNU_TIME);
  const [file, args] = gnuTime
    ? [GNU_TIME, ['-f', '%U %S', '-o', cpuFile, 'sh', '-c', command]]
    : ['sh', ['-c', command]];
  const started = process.hrtime.bigint();
  const stdout = execFileSync(file, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = gnuTime
    ? readFileSync(cpuFile, 'utf8')
        .trim()
        .split(/\s+/)
        .reduce((sum, v) => sum + Number(v), 0)
    : undefined;
  return { seconds, cpu, stdout };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

interface Sample {
  steps: Record<string, number>;
  total: number;
  /** CPU seconds of all the steps; undefined without GNU time. */
  cpu?: number;
  jobs: number;
}

function sample(steps: Step[]): Sample {
  const times: Record<string, number> = {};
  let cpu: number | undefined = 0;
  let jobs = 0;
  for (const step of steps) {
    // The run with --json too: the jobs' own durations come from its summary.
    const command = step.name === 'run' ? `${step.command} --json` : step.command;
    const { seconds, cpu: stepCpu, stdout } = timed(command);
    times[step.name] = seconds;
    cpu = cpu === undefined || stepCpu === undefined ? undefined : cpu + stepCpu;
    if (step.name === 'run') {
      const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { jobs?: { durationMs: number }[] };
      jobs = (summary.jobs ?? []).reduce((sum, j) => sum + j.durationMs, 0) / 1000;
    }
  }
  return { steps: times, total: Object.values(times).reduce((a, b) => a + b, 0), cpu, jobs };
}

function report(label: string, samples: Sample[], nodeStart: number, cliLoad: number): void {
  const total = median(samples.map((s) => s.total));
  const verdict = total <= TARGET_SECONDS ? 'ok' : 'OVER TARGET';
  console.log(`\n${label}: ${total.toFixed(2)} s (target <= ${TARGET_SECONDS} s: ${verdict})`);
  const cpu = samples.every((s) => s.cpu !== undefined) ? median(samples.map((s) => s.cpu ?? NaN)) : undefined;
  if (cpu !== undefined) console.log(`  CPU (user + system, every process): ${cpu.toFixed(2)} s`);
  for (const name of Object.keys(samples[0]?.steps ?? {}))
    console.log(`  ${name.padEnd(24)} ${median(samples.map((s) => s.steps[name] ?? NaN)).toFixed(2)} s`);
  const run = median(samples.map((s) => s.steps.run ?? NaN));
  const jobs = median(samples.map((s) => s.jobs));
  console.log(
    `    of the run: node start ${nodeStart.toFixed(2)} s (with the CLI loaded, stedi --help: ${cliLoad.toFixed(2)} s),`,
  );
  console.log(
    `    the five jobs ${jobs.toFixed(2)} s, the rest (DuckDB, state machine, checks, summary) ${(run - cliLoad - jobs).toFixed(2)} s`,
  );
}

function main(): void {
  if (process.argv.includes('--help')) {
    console.log(HELP);
    return;
  }
  const steps = startSteps();
  const nodeStart = median(Array.from({ length: 5 }, () => timed(`${process.execPath} -e 0`).seconds));
  const cliLoad = median(Array.from({ length: 5 }, () => timed(`${process.execPath} bin/stedi.js --help`).seconds));
  const fresh: Sample[] = [];
  const again: Sample[] = [];
  for (let i = 0; i < REPEAT; i++) {
    rmSync(path.join(root, lake), { recursive: true, force: true });
    fresh.push(sample(steps));
    again.push(sample(steps));
  }
  console.log(`npm start, as package.json runs it (${REPEAT} runs each, medians; ${os.cpus().length} cores)`);
  report('fresh lake (a first npm start)', fresh, nodeStart, cliLoad);
  report('again, lake unchanged (npm start once more)', again, nodeStart, cliLoad);
  console.log(
    `\nload average (1, 5, 15 min): ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
}

main();
