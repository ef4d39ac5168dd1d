import { Command, Option } from 'commander';
import { DATASETS, Dataset } from '../../definition/layout';
import { ConsentPolicy } from '../../definition/pipeline';
import { UsageError } from '../common/errors';
import {
  lakeOption,
  consentOption,
  changeConsentOption,
  onStageOption,
  LAKE_BUSY_EXIT_CODE,
  wholeNumber,
  whereOf,
} from '../common/options';

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

/** `stedi drop`: one file into a landing zone, triggering a run. */
export function registerDrop(program: Command, setExitCode: (code: number) => void): void {
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
            await import('../actions/stage-uploads')
          ).dropOnStage(file, {
            ...options,
            stage: where.stage,
            wait: options.wait === true,
            waitTimeoutSeconds: options.waitTimeout,
          }),
        );
      } else
        setExitCode(
          await (
            await import('../actions/trigger-commands')
          ).dropCommand(file, { ...options, wait: options.wait !== false }),
        );
    });
}
