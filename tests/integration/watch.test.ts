import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { readBatch } from '../../src/landing-trigger/s3-records';
import { LocalEngine } from '../../src/build/engine';
import { ALERTS_FILE, Lake } from '../../src/lake/lake';
import { LocalStepFunctions, localTrigger } from '../../src/stand-ins/s3-notifications/local-trigger';
import { LandingWatcher } from '../../src/stand-ins/s3-notifications/watch';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { runLocalExecution } from '../../src/stand-ins/step-functions/runner';
import { TEST_SALT, dumpLake, freshDump, query, removeDir, runPipeline, tempDir } from '../helpers/lake';
import { nextTurn, until } from '../helpers/wait';

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const FIXTURES = path.join(__dirname, '../fixtures/semantics');
const ENV = { ...process.env, STEDI_PII_SALT: 'watch-test-salt-0123456789' };
const fixture = (dataset: string) => path.join(FIXTURES, dataset, `${dataset}-1.json`);

describe('stedi watch', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('watch')));
  afterEach(() => removeDir(dir));

  it('turns three dropped files into one run with the right tables', async () => {
    const child = spawn(process.execPath, [BIN, 'watch', '--lake', dir, '--batch-window', '400'], { env: ENV });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    try {
      await until(() => stdout.includes('watching'), 'the watcher to start');
      const lake = new Lake(dir);
      for (const dataset of ['customer', 'accelerometer', 'step_trainer'] as const)
        await lake.drop(fixture(dataset), dataset);
      await until(() => /execution s3-\w+ (SUCCEEDED|FAILED)/.test(stdout), 'the run to end');

      expect(stdout.match(/execution s3-\w+ started/g)).toHaveLength(1);
      expect(stdout).toMatch(/execution s3-\w+ started: from customer, 3 file\(s\)/);
      expect(stdout).toMatch(/execution s3-\w+ SUCCEEDED/);
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
    const counts = await query(
      new Lake(dir),
      'select (select count(*) from customer_curated) as curated, (select count(*) from machine_learning_curated) as ml',
    );
    expect(counts).toEqual([{ curated: 2, ml: 4 }]);
  }, 30_000);

  it('hands a file dropped during a run to the next run', async () => {
    const lake = new Lake(dir);
    const runs: string[][] = [];
    let finishFirst!: () => void;
    const firstRunHeld = new Promise<void>((resolve) => (finishFirst = resolve));
    const stepFunctions = new LocalStepFunctions(async (executionName, input) => {
      runs.push(input.files);
      if (runs.length === 1) await firstRunHeld;
      return { status: 'SUCCEEDED', executionName, jobs: [], alerts: [], taskFailures: [] };
    });
    const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const trigger = localTrigger({ stepFunctions, logger: silent, metrics: { count: () => undefined } });
    // Each batch the watcher hands over, with the files the trigger handed back (an execution was running).
    const handedBack: string[][] = [];
    const watcher = new LandingWatcher(
      lake,
      async (records) => {
        const response = await trigger(records);
        const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
        handedBack.push(readBatch(records.filter((r) => failed.has(r.messageId))).files.map((f) => f.key));
        return response;
      },
      stepFunctions,
      {
        batchWindowMs: 150,
        onError: (error) => {
          throw error;
        },
      },
    );
    watcher.start();
    try {
      await lake.drop(fixture('customer'), 'customer');
      await until(() => runs.length === 1, 'the first run');
      copyFileSync(fixture('accelerometer'), path.join(dir, 'accelerometer/landing/late.json'));
      // Its batch is handed over while the first run holds: handed back (deferred), not run.
      await until(() => handedBack.length === 2, 'the late file to be handed over', { timeoutMs: 5_000 });
      expect(handedBack).toEqual([[], ['accelerometer/landing/late.json']]);
      expect(runs).toHaveLength(1);
      finishFirst();
      await until(() => runs.length === 2, 'the second run');
      await watcher.settled();
      expect(runs).toEqual([['customer/landing/customer-1.json'], ['accelerometer/landing/late.json']]);
    } finally {
      finishFirst();
      watcher.stop();
    }
  }, 20_000);
});

describe('the local Step Functions port of stedi watch', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('watch-port')));
  afterEach(() => removeDir(dir));

  it('is free again after an execution throws, reports it, and runs the next batch', async () => {
    const lake = new Lake(dir);
    const thrown: string[] = [];
    const runs: string[][] = [];
    const stepFunctions = new LocalStepFunctions(
      async (executionName, input) => {
        runs.push(input.files);
        await nextTurn();
        if (runs.length === 1) throw new Error('the lake cannot be written');
        if (runs.length === 2)
          return {
            status: 'FAILED',
            executionName,
            jobs: [],
            alerts: [],
            taskFailures: [],
            error: { name: 'States.TaskFailed', cause: 'a job failed' },
          };
        return { status: 'SUCCEEDED', executionName, jobs: [], alerts: [], taskFailures: [] };
      },
      (name, error) => thrown.push(`${name}: ${(error as Error).message}`),
    );
    const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const watcher = new LandingWatcher(
      lake,
      localTrigger({ stepFunctions, logger: silent, metrics: { count: () => undefined } }),
      stepFunctions,
      {
        batchWindowMs: 100,
        onError: (error) => {
          throw error;
        },
      },
    );
    watcher.start();
    try {
      for (const [i, dataset] of (['customer', 'accelerometer', 'step_trainer'] as const).entries()) {
        await lake.drop(fixture(dataset), dataset);
        await until(() => runs.length === i + 1, `run ${i + 1}`, { timeoutMs: 5_000 });
        // the port is free again (it stayed "running" for good after a throw)
        await until(async () => !(await stepFunctions.hasRunningExecution()), 'the port to be free', {
          timeoutMs: 5_000,
        });
      }
    } finally {
      watcher.stop();
    }
    expect(runs).toEqual([
      ['customer/landing/customer-1.json'],
      ['accelerometer/landing/accelerometer-1.json'],
      ['step_trainer/landing/step_trainer-1.json'],
    ]);
    expect(thrown).toEqual([expect.stringMatching(/^s3-\w+: the lake cannot be written$/)]);
    expect(stepFunctions.results.map((r) => [r.status, r.error?.cause])).toEqual([
      ['FAILED', 'the lake cannot be written'],
      ['FAILED', 'a job failed'],
      ['SUCCEEDED', undefined],
    ]);
  }, 20_000);
});

describe('stedi drop', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('drop')));
  afterEach(() => removeDir(dir));

  it('copies one file into landing and runs the pipeline from its dataset', async () => {
    const drop = spawnSync(
      process.execPath,
      [BIN, 'drop', fixture('customer'), '--dataset', 'customer', '--lake', dir],
      { encoding: 'utf8', env: ENV },
    );
    expect(drop.status).toBe(0);
    expect(drop.stdout).toMatch(/execution s3-\w+ started: from customer, 1 file\(s\)/);
    expect(await query(new Lake(dir), 'select count(*) as n from customer_trusted')).toEqual([{ n: 3 }]);
  });

  it('ignores an empty file, saying why', () => {
    const empty = path.join(dir, 'empty.json');
    writeFileSync(empty, '');
    const drop = spawnSync(
      process.execPath,
      [BIN, 'drop', empty, '--dataset', 'step_trainer', '--lake', path.join(dir, 'lake')],
      { encoding: 'utf8', env: ENV },
    );
    expect(drop.status).toBe(0);
    expect(drop.stdout).toMatch(/record ignored .*zero-byte object/);
    expect(drop.stdout).not.toMatch(/execution s3-/);
  });
});

describe('a file removed from landing (S3 ObjectRemoved, as the landing handler runs it)', () => {
  // The lake's watcher turns a file gone from landing into the ObjectRemoved:Delete notification S3 sends
  // (Amazon S3 User Guide, "Event notification types and destinations"), and the landing handler's logic runs
  // the real state machine on the local engine from the first job that reads that dataset. Afterwards every
  // table, quarantine and catalog count must be what a fresh run over what is left in landing gives.
  let dir: string;
  let engine: LocalEngine;
  let stepFunctions: LocalStepFunctions;
  let watcher: LandingWatcher;
  const runs: { files: string[]; from: string }[] = [];
  const errors: unknown[] = [];

  beforeEach(async () => {
    dir = tempDir('watch-removed');
    runs.length = 0;
    errors.length = 0;
    const lake = new Lake(dir);
    await generate(dir, 'lake', { customers: 40, seed: 11, badLineRate: 0.02, recordsPerFile: 15 });
    await runPipeline(lake, 'any', 'before');
    engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
    stepFunctions = new LocalStepFunctions(async (executionName, input) => {
      runs.push({ files: input.files, from: input.from });
      return runLocalExecution({
        engine,
        executionName,
        input,
        consentPolicy: 'any',
        piiSalt: TEST_SALT,
        alertsFile: lake.path(ALERTS_FILE),
      });
    });
    const silent = { info: () => undefined, error: () => undefined };
    watcher = new LandingWatcher(
      lake,
      localTrigger({ stepFunctions, logger: silent, metrics: { count: () => undefined } }),
      stepFunctions,
      { batchWindowMs: 300, onError: (error) => errors.push(error) },
    );
    watcher.start();
  }, 60_000);

  afterEach(() => {
    watcher.stop();
    engine.close();
    removeDir(dir);
  });

  const landingFiles = (dataset: string) =>
    readdirSync(path.join(dir, dataset, 'landing'))
      .filter((f) => f.endsWith('.json'))
      .sort();

  it.each(['customer', 'accelerometer', 'step_trainer'] as const)(
    '%s: a landing file deleted starts one run from its dataset, and every zone equals a fresh run without the file',
    async (dataset) => {
      const [victim] = landingFiles(dataset);
      const key = `${dataset}/landing/${required(victim, `a ${dataset} landing file`)}`;
      const before = await dumpLake(new Lake(dir));
      unlinkSync(path.join(dir, key));
      await until(() => runs.length === 1, 'the run the removal starts');
      await watcher.settled();

      expect(errors).toEqual([]);
      expect(runs).toEqual([{ from: dataset, files: [key] }]);
      expect(stepFunctions.results.map((r) => r.status)).toEqual(['SUCCEEDED']);
      const after = await dumpLake(new Lake(dir));
      expect(after).toEqual(await freshDump(new Lake(dir), 'any'));
      expect(after).not.toEqual(before); // the file's rows were there, and are gone
    },
    60_000,
  );

  it('a file deleted and dropped again with other content within one batch: one run, over the new content', async () => {
    const [victim, other] = landingFiles('customer');
    const key = `customer/landing/${required(victim, 'a customer landing file')}`;
    const replacement = readFileSync(path.join(dir, 'customer', 'landing', required(other, 'another file')));
    unlinkSync(path.join(dir, key));
    writeFileSync(path.join(dir, key), replacement); // within the batching window
    await until(() => runs.length === 1, 'the run');
    await watcher.settled();

    expect(errors).toEqual([]);
    expect(runs).toEqual([{ from: 'customer', files: [key] }]);
    expect(stepFunctions.results.map((r) => r.status)).toEqual(['SUCCEEDED']);
    expect(await dumpLake(new Lake(dir))).toEqual(await freshDump(new Lake(dir), 'any'));
  }, 60_000);
});
