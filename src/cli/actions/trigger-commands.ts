import path from 'node:path';
import { readPiiSaltForRun } from '../../config';
import { Dataset, landingPrefix } from '../../definition/layout';
import { readBatch } from '../../landing-trigger/s3-records';
import { TriggerDependencies, executionNameFor } from '../../landing-trigger/trigger';
import { ExecutionRegistry } from '../../stand-ins/step-functions/executions';
import { LocalEngine } from '../../build/engine';
import { ALERTS_FILE, Lake } from '../../lake/lake';
import { executeOnLake } from '../../stand-ins/step-functions/lake-execution';
import { LakeBusyError, LakeLock } from '../../lake/lake-lock';
import { chooseConsentPolicy } from '../../lake/consent';
import { LocalStepFunctions, localTrigger, notificationFor } from '../../stand-ins/s3-notifications/local-trigger';
import { LandingWatcher } from '../../stand-ins/s3-notifications/watch';
import { ConsentPolicy } from '../../definition/pipeline';
import { runLocalExecution } from '../../stand-ins/step-functions/runner';
import { checkDropFile } from '../common/drop-file';
import { printProgress } from '../common/format';

const log = (line: string) => process.stdout.write(`${line}\n`);

function errorReplacer(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  return process.env.STEDI_DEBUG ? `${value.stack ?? value.message}` : `${value.name}: ${value.message}`;
}

/** Exit code when --no-wait finds the lake held by a running execution (EX_TEMPFAIL: try again later). */
export const LAKE_BUSY_EXIT_CODE = 75;

/**
 * The landing handler's logic wired to the local state machine runner. Each execution holds the
 * lake lock while it runs (waiting for one started elsewhere, unless `wait` is false).
 */
async function localPipeline(
  lake: Lake,
  consent: { policy?: ConsentPolicy; change?: boolean },
  command: string,
  options: { wait?: boolean; signal?: AbortSignal } = {},
) {
  const salt = readPiiSaltForRun();
  const engine = await LocalEngine.open(lake);
  const executions = new ExecutionRegistry(lake);
  const stepFunctions = new LocalStepFunctions(
    (executionName, input) =>
      executeOnLake(
        { lake, executionName, command, wait: options.wait, signal: options.signal, log },
        async (dynamoDb) => {
          log(`execution ${executionName} started: from ${input.from}, ${input.files.length} file(s)`);
          const result = await runLocalExecution({
            engine,
            executionName,
            input,
            consentPolicy: consent.policy,
            changeConsent: consent.change,
            piiSalt: salt.value,
            alertsFile: lake.path(ALERTS_FILE),
            dynamoDb,
            onEvent: printProgress(log),
          });
          log(
            `execution ${executionName} ${result.status}${result.error ? `: ${result.error.name}: ${result.error.cause}` : ''}`,
          );
          return result;
        },
      ),
    (executionName, error) =>
      process.stderr.write(
        `execution ${executionName} FAILED: ${error instanceof Error ? error.message : String(error)}\n`,
      ),
    { executions, command },
  );
  const deps: TriggerDependencies = {
    stepFunctions,
    logger: {
      info: (message, extra) => log(`trigger: ${message} ${JSON.stringify(extra)}`),
      // An Error serialises to {}: show its message (and its stack with STEDI_DEBUG).
      error: (message, extra) => process.stderr.write(`trigger: ${message} ${JSON.stringify(extra, errorReplacer)}\n`),
    },
    metrics: { count: () => undefined },
  };
  return { engine, stepFunctions, executions, trigger: localTrigger(deps) };
}

export async function watchCommand(options: {
  lake: string;
  consent?: ConsentPolicy;
  changeConsent?: boolean;
  batchWindow: number;
}): Promise<number> {
  const lake = new Lake(options.lake);
  lake.checkAccess({ write: true });
  const consent = { policy: options.consent, change: options.changeConsent };
  chooseConsentPolicy(lake, (await lake.snapshot()).catalog, consent.policy, consent.change); // refused at once
  const stopping = new AbortController();
  const { engine, stepFunctions, executions, trigger } = await localPipeline(lake, consent, 'stedi watch', {
    signal: stopping.signal,
  });
  const watcher = new LandingWatcher(lake, trigger, stepFunctions, {
    executions,
    batchWindowMs: options.batchWindow,
    onLeftOut: (file) => log(`${file}: left out, \`stedi drop\` started its execution`),
    onError: (error) =>
      process.stderr.write(`stedi watch: ${error instanceof Error ? error.message : String(error)}\n`),
  });
  watcher.start();
  log(`watching ${lake.path('*/landing/')} (batching window ${options.batchWindow} ms); Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  watcher.stop();
  stopping.abort(new Error('stedi watch stopped while waiting for the lake'));
  await stepFunctions.idle();
  engine.close();
  return 0;
}

export async function dropCommand(
  file: string,
  options: { lake: string; dataset: Dataset; consent?: ConsentPolicy; changeConsent?: boolean; wait: boolean },
): Promise<number> {
  checkDropFile(file);
  const lake = new Lake(options.lake);
  lake.checkAccess({ write: true });
  const consent = { policy: options.consent, change: options.changeConsent };
  // Refused before the file lands; chosen again, under the lake lock, when the execution starts.
  chooseConsentPolicy(lake, (await lake.snapshot()).catalog, consent.policy, consent.change);
  if (!options.wait) {
    // Fail before the file lands: a busy lake leaves everything as it was.
    const current = await new LakeLock(lake).holder();
    if (current?.alive) throw new LakeBusyError(current.holder);
  }
  const droppedAt = Date.now();
  await lake.drop(file, options.dataset);
  const key = `${landingPrefix(options.dataset)}${path.basename(file)}`;
  log(`dropped ${file} as ${key}`);
  const notification = await notificationFor(lake, options.dataset, path.basename(file));
  const { engine, stepFunctions, executions, trigger } = await localPipeline(lake, consent, 'stedi drop', {
    wait: options.wait,
  });
  try {
    // A `stedi watch` on the lake may have noticed the drop first: its execution processes the file.
    if (executions.startedFor(key, droppedAt).length === 0) {
      await trigger([notification]);
      await stepFunctions.idle();
    }
  } finally {
    engine.close();
  }
  const [result] = stepFunctions.results;
  if (result) {
    if (result.error?.name === 'LakeBusy') return LAKE_BUSY_EXIT_CODE; // taken between the check and the run
    return result.status === 'SUCCEEDED' ? 0 : 1;
  }
  const { files } = readBatch([notification]);
  if (files.length === 0) return 0; // ignored (an empty file): the trigger said why
  // Another process started the execution for this drop (its name is the file version's): follow it.
  const [picked] = executions.startedFor(key, droppedAt);
  const name = picked?.name ?? executionNameFor(files);
  const started = executions.read(name);
  log(
    `execution ${name} of ${started?.command ?? 'another process'} (pid ${started?.pid}) picks the file up; following it`,
  );
  const ended = await executions.follow(name);
  log(`execution ${name} ${ended.status}${ended.error ? `: ${ended.error.name}: ${ended.error.cause}` : ''}`);
  return ended.status === 'SUCCEEDED' ? 0 : 1;
}
