import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { readPiiSaltForRun } from '../../config';
import { DATASETS, Dataset } from '../../definition/layout';
import type { LandingFileCounts } from '../../build/engine';
import { ALERTS_FILE, Lake } from '../../lake/lake';
import { chooseConsentPolicy } from '../../lake/consent';
import { summarize } from '../../lake/summary';
import { CONSENT_POLICIES, ConsentPolicy } from '../../definition/pipeline';
import { ASL_FILE, jobsRunFrom } from '../../statemachine/definition';
import { DEFAULT_FAULT, FaultInjection, parseFault } from '../../statemachine/faults';
import type { ExecutionResult } from '../../stand-ins/step-functions/execution';
import { UsageError } from '../common/errors';
import { compactTimestamp, printProgress, printable } from '../common/format';
import { formatRunReport } from '../common/run-report';
import {
  FROM_VALUES,
  ENGINES,
  refuseLocalOnly,
  lakeOption,
  changeConsentOption,
  LAKE_BUSY_EXIT_CODE,
  onStageOption,
  wholeNumber,
  whereOf,
} from '../common/options';

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
  const glueSetup = glue ? (await import('../../glue-engine/setup')).checkGlueSetup() : undefined;
  // Loaded here, not at the top: DuckDB and the state machine runner are most of the start-up time.
  const [{ LocalEngine }, { runLocalExecution }, { executeOnLake }] = await Promise.all([
    import('../../build/engine'),
    import('../../stand-ins/step-functions/runner'),
    import('../../stand-ins/step-functions/lake-execution'),
  ]);
  const glueEngine = glue ? await import('../../glue-engine/engine') : undefined;
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
    const operate = await import('../actions/stage-uploads');
    const uploads = operate.landingUploadsIn(options.landing);
    if (uploads.length === 0)
      throw new UsageError(`--landing ${options.landing}: no ${DATASETS.map((d) => `${d}/*.json`).join(', ')} files`);
    return operate.uploadOnStage(uploads, { stage, wait: true, waitTimeoutSeconds: options.waitTimeout });
  }
  return (await import('../actions/aws-commands')).startCommand({ from: options.from, stage, wait: true });
}

/** `stedi run`: the pipeline on a local lake, or with --stage on the deployed stack. */
export function registerRun(program: Command, setExitCode: (code: number) => void): void {
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
}
