import { Command } from 'commander';
import { ConsentPolicy } from '../../definition/pipeline';
import {
  lakeOption,
  consentOption,
  changeConsentOption,
  wholeNumber,
  onStageOption,
  whereOf,
  refuseLocalOnly,
} from '../common/options';

/** `stedi watch`'s options. */
interface WatchOptions {
  lake: string;
  stage?: string;
  consent?: ConsentPolicy;
  changeConsent?: boolean;
  batchWindow: number;
}

/** `stedi watch`: run the pipeline on each burst of files dropped into the landing folders. */
export function registerWatch(program: Command, setExitCode: (code: number) => void): void {
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
      if (!('stage' in where))
        return setExitCode(await (await import('../actions/trigger-commands')).watchCommand(options));
      refuseLocalOnly(
        command,
        ['consent', 'changeConsent', 'batchWindow'],
        "on AWS the bucket's notifications start the runs",
      );
      const stopping = new AbortController();
      process.once('SIGINT', () => stopping.abort());
      process.once('SIGTERM', () => stopping.abort());
      setExitCode(
        await (await import('../actions/stage-uploads')).watchStage({ stage: where.stage, signal: stopping.signal }),
      );
    });
}
