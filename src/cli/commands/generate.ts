import { Command } from 'commander';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from '../../sample/generate';
import { DATASETS } from '../../definition/layout';
import { Lake } from '../../lake/lake';
import { LakeLock, describeHolder } from '../../lake/lake-lock';
import { UsageError } from '../common/errors';
import { compactTimestamp, seconds } from '../common/format';
import { wholeNumber, rate, onStageOption, LAKE_BUSY_EXIT_CODE } from '../common/options';

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
    const operate = await import('../actions/stage-uploads');
    return await operate.uploadOnStage(operate.landingUploadsIn(dir), {
      stage,
      wait: options.wait,
      waitTimeoutSeconds: options.waitTimeout,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `stedi generate`: deterministic STEDI-shaped landing files. */
export function registerGenerate(program: Command, setExitCode: (code: number) => void): void {
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
}
