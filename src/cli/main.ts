import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, readPiiSalt } from '../config';
import { generate } from '../generate';
import { DATASETS } from '../layout';
import { LocalEngine } from '../local/engine';
import { Lake } from '../local/lake';
import { QuerySession } from '../local/query';
import { RunSummary, runJobsInOrder, summarize } from '../local/run-pipeline';
import { CONSENT_POLICIES, ConsentPolicy, JOB_NAMES } from '../pipeline';
import { formatTable, seconds } from './format';

const DEFAULT_LAKE = process.env.STEDI_LAKE ?? '.lake';

/** Errors the user can fix: printed as one line, exit code 2. */
class UsageError extends Error {}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

function rate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

function newRunId(): string {
  return `local-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 17)}-${process.pid}`;
}

interface RunOptions {
  landing?: string;
  lake: string;
  consent: ConsentPolicy;
  json?: boolean;
}

async function runCommand(options: RunOptions): Promise<number> {
  const log = options.json ? (s: string) => process.stderr.write(`${s}\n`) : (s: string) => process.stdout.write(`${s}\n`);
  const lake = new Lake(options.lake);
  const salt = readPiiSalt();
  if (salt.isDevelopmentSalt) process.stderr.write('warning: STEDI_PII_SALT is not set; using the development salt (fine for sample data only)\n');
  if (options.landing) {
    if (!existsSync(options.landing)) throw new UsageError(`--landing ${options.landing}: no such folder`);
    const dropped = await lake.dropFolder(options.landing);
    const total = DATASETS.reduce((n, d) => n + dropped[d], 0);
    if (total === 0) throw new UsageError(`--landing ${options.landing}: no ${DATASETS.map((d) => `${d}/*.json`).join(', ')} files`);
    log(`dropped ${DATASETS.map((d) => `${dropped[d]} ${d}`).join(', ')} file(s) into ${path.relative(process.cwd(), lake.root) || '.'}`);
  }
  const runId = newRunId();
  log(`run ${runId}: ${JOB_NAMES.length} jobs over ${lake.root}`);
  const engine = await LocalEngine.open(lake);
  let summary: RunSummary;
  const results: RunSummary['jobs'] = [];
  try {
    await runJobsInOrder(engine, { runId, consentPolicy: options.consent, piiSalt: salt.value }, JOB_NAMES, (event) => {
      if (event.type === 'job-started') log(`  ▶ ${event.job}`);
      else {
        const r = event.result;
        results.push(r);
        const q = Object.entries(r.quarantined).map(([d, n]) => `${n} ${d}`).join(', ');
        log(`  ✓ ${r.job}: ${r.rowsIn} in, ${r.rowsOut} out${q ? `, quarantined ${q}` : ''} (${seconds(r.durationMs)})`);
      }
    });
    summary = { status: 'SUCCEEDED', ...(await summarize(lake)), jobs: results };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    summary = { status: 'FAILED', ...(await summarize(lake)), jobs: results, error: message };
  } finally {
    engine.close();
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ status: summary.status, tables: summary.tables, quarantined: summary.quarantined, ...(summary.error ? { error: summary.error } : {}) })}\n`);
  } else {
    log('');
    log(formatTable(['job', 'rows in', 'rows out', 'quarantined', 'duration'], results.map((r) => ({
      job: r.job,
      'rows in': r.rowsIn,
      'rows out': r.rowsOut,
      quarantined: Object.values(r.quarantined).reduce((a, b) => a + (b ?? 0), 0),
      duration: seconds(r.durationMs),
    }))));
    log('');
    log(formatTable(['table', 'rows'], Object.entries(summary.tables).map(([table, { rows }]) => ({ table, rows }))));
    log(`\n${summary.status}`);
  }
  return summary.status === 'SUCCEEDED' ? 0 : 1;
}

async function queryCommand(sql: string, options: { lake: string; json?: boolean }): Promise<number> {
  const lake = new Lake(options.lake);
  if (!existsSync(lake.root)) throw new UsageError(`--lake ${options.lake}: no such folder; run \`stedi run\` first`);
  const session = await QuerySession.open(lake);
  for (const problem of session.unreadable) process.stderr.write(`warning: table not available: ${problem}\n`);
  try {
    const { columns, rows } = await session.query(sql);
    process.stdout.write(options.json ? `${JSON.stringify(rows)}\n` : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`);
    return 0;
  } finally {
    session.close();
  }
}

async function generateCommand(options: { customers: number; out?: string; lake?: string; seed: number; badLines: number }): Promise<number> {
  if (!options.out === !options.lake) throw new UsageError('give exactly one of --out DIR or --lake DIR');
  const dir = (options.out ?? options.lake)!;
  const started = Date.now();
  const files = await generate(dir, options.out ? 'drop' : 'lake', {
    customers: options.customers,
    seed: options.seed,
    badLineRate: options.badLines,
  });
  for (const dataset of DATASETS) {
    const mine = files.filter((f) => f.dataset === dataset);
    const records = mine.reduce((n, f) => n + f.records, 0);
    const bad = mine.reduce((n, f) => n + f.badLines, 0);
    process.stdout.write(`${dataset}: ${records} records${bad ? ` and ${bad} malformed lines` : ''} in ${mine.length} file(s)\n`);
  }
  process.stdout.write(`wrote ${options.out ? `${dir}/<dataset>/` : `${dir}/<dataset>/landing/`} in ${seconds(Date.now() - started)}\n`);
  return 0;
}

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('stedi')
    .description('STEDI lakehouse: run the pipeline on a local lake, query its tables, generate sample data')
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  const lakeOption = () => new Option('--lake <dir>', 'the local lake folder, laid out like the bucket').default(DEFAULT_LAKE);

  program
    .command('run')
    .description('drop landing files into the lake (optional) and run the five jobs in dependency order')
    .option('--landing <dir>', 'copy <dir>/{customer,accelerometer,step_trainer}/*.json into the landing zone first, keeping file names')
    .addOption(lakeOption())
    .addOption(new Option('--consent <policy>', 'consent policy: any consenting customer, or only readings since consent').choices(CONSENT_POLICIES).default('any'))
    .option('--json', 'print a JSON summary as the last line of stdout (progress goes to stderr)')
    .action(async (options: RunOptions) => setExitCode(await runCommand(options)));

  program
    .command('query')
    .description('run SQL over the catalog tables (the local stand-in for Athena)')
    .argument('<sql>', 'the query, e.g. "select count(*) from customer_curated"')
    .addOption(lakeOption())
    .option('--json', 'print a JSON array of row objects')
    .action(async (sql: string, options: { lake: string; json?: boolean }) => setExitCode(await queryCommand(sql, options)));

  program
    .command('generate')
    .description('write deterministic STEDI-shaped landing files (956 customers is the real volume)')
    .option('--customers <n>', 'number of customers', wholeNumber, 956)
    .option('--out <dir>', 'write <dir>/<dataset>/*.json, the layout `stedi run --landing` reads')
    .option('--lake <dir>', "write straight into a lake's landing zone, <dir>/<dataset>/landing/*.json")
    .option('--seed <s>', 'random seed; the same seed gives the same files', wholeNumber, 1)
    .option('--bad-lines <rate>', 'share of extra malformed lines, e.g. 0.01', rate, 0)
    .action(async (options) => setExitCode(await generateCommand(options)));

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram((code) => (process.exitCode = code));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const usage = error instanceof UsageError || error instanceof ConfigError;
    process.stderr.write(`stedi: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.STEDI_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = usage ? 2 : 1;
  }
}
