import { Command, InvalidArgumentError, Option } from 'commander';
import { DATASETS } from '../../definition/layout';
import { CONSENT_POLICIES } from '../../definition/pipeline';
import { UsageError } from './errors';

// The options and argument parsers several commands share.

export const DEFAULT_LAKE = process.env.STEDI_LAKE ?? '.lake';
/** Exit code when --no-wait finds the lake held by a running execution (EX_TEMPFAIL: try again later). */
export const LAKE_BUSY_EXIT_CODE = 75;

export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

export function rate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

export const FROM_VALUES = ['all', ...DATASETS] as const;
/** What runs the jobs: DuckDB in process, or glue/run_sql_job.py on local Spark against a moto server. */
export const ENGINES = ['duckdb', 'glue'] as const;

/** Where a command works: a local lake folder, or the deployed stack of a stage. */
export type Where = { lake: string } | { stage: string };

/** A command's --lake or --stage: one or the other (--lake has a default, so only an explicit one conflicts). */
export function whereOf(options: { lake: string; stage?: string }, command: Command): Where {
  if (options.stage === undefined) return { lake: options.lake };
  if (command.getOptionValueSource('lake') === 'cli') throw new UsageError('give --lake DIR or --stage NAME, not both');
  return { stage: options.stage };
}

/** Refuses options that only mean something locally, naming why they do not apply with --stage. */
export function refuseLocalOnly(command: Command, names: string[], why: string): void {
  for (const name of names) {
    if (command.getOptionValueSource(name) === 'cli') {
      const flag = command.options.find((o) => o.attributeName() === name)?.long ?? name;
      throw new UsageError(`${flag} applies to local runs, not with --stage: ${why}`);
    }
  }
}

export const changeConsentOption = (): Option =>
  new Option(
    '--change-consent',
    "with --consent: change the lake's consent policy, rebuilding every table under the new one (otherwise another policy than the lake's is refused)",
  );

export const lakeOption = (): Option =>
  new Option('--lake <dir>', 'the local lake folder, laid out like the bucket').default(DEFAULT_LAKE);

export const onStageOption = (): Option =>
  new Option(
    '--stage <name>',
    'work on the deployed stack stedi-lakehouse-<name> instead of a local lake (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL apply)',
  );

export const consentOption = (): Option =>
  new Option(
    '--consent <policy>',
    "consent policy of the runs it starts (default: the lake's; another one is refused without --change-consent)",
  ).choices(CONSENT_POLICIES);

// Required, never a default: a command that starts runs on a stack must not pick one for the user.
export const stageOption = (): Option =>
  new Option('--stage <name>', 'the deployed stage (stack stedi-lakehouse-<stage>)').makeOptionMandatory();
