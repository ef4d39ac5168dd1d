import { existsSync } from 'node:fs';
import { readPiiSaltForRun } from '../../config';
import { Examination, clearCommittedState, examineLake } from '../../build/doctor';
import { ALERTS_FILE, Lake } from '../../lake/lake';
import { LakeLock } from '../../lake/lake-lock';
import { ConsentPolicy } from '../../definition/pipeline';
import type { ExecutionResult } from '../../stand-ins/step-functions/execution';
import { UsageError } from '../common/errors';
import { compactTimestamp, printProgress } from '../common/format';

export interface DoctorOptions {
  lake: string;
  repair?: boolean;
  /** With --repair, when the catalog (which records the lake's policy) cannot be read. */
  consent?: ConsentPolicy;
  json?: boolean;
}

/**
 * `stedi doctor`: examines every committed file of a local lake (see examineLake) and names each damaged
 * one; exit code 1 when one is. With --repair it rebuilds the lake from landing, which is never modified
 * (every landing file checked again, every table built whole, published once the checks pass), and
 * examines it again.
 */
export async function doctorCommand(options: DoctorOptions): Promise<number> {
  const lake = new Lake(options.lake);
  if (!existsSync(lake.root)) throw new UsageError(`--lake ${options.lake}: no such folder`);
  lake.checkAccess({ write: Boolean(options.repair) });
  const log = options.json
    ? (s: string) => process.stderr.write(`${s}\n`)
    : (s: string) => process.stdout.write(`${s}\n`);
  if (!options.repair) {
    // Under the lake lock: a run's commit removes old versions, which would read as missing.
    const lock = await new LakeLock(lake).acquire(
      { execution: `doctor-${compactTimestamp()}`, executionArn: 'stedi doctor', command: 'stedi doctor' },
      { wait: true, onWaiting: (holder) => log(`waiting for execution ${holder.execution} to finish`) },
    );
    let found: Examination;
    try {
      found = await examineLake(lake);
    } finally {
      await lock.release();
    }
    report(found, options, log);
    return found.damaged.length === 0 ? 0 : 1;
  }
  const salt = readPiiSaltForRun();
  const executionName = `doctor-${compactTimestamp()}-${process.pid}`;
  const [{ LocalEngine }, { runLocalExecution }, { executeOnLake }] = await Promise.all([
    import('../../build/engine'),
    import('../../stand-ins/step-functions/runner'),
    import('../../stand-ins/step-functions/lake-execution'),
  ]);
  let repaired = false;
  const result: ExecutionResult = await executeOnLake(
    { lake, executionName, command: 'stedi doctor --repair', log },
    async (dynamoDb) => {
      const found = await examineLake(lake);
      report(found, { ...options, json: false }, log);
      const nothing: ExecutionResult = { status: 'SUCCEEDED', executionName, jobs: [], alerts: [], taskFailures: [] };
      if (found.damaged.length === 0) return nothing;
      if (found.catalogDamaged) {
        if (!options.consent)
          throw new UsageError(
            "the lake's catalog cannot be read, and with it the consent policy the lake was built with: give --consent any|since-consent to rebuild it under that policy",
          );
        log('the catalog cannot be read: clearing what the runs made (never landing) to rebuild it from landing');
        clearCommittedState(lake);
      }
      log(`rebuilding the lake from landing: execution ${executionName}, every landing file checked again`);
      repaired = true;
      const engine = await LocalEngine.open(lake, { rebuild: true });
      try {
        return await runLocalExecution({
          engine,
          executionName,
          input: { from: 'all', reason: 'stedi doctor --repair', files: [] },
          consentPolicy: found.catalogDamaged ? options.consent : undefined,
          piiSalt: salt.value,
          alertsFile: lake.path(ALERTS_FILE),
          dynamoDb,
          onEvent: printProgress(log),
        });
      } finally {
        engine.close();
      }
    },
  );
  if (!repaired) {
    if (options.json) process.stdout.write(`${JSON.stringify({ damaged: [], repaired: false })}\n`);
    return 0;
  }
  if (result.status !== 'SUCCEEDED')
    process.stderr.write(
      `stedi doctor: the rebuild ${executionName} failed: ${result.error?.name}: ${result.error?.cause}\n`,
    );
  const after = await examineLake(lake);
  log(after.damaged.length === 0 ? 'after the repair:' : 'after the repair, still damaged:');
  report(after, options, log);
  return result.status === 'SUCCEEDED' && after.damaged.length === 0 ? 0 : 1;
}

function report(found: Examination, options: DoctorOptions, log: (line: string) => void): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(found)}\n`);
    return;
  }
  for (const { file, problem } of found.damaged) log(`damaged: ${file}: ${problem}`);
  for (const key of found.unrecorded)
    log(
      `note: ${key} was committed before files were recorded: its files are not checked (the next rebuild records them)`,
    );
  log(
    `${found.filesChecked} committed file(s) checked, ${found.counted.length} table(s) counted: ` +
      (found.damaged.length === 0
        ? 'nothing damaged'
        : `${found.damaged.length} damaged${options.repair ? '' : '; run `stedi doctor --repair` to rebuild from landing'}`),
  );
}
