import { Command, Option } from 'commander';
import { CONSENT_POLICIES, ConsentPolicy } from '../../definition/pipeline';
import { lakeOption } from '../common/options';

/** `stedi doctor`: examine (and --repair) a local lake. */
export function registerDoctor(program: Command, setExitCode: (code: number) => void): void {
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
      setExitCode(await (await import('../actions/doctor-command')).doctorCommand(options)),
    );
}
