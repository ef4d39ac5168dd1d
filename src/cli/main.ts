import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, readPiiSaltForRun } from '../config';
import { generate } from '../generate';
import { DATASETS, Dataset } from '../layout';
import type { LandingFileCounts } from '../local/engine';
import { ALERTS_FILE, Lake, LakeAccessError } from '../local/lake';
import { ConsentPolicyError, chooseConsentPolicy } from '../local/consent';
import { LakeBusyError, LakeLock, LakeLockFileError, describeHolder } from '../local/lake-lock';
import { summarize } from '../local/summary';
import { CONSENT_POLICIES, ConsentPolicy } from '../pipeline';
import { isEmptySql } from '../sql/text';
import { ASL_FILE, jobsRunFrom } from '../statemachine/definition';
import { DEFAULT_FAULT, FaultInjection, parseFault } from '../statemachine/faults';
import type { ExecutionResult } from '../statemachine/local-runner';
import { UsageError } from './errors';
import { compactTimestamp, formatTable, printProgress, printable, seconds } from './format';
import { formatRunReport } from './run-report';
import type { Where } from './operate-commands';

const DEFAULT_LAKE = process.env.STEDI_LAKE ?? '.lake';
/** Exit code when --no-wait finds the lake held by a running execution (EX_TEMPFAIL: try again later). */
const LAKE_BUSY_EXIT_CODE = 75;

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

function collectFault(value: string, previous: FaultInjection[]): FaultInjection[] {
  try {
    return [...previous, parseFault(value)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function newRunId(): string {
  return `local-${compactTimestamp()}-${process.pid}`;
}

const FROM_VALUES = ['all', ...DATASETS] as const;
/** What runs the jobs: DuckDB in process, or glue/run_sql_job.py on local Spark against a moto server. */
const ENGINES = ['duckdb', 'glue'] as const;

interface RunOptions {
  landing?: string;
  lake: string;
  /** Undefined: the lake's policy. */
  consent?: ConsentPolicy;
  changeConsent?: boolean;
  from: (typeof FROM_VALUES)[number];
  fail: FaultInjection[];
  json?: boolean;
  /** Also print each state the execution enters. */
  verbose?: boolean;
  /** false with --no-wait */
  wait: boolean;
  rebuild?: boolean;
  engine: (typeof ENGINES)[number];
}

/** `stedi watch`'s options. */
interface WatchOptions {
  lake: string;
  stage?: string;
  consent?: ConsentPolicy;
  changeConsent?: boolean;
  batchWindow: number;
}

/** `stedi drop`'s options. */
interface DropOptions {
  dataset: Dataset;
  lake: string;
  consent?: ConsentPolicy;
  changeConsent?: boolean;
  stage?: string;
  /** true with --wait, false with --no-wait, undefined when neither is given */
  wait?: boolean;
  waitTimeout: number;
}

async function runCommand(options: RunOptions): Promise<number> {
  const startedAt = Date.now();
  const log = options.json
    ? (s: string) => process.stderr.write(`${s}\n`)
    : (s: string) => process.stdout.write(`${s}\n`);
  // A fault for a job this run does not reach would be silently unused: a test of nothing.
  const ran = jobsRunFrom(options.from);
  for (const fault of options.fail)
    if (!ran.includes(fault.job))
      throw new UsageError(
        `--fail ${fault.job}: that job does not run when the run starts --from ${options.from} (it runs ${ran.join(', ')})`,
      );
  const lake = new Lake(options.lake);
  lake.checkAccess({ write: true });
  const salt = readPiiSaltForRun();
  if (options.landing && !existsSync(options.landing))
    throw new UsageError(`--landing ${options.landing}: no such folder`);
  if (!options.landing && (await Promise.all(DATASETS.map((d) => lake.landingFiles(d)))).every((f) => f.length === 0))
    process.stderr.write(
      `warning: nothing to process: ${lake.root} has no landing files (${DATASETS.map((d) => `${d}/landing/*.json`).join(', ')}); ` +
        'give --landing DIR, or drop files with `stedi drop`; every table will be empty\n',
    );
  // Refused before anything is dropped; chosen again, under the lake lock, when the execution starts.
  chooseConsentPolicy(lake, (await lake.snapshot()).catalog, options.consent, options.changeConsent);
  const executionName = newRunId();
  const glue = options.engine === 'glue';
  // Before the lake lock and the drop: a missing set-up is said at once, naming what to install.
  const glueSetup = glue ? (await import('../glue-engine/setup')).checkGlueSetup() : undefined;
  // Loaded here, not at the top: DuckDB and the state machine runner are most of the start-up time.
  const [{ LocalEngine }, { runLocalExecution }, { executeOnLake }] = await Promise.all([
    import('../local/engine'),
    import('../statemachine/local-runner'),
    import('../local/lake-execution'),
  ]);
  const glueEngine = glue ? await import('../glue-engine/engine') : undefined;
  let interrupted = false;
  // The whole run, file drop included, holds the lake lock: one execution at a time on a lake.
  const result: ExecutionResult = await executeOnLake(
    { lake, executionName, command: 'stedi run', wait: options.wait, log },
    async (dynamoDb) => {
      const files: string[] = [];
      if (options.landing) {
        const dropped = await lake.dropFolder(options.landing);
        files.push(...dropped.keys);
        if (files.length === 0)
          throw new UsageError(
            `--landing ${options.landing}: no ${DATASETS.map((d) => `${d}/*.json`).join(', ')} files`,
          );
        for (const { file, reason } of dropped.skipped)
          process.stderr.write(`warning: --landing ${printable(file)} not dropped: ${printable(reason)}\n`);
        log(`dropped ${DATASETS.map((d) => `${dropped.counts[d]} ${d}`).join(', ')} file(s) into ${lake.root}`);
      }
      log(`execution ${executionName} of ${ASL_FILE} over ${lake.root}${glue ? ' on the Glue engine' : ''}`);
      // Ctrl-C (or SIGTERM) on the Glue engine: the worker is stopped, the running job fails, the execution
      // ends as a failed one does, and the moto server is stopped below; nothing of the run's bucket is kept.
      let stopGlue: (() => void) | undefined;
      const onSignal = () => {
        interrupted = true;
        process.stderr.write('stedi: interrupted: stopping the Glue worker and the moto server\n');
        stopGlue?.();
      };
      if (glue) process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        const engine = glueEngine
          ? await glueEngine.GlueEngine.open({
              lake,
              // The results lake's policy, as the stack's jobs are deployed with one (runLocalExecution
              // refuses another there as it does on the lake).
              consentPolicy: chooseConsentPolicy(
                glueEngine.glueLakeOf(lake),
                (await glueEngine.glueLakeOf(lake).snapshot()).catalog,
                options.consent,
                options.changeConsent,
              ).policy,
              piiSalt: salt.value,
              setup: glueSetup,
              fresh: options.rebuild,
              log,
            })
          : await LocalEngine.open(lake, { rebuild: options.rebuild });
        if ('interrupt' in engine) stopGlue = () => engine.interrupt();
        if (interrupted) stopGlue?.();
        let keepState = true;
        try {
          return await runLocalExecution({
            engine,
            executionName,
            input: { from: options.from, reason: options.landing ? 'stedi run --landing' : 'stedi run', files },
            consentPolicy: options.consent,
            changeConsent: options.changeConsent,
            piiSalt: salt.value,
            alertsFile: lake.path(ALERTS_FILE),
            faults: options.fail,
            dynamoDb,
            onEvent: printProgress(log, { verbose: options.verbose }),
          });
        } catch (error) {
          keepState = false;
          throw error;
        } finally {
          await engine.close({ keepState: keepState && !interrupted });
        }
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    },
  );
  // The Glue engine's tables are in its own lake inside this one (src/glue-engine/engine.ts).
  const resultsLake = glueEngine ? glueEngine.glueLakeOf(lake) : lake;
  const { tables, quarantined, emailCaseMismatches } = await summarize(resultsLake);
  if (result.status === 'FAILED')
    process.stderr.write(`stedi: execution ${executionName} failed: ${result.error?.name}: ${result.error?.cause}\n`);
  const jobs = result.jobs.map((j) => ({
    name: j.name,
    status: j.status,
    // Per input table; absent for a job that did not finish (it read nothing it reports).
    ...(j.result ? { rowsIn: j.result.rowsIn } : {}),
    rowsOut: j.rowsOut,
    ...(j.result?.skipped ? { skipped: true } : {}),
    ...(j.result?.appended !== undefined ? { appended: j.result.appended } : {}),
    durationMs: j.durationMs,
  }));
  const landingFiles = landingFileCounts(result.jobs);
  // Each landing table is read by one job, so each skipped entry is named once.
  const skippedLandingFiles = result.jobs.flatMap((j) => j.result?.skippedLandingFiles ?? []);
  if (options.json) {
    const error = result.error ? { error: `${result.error.name}: ${result.error.cause}` } : {};
    const skipped = skippedLandingFiles.length > 0 ? { skippedLandingFiles } : {};
    process.stdout.write(
      `${JSON.stringify({ status: result.status, execution: executionName, tables, quarantined, landingFiles, ...skipped, emailCaseMismatches, jobs, ...error })}\n`,
    );
  } else {
    const report = { status: result.status, summary: { tables, quarantined, emailCaseMismatches } };
    for (const line of formatRunReport({
      ...report,
      lakeArgument: options.lake,
      lakeRoot: lake.root,
      elapsedMs: Date.now() - startedAt,
    }))
      log(line);
  }
  if (interrupted) return 130;
  return result.status === 'SUCCEEDED' ? 0 : 1;
}

/** Per dataset, the landing files the run's jobs checked, reused from the validated copy and removed from it. */
function landingFileCounts(jobs: ExecutionResult['jobs']): Record<Dataset, LandingFileCounts> {
  const counts = Object.fromEntries(DATASETS.map((d) => [d, { checked: 0, reused: 0, removed: 0 }])) as Record<
    Dataset,
    LandingFileCounts
  >;
  for (const job of jobs)
    for (const [dataset, n] of Object.entries(job.result?.landingFiles ?? {}) as [Dataset, LandingFileCounts][]) {
      counts[dataset].checked += n.checked;
      counts[dataset].reused += n.reused;
      counts[dataset].removed += n.removed;
    }
  return counts;
}

/** Refuses options that only mean something locally, naming why they do not apply with --stage. */
function refuseLocalOnly(command: Command, names: string[], why: string): void {
  for (const name of names) {
    if (command.getOptionValueSource(name) === 'cli') {
      const flag = command.options.find((o) => o.attributeName() === name)?.long ?? name;
      throw new UsageError(`${flag} applies to local runs, not with --stage: ${why}`);
    }
  }
}

/**
 * `stedi run --stage`: the same run on the deployed stack. With --landing the files are uploaded to the
 * landing prefixes and the executions their notifications start are followed; without, one execution is
 * started from --from and followed, as `stedi start --wait` does.
 */
async function runOnStage(
  stage: string,
  options: RunOptions & { waitTimeout: number },
  command: Command,
): Promise<number> {
  refuseLocalOnly(
    command,
    ['consent', 'changeConsent', 'fail', 'json', 'wait', 'engine'],
    "the stack's jobs and policy are set when it is deployed",
  );
  refuseLocalOnly(command, ['rebuild'], 'on AWS every run checks the landing files that changed and runs every job');
  if (options.landing) {
    if (!existsSync(options.landing)) throw new UsageError(`--landing ${options.landing}: no such folder`);
    if (command.getOptionValueSource('from') === 'cli')
      throw new UsageError('--from with --landing: the uploads start their runs from the earliest dataset they hold');
    const operate = await import('./operate-commands');
    const uploads = operate.landingUploadsIn(options.landing);
    if (uploads.length === 0)
      throw new UsageError(`--landing ${options.landing}: no ${DATASETS.map((d) => `${d}/*.json`).join(', ')} files`);
    return operate.uploadOnStage(uploads, { stage, wait: true, waitTimeoutSeconds: options.waitTimeout });
  }
  return (await import('./aws-commands')).startCommand({ from: options.from, stage, wait: true });
}

/** `stedi generate --stage`: the sample files, uploaded to the stack's landing prefixes (each upload a drop). */
async function generateOnStage(
  stage: string,
  options: GenerateOptions & { wait?: boolean; waitTimeout: number },
): Promise<number> {
  if (options.out || options.lake) throw new UsageError('give exactly one of --out DIR, --lake DIR or --stage NAME');
  const dir = mkdtempSync(path.join(tmpdir(), 'stedi-generate-'));
  try {
    const files = await generate(dir, 'drop', {
      customers: options.customers,
      seed: options.seed,
      badLineRate: options.badLines,
    });
    process.stdout.write(`generated ${files.length} file(s) for ${options.customers} customers\n`);
    const operate = await import('./operate-commands');
    return await operate.uploadOnStage(operate.landingUploadsIn(dir), {
      stage,
      wait: options.wait,
      waitTimeoutSeconds: options.waitTimeout,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A command's --lake or --stage: one or the other (--lake has a default, so only an explicit one conflicts). */
function whereOf(options: { lake: string; stage?: string }, command: Command): Where {
  if (options.stage === undefined) return { lake: options.lake };
  if (command.getOptionValueSource('lake') === 'cli') throw new UsageError('give --lake DIR or --stage NAME, not both');
  return { stage: options.stage };
}

async function queryCommand(sql: string, options: { lake: string; json?: boolean }): Promise<number> {
  const lake = new Lake(options.lake);
  if (!existsSync(lake.root)) throw new UsageError(`--lake ${options.lake}: no such folder; run \`stedi run\` first`);
  lake.checkAccess({ write: false });
  // A query never waits for the lake lock: it reads the versions the catalog has committed. So a lock file
  // it cannot make sense of only costs it the note about a running execution.
  const running = await new LakeLock(lake).holder().catch((error: unknown) => {
    if (!(error instanceof LakeLockFileError)) throw error;
    process.stderr.write(`warning: ${error.message}; the query reads the last committed version of each table\n`);
    return undefined;
  });
  if (running?.alive)
    process.stderr.write(
      `note: execution ${running.holder.execution} is running on this lake (${describeHolder(running.holder)}); ` +
        'the query reads the last committed version of each table\n',
    );
  const { QuerySession, QueryTextError } = await import('../local/query');
  const session = await QuerySession.open(lake, sql);
  for (const problem of session.unreadable) process.stderr.write(`warning: table not available: ${problem}\n`);
  for (const { file, reason } of session.skippedLandingFiles)
    process.stderr.write(`warning: landing file ${printable(file)} not read: ${printable(reason)}\n`);
  try {
    const { columns, rows } = await session.query(sql).catch((error: unknown) => {
      throw error instanceof QueryTextError ? new UsageError(error.message) : error;
    });
    process.stdout.write(
      options.json
        ? `${JSON.stringify(rows)}\n`
        : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`,
    );
    return 0;
  } finally {
    session.close();
  }
}

interface GenerateOptions {
  customers: number;
  out?: string;
  lake?: string;
  seed: number;
  badLines: number;
  force?: boolean;
}

async function generateCommand(options: GenerateOptions & { wait?: boolean }): Promise<number> {
  const dir = options.out ?? options.lake;
  if (dir === undefined || (options.out && options.lake))
    throw new UsageError('give exactly one of --out DIR, --lake DIR or --stage NAME');
  const lake = new Lake(dir);
  lake.checkAccess({ write: true });
  // Replacing a lake's landing zone under a running execution would change its input mid-run: like a
  // drop, it waits for the lake (or, with --no-wait, fails at once).
  const held = options.lake
    ? await new LakeLock(lake).acquire(
        { execution: `generate-${compactTimestamp()}`, executionArn: 'stedi generate', command: 'stedi generate' },
        {
          wait: options.wait !== false,
          onWaiting: (holder) =>
            process.stderr.write(`waiting for execution ${holder.execution} to finish (${describeHolder(holder)})\n`),
        },
      )
    : undefined;
  try {
    return await generateInto(lake, options);
  } finally {
    await held?.release();
  }
}

async function generateInto(lake: Lake, options: GenerateOptions): Promise<number> {
  const dir = lake.root;
  // It replaces DIR/<dataset>/ (--out) or the lake's landing zone (--lake): never someone's data unasked.
  const replaced = options.out
    ? readdirSync(lake.root)
    : DATASETS.flatMap((d) => (existsSync(lake.path(`${d}/landing`)) ? readdirSync(lake.path(`${d}/landing`)) : []));
  if (replaced.length > 0 && !options.force)
    throw new UsageError(
      options.out
        ? `--out ${options.out} is not empty; give an empty or new folder, or --force to replace its ${DATASETS.join('/, ')}/ folders`
        : `--lake ${options.lake} already has landing files; give --force to replace its landing zone`,
    );
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
    process.stdout.write(
      `${dataset}: ${records} records${bad ? ` and ${bad} malformed lines` : ''} in ${mine.length} file(s)\n`,
    );
  }
  process.stdout.write(
    `wrote ${options.out ? `${dir}/<dataset>/` : `${dir}/<dataset>/landing/`} in ${seconds(Date.now() - started)}\n`,
  );
  return 0;
}

// Commands load what only they need (the AWS SDK, the watcher) when they run, not at every start.
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('stedi')
    .description(
      'STEDI lakehouse: run the pipeline on a local lake, query it, generate sample data, trigger and follow runs',
    )
    // Commander's errors (unknown option, bad choice, bad number) become exit code 2 in main().
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  const changeConsentOption = () =>
    new Option(
      '--change-consent',
      "with --consent: change the lake's consent policy, rebuilding every table under the new one (otherwise another policy than the lake's is refused)",
    );

  const lakeOption = () =>
    new Option('--lake <dir>', 'the local lake folder, laid out like the bucket').default(DEFAULT_LAKE);

  const onStageOption = () =>
    new Option(
      '--stage <name>',
      'work on the deployed stack stedi-lakehouse-<name> instead of a local lake (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL apply)',
    );
  program
    .command('run')
    .description(
      'drop landing files into the lake (optional) and run the pipeline state machine (statemachines/pipeline.asl.json) locally',
    )
    .option(
      '--landing <dir>',
      'copy <dir>/{customer,accelerometer,step_trainer}/*.json into the landing zone first, keeping file names',
    )
    .addOption(lakeOption())
    .addOption(
      new Option(
        '--consent <policy>',
        "consent policy: any consenting customer, or only readings since consent (default: the lake's, recorded by its first run; any for a new lake)",
      ).choices(CONSENT_POLICIES),
    )
    .addOption(changeConsentOption())
    .addOption(
      new Option('--from <stage>', 'the state machine input "from": where the run starts')
        .choices(FROM_VALUES)
        .default('all'),
    )
    .option(
      '--fail <JOB[:OUTCOME][:TIMES]>',
      `make a job's task end as AWS reports it: OUTCOME is the state its run ends in (FAILED, TIMEOUT, ERROR, STOPPED; default ${DEFAULT_FAULT}) or an error name (States.Timeout, Glue.ThrottlingException...); on every attempt, or the first TIMES; repeatable`,
      collectFault,
      [],
    )
    .option('--json', 'print a JSON summary as the last line of stdout (progress goes to stderr)')
    .option('--verbose', 'also print each state the execution enters (→ State)')
    .option(
      '--rebuild',
      'check every landing file again and run every job, even those whose inputs are unchanged since their table was built',
    )
    .option(
      '--no-wait',
      `if another execution is running on the lake, fail at once (exit code ${LAKE_BUSY_EXIT_CODE}) instead of waiting for it`,
    )
    .addOption(
      new Option(
        '--engine <engine>',
        'what runs the jobs: duckdb (in process), or glue: glue/run_sql_job.py on local Spark 3.5.6 with S3A against a moto server, as AWS Glue 5.1 runs it (needs `npm run setup:glue`; results in <lake>/_glue, see docs/glue-engine-run.md)',
      )
        .choices(ENGINES)
        .default('duckdb'),
    )
    .addOption(onStageOption())
    .option(
      '--wait-timeout <s>',
      'with --stage --landing: give up when no execution has picked the files up after this many seconds',
      wholeNumber,
      1800,
    )
    .action(async (options: RunOptions & { stage?: string; waitTimeout: number }, command: Command) => {
      const where = whereOf(options, command);
      if ('stage' in where) setExitCode(await runOnStage(where.stage, options, command));
      else setExitCode(await runCommand(options));
    });

  const operate = () => import('./operate-commands');

  program
    .command('query')
    .description(
      'run SQL over the catalog tables: on a local lake (the local stand-in for Athena), or with --stage on Athena',
    )
    .argument('<sql>', 'the query, e.g. "select count(*) from customer_curated"')
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--json', 'print a JSON array of row objects')
    .option('--as-of <run>', 'read every table as that run left it (runs: `stedi tables --history TABLE`)')
    .action(
      async (
        sql: string,
        options: { lake: string; stage?: string; json?: boolean; asOf?: string },
        command: Command,
      ) => {
        const where = whereOf(options, command);
        if (isEmptySql(sql)) throw new UsageError('the query is empty: give one SQL statement');
        const asOf = options.asOf;
        setExitCode(
          asOf !== undefined
            ? await (await import('./history-command')).queryAsOfCommand(sql, where, { ...options, asOf })
            : 'stage' in where
              ? await (await operate()).queryOnStage(sql, { stage: where.stage, json: options.json })
              : await queryCommand(sql, options),
        );
      },
    );

  program
    .command('check')
    .description(
      'run the data checks of glue/checks/ (pass or fail each; exit code 1 when one fails): on DuckDB over a local lake, or with --stage on Athena',
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--json', 'print a JSON array of results')
    .action(async (options: { lake: string; stage?: string; json?: boolean }, command: Command) =>
      setExitCode(await (await operate()).checkCommand(whereOf(options, command), options)),
    );

  program
    .command('tables')
    .description(
      'list the catalog tables with location, columns, partition keys, row count and last update: the local catalog, or with --stage the Glue Data Catalog',
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--no-rows', 'with --stage: do not count the rows (which runs one Athena query)')
    .option('--history <table>', "list the table's snapshots, newest first: run id, time, row count")
    .option('--json', 'print a JSON array')
    .action(
      async (
        options: { lake: string; stage?: string; json?: boolean; rows: boolean; history?: string },
        command: Command,
      ) =>
        setExitCode(
          options.history !== undefined
            ? await (
                await import('./history-command')
              ).historyCommand(whereOf(options, command), options.history, options)
            : await (await operate()).tablesCommand(whereOf(options, command), options),
        ),
    );

  program
    .command('doctor')
    .description(
      'check every committed file of a local lake against the size and SHA-256 recorded when it was committed, that the catalog and manifests parse and that each table holds the rows its catalog records; name each damaged file (exit code 1); with --repair rebuild the lake from landing',
    )
    .addOption(lakeOption())
    .option(
      '--repair',
      'rebuild what is damaged from landing (never modified): every landing file checked again, every table built whole',
    )
    .addOption(
      new Option(
        '--consent <policy>',
        "with --repair, only when the catalog cannot be read (it records the lake's policy): the policy to rebuild under",
      ).choices(CONSENT_POLICIES),
    )
    .option('--json', 'print the examination as JSON')
    .action(async (options: { lake: string; repair?: boolean; consent?: ConsentPolicy; json?: boolean }) =>
      setExitCode(await (await import('./doctor-command')).doctorCommand(options)),
    );

  program
    .command('quarantine')
    .description(
      "show the landing lines the last run rejected, with file, line number and reason: a local lake's, or with --stage through Athena",
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .addOption(new Option('--dataset <name>', 'only this dataset').choices(DATASETS))
    .option('--width <n>', 'show at most this many characters of each line', wholeNumber, 60)
    .option('--json', 'print a JSON array (lines in full)')
    .action(
      async (
        options: { lake: string; stage?: string; dataset?: Dataset; json?: boolean; width: number },
        command: Command,
      ) => setExitCode(await (await operate()).quarantineCommand(whereOf(options, command), options)),
    );

  program
    .command('generate')
    .description('write deterministic STEDI-shaped landing files (956 customers is the real volume)')
    .option('--customers <n>', 'number of customers', wholeNumber, 956)
    .option('--out <dir>', 'write <dir>/<dataset>/*.json, the layout `stedi run --landing` reads')
    .option('--lake <dir>', "write straight into a lake's landing zone, <dir>/<dataset>/landing/*.json")
    .option('--seed <s>', 'random seed; the same seed gives the same files', wholeNumber, 1)
    .option('--bad-lines <rate>', 'share of extra malformed lines, e.g. 0.01', rate, 0)
    .option('--force', 'replace what the target holds (--out: its dataset folders; --lake: its landing zone)')
    .addOption(onStageOption())
    .option('--wait', 'with --stage: follow the executions the uploads start to their end')
    .option(
      '--no-wait',
      `with --lake: if an execution is running on the lake, fail at once (exit code ${LAKE_BUSY_EXIT_CODE}) instead of waiting for it`,
    )
    .option(
      '--wait-timeout <s>',
      'with --stage --wait: give up when no execution has picked the files up after this many seconds',
      wholeNumber,
      1800,
    )
    .action(async (options: GenerateOptions & { stage?: string; wait?: boolean; waitTimeout: number }) =>
      setExitCode(
        options.stage === undefined ? await generateCommand(options) : await generateOnStage(options.stage, options),
      ),
    );

  const consentOption = () =>
    new Option(
      '--consent <policy>',
      "consent policy of the runs it starts (default: the lake's; another one is refused without --change-consent)",
    ).choices(CONSENT_POLICIES);

  program
    .command('watch')
    .description(
      "watch the lake's landing folders and run the pipeline on each burst of dropped files, as the landing Lambda does",
    )
    .addOption(lakeOption())
    .addOption(consentOption())
    .addOption(changeConsentOption())
    .option('--batch-window <ms>', 'gather files dropped within this many milliseconds into one run', wholeNumber, 1000)
    .addOption(onStageOption())
    .action(async (options: WatchOptions, command: Command) => {
      const where = whereOf(options, command);
      if (!('stage' in where)) return setExitCode(await (await import('./trigger-commands')).watchCommand(options));
      refuseLocalOnly(
        command,
        ['consent', 'changeConsent', 'batchWindow'],
        "on AWS the bucket's notifications start the runs",
      );
      const stopping = new AbortController();
      process.once('SIGINT', () => stopping.abort());
      process.once('SIGTERM', () => stopping.abort());
      setExitCode(await (await operate()).watchStage({ stage: where.stage, signal: stopping.signal }));
    });

  program
    .command('drop')
    .description(
      "copy one file into a dataset's landing zone (replacing one of that name) and trigger a run, as an S3 upload does",
    )
    .argument('<file>', 'a JSON-lines file')
    .addOption(new Option('--dataset <name>', 'the dataset it belongs to').choices(DATASETS).makeOptionMandatory())
    .addOption(lakeOption())
    .addOption(consentOption())
    .addOption(changeConsentOption())
    .addOption(onStageOption())
    .option(
      '--wait',
      'with --stage: follow the execution the upload starts to its end (exit code 1 unless it succeeds)',
    )
    .option(
      '--no-wait',
      `locally: if another execution is running on the lake, fail at once (exit code ${LAKE_BUSY_EXIT_CODE}) without dropping the file`,
    )
    .option(
      '--wait-timeout <s>',
      'with --stage --wait: give up when no execution has picked the file up after this many seconds',
      wholeNumber,
      1800,
    )
    .action(async (file: string, options: DropOptions, command: Command) => {
      // --wait is declared before --no-wait, so neither sets a default: undefined when neither is given.
      const where = whereOf(options, command);
      if ('stage' in where) {
        if (
          command.getOptionValueSource('consent') === 'cli' ||
          command.getOptionValueSource('changeConsent') === 'cli'
        )
          throw new UsageError("--consent applies to local runs; the stack's policy is set when it is deployed");
        setExitCode(
          await (
            await operate()
          ).dropOnStage(file, {
            ...options,
            stage: where.stage,
            wait: options.wait === true,
            waitTimeoutSeconds: options.waitTimeout,
          }),
        );
      } else
        setExitCode(
          await (await import('./trigger-commands')).dropCommand(file, { ...options, wait: options.wait !== false }),
        );
    });

  // Required, never a default: a command that starts runs on a stack must not pick one for the user.
  const stageOption = () =>
    new Option('--stage <name>', 'the deployed stage (stack stedi-lakehouse-<stage>)').makeOptionMandatory();

  program
    .command('start')
    .description(
      'start an execution of the deployed state machine (AWS; honours AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL)',
    )
    .addOption(new Option('--from <stage>', 'where the run starts').choices(FROM_VALUES).default('all'))
    .addOption(stageOption())
    .option('--wait', 'follow the execution to its end, printing each state')
    .action(async (options: { from: (typeof FROM_VALUES)[number]; stage: string; wait?: boolean }) =>
      setExitCode(await (await import('./aws-commands')).startCommand(options)),
    );

  program
    .command('status')
    .description('list recent executions of the deployed state machine with status and duration')
    .addOption(stageOption())
    .option('--limit <n>', 'how many executions', wholeNumber, 10)
    .option('--json', 'print a JSON array')
    .action(async (options: { stage: string; limit: number; json?: boolean }) =>
      setExitCode(await (await import('./aws-commands')).statusCommand(options)),
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram((code) => (process.exitCode = code));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (and the help); --help itself exits 0.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    const usage =
      error instanceof UsageError ||
      error instanceof ConfigError ||
      error instanceof LakeAccessError ||
      error instanceof ConsentPolicyError;
    process.stderr.write(`stedi: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.STEDI_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = error instanceof LakeBusyError ? LAKE_BUSY_EXIT_CODE : usage ? 2 : 1;
  }
}
