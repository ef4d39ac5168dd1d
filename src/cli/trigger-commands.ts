import { existsSync } from 'node:fs';
import path from 'node:path';
import { readPiiSalt } from '../config';
import { Dataset } from '../layout';
import { TriggerDependencies } from '../landing-trigger/trigger';
import { LocalEngine } from '../local/engine';
import { ALERTS_FILE, Lake } from '../local/lake';
import { LocalStepFunctions, localTrigger, notificationFor } from '../local/local-trigger';
import { LandingWatcher } from '../local/watch';
import { ConsentPolicy } from '../pipeline';
import { runLocalExecution } from '../statemachine/local-runner';
import { printProgress } from './format';

const log = (line: string) => process.stdout.write(`${line}\n`);

function errorReplacer(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  return process.env.STEDI_DEBUG ? `${value.stack ?? value.message}` : `${value.name}: ${value.message}`;
}

/** The landing handler's logic wired to the local state machine runner. */
async function localPipeline(lake: Lake, consentPolicy: ConsentPolicy) {
  const salt = readPiiSalt();
  if (salt.isDevelopmentSalt)
    process.stderr.write(
      'warning: STEDI_PII_SALT is not set; using the development salt (fine for sample data only)\n',
    );
  const engine = await LocalEngine.open(lake);
  const stepFunctions = new LocalStepFunctions(async (executionName, input) => {
    log(`execution ${executionName} started: from ${input.from}, ${input.files.length} file(s)`);
    const result = await runLocalExecution({
      engine,
      executionName,
      input,
      consentPolicy,
      piiSalt: salt.value,
      alertsFile: lake.path(ALERTS_FILE),
      onEvent: printProgress(log),
    });
    log(
      `execution ${executionName} ${result.status}${result.error ? `: ${result.error.name}: ${result.error.cause}` : ''}`,
    );
    return result;
  });
  const deps: TriggerDependencies = {
    stepFunctions,
    logger: {
      info: (message, extra) => log(`trigger: ${message} ${JSON.stringify(extra)}`),
      // An Error serialises to {}: show its message (and its stack with STEDI_DEBUG).
      error: (message, extra) => process.stderr.write(`trigger: ${message} ${JSON.stringify(extra, errorReplacer)}\n`),
    },
    metrics: { count: () => undefined },
  };
  return { engine, stepFunctions, trigger: localTrigger(deps) };
}

export async function watchCommand(options: {
  lake: string;
  consent: ConsentPolicy;
  batchWindow: number;
}): Promise<number> {
  const lake = new Lake(options.lake);
  const { engine, stepFunctions, trigger } = await localPipeline(lake, options.consent);
  const watcher = new LandingWatcher(lake, trigger, stepFunctions, {
    batchWindowMs: options.batchWindow,
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
  await stepFunctions.idle();
  engine.close();
  return 0;
}

export async function dropCommand(
  file: string,
  options: { lake: string; dataset: Dataset; consent: ConsentPolicy },
): Promise<number> {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  const lake = new Lake(options.lake);
  await lake.drop(file, options.dataset);
  log(`dropped ${file} as ${options.dataset}/landing/${path.basename(file)}`);
  const { engine, stepFunctions, trigger } = await localPipeline(lake, options.consent);
  try {
    await trigger([await notificationFor(lake, options.dataset, path.basename(file))]);
    await stepFunctions.idle();
  } finally {
    engine.close();
  }
  const [result] = stepFunctions.results;
  if (!result) return 0; // ignored (an empty file): the trigger said why
  return result.status === 'SUCCEEDED' ? 0 : 1;
}
