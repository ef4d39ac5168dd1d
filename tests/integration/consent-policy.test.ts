import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { generate } from '../../src/sample/generate';
import { DERIVED_TABLES, landingPrefix } from '../../src/definition/layout';
import { ConsentPolicyError } from '../../src/lake/consent';
import { LandingFolderMissingError, LocalEngine, ParameterMismatchError } from '../../src/build/engine';
import { ALERTS_FILE, Lake } from '../../src/lake/lake';
import { ConsentPolicy } from '../../src/definition/pipeline';
import { ExecutionResult } from '../../src/stand-ins/step-functions/execution';
import { runLocalExecution } from '../../src/stand-ins/step-functions/runner';
import { TEST_SALT, params, query, removeDir, tempDir } from '../helpers/lake';

// Issue 18, items 1 and 2: a lake keeps the consent policy it was built with, no job mixes tables of
// two policies, and a missing landing folder is an error before any job runs.

async function execute(
  lake: Lake,
  name: string,
  consent: { consentPolicy?: ConsentPolicy; changeConsent?: boolean; from?: string } = {},
): Promise<ExecutionResult> {
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
  try {
    return await runLocalExecution({
      engine,
      executionName: name,
      input: { from: consent.from ?? 'all', reason: 'test', files: [] },
      consentPolicy: consent.consentPolicy,
      changeConsent: consent.changeConsent,
      piiSalt: TEST_SALT,
      alertsFile: lake.path(ALERTS_FILE),
      lockWaitMs: 20,
    });
  } finally {
    engine.close();
  }
}

const count = async (lake: Lake, table: string) =>
  Number((await query(lake, `select count(*) as n from ${table}`))[0]?.n);

describe("the lake's consent policy", () => {
  let dir: string;
  let lake: Lake;
  let sinceConsentReadings: number;
  let anyReadings: number;
  beforeAll(async () => {
    dir = tempDir('consent');
    lake = new Lake(dir);
    await generate(lake.root, 'lake', { customers: 40, seed: 5, badLineRate: 0 });
  }, 60_000);
  afterAll(() => removeDir(dir));

  it('is recorded by the first run, and every table whose rows depend on it records it', async () => {
    expect((await execute(lake, 'first', { consentPolicy: 'since-consent' })).status).toBe('SUCCEEDED');
    const catalog = await lake.readCatalog();
    expect(catalog.consentPolicy).toBe('since-consent');
    // customer_trusted computes the consent window from it; customer_curated's SQL never reads the policy, but
    // its rows do depend on it (through accelerometer_trusted).
    for (const table of [
      'customer_trusted',
      'accelerometer_trusted',
      'customer_curated',
      'step_trainer_trusted',
      'machine_learning_curated',
    ])
      expect([table, catalog.tables[table as 'customer_curated']?.parameters?.consent_policy]).toEqual([
        table,
        'since-consent',
      ]);
    sinceConsentReadings = await count(lake, 'accelerometer_trusted');
  }, 60_000);

  it('is used when a run does not name one: a forgotten flag does not widen consent', async () => {
    // The finding: a later run without --consent rebuilt everything as `any`, bringing back readings
    // taken before consent. Touch accelerometer landing so the jobs run again rather than skip.
    const [file] = readdirSync(lake.path(landingPrefix('accelerometer')));
    renameSync(
      lake.path(`${landingPrefix('accelerometer')}${file}`),
      lake.path(`${landingPrefix('accelerometer')}moved-${file}`),
    );
    expect((await execute(lake, 'no-flag')).status).toBe('SUCCEEDED');
    expect((await lake.readCatalog()).consentPolicy).toBe('since-consent');
    expect(await count(lake, 'accelerometer_trusted')).toBe(sinceConsentReadings);
  }, 60_000);

  it('is never changed by asking for another one: refused, naming both, and nothing runs', async () => {
    const before = await lake.readCatalog();
    const refused = execute(lake, 'other-policy', { consentPolicy: 'any' });
    await expect(refused).rejects.toThrow(ConsentPolicyError);
    await expect(refused).rejects.toThrow(
      /built with consent policy since-consent, and --consent asks for any.*--change-consent/,
    );
    expect(await lake.readCatalog()).toEqual(before);
  }, 60_000);

  it('changes with --change-consent, which rebuilds every table under the new one, from the first job', async () => {
    // Even a run that would start at the step trainer rebuilds from the first job.
    const result = await execute(lake, 'change', { consentPolicy: 'any', changeConsent: true, from: 'step_trainer' });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.jobs.map((j) => j.name)).toHaveLength(5);
    const catalog = await lake.readCatalog();
    expect(catalog.consentPolicy).toBe('any');
    for (const table of [
      'customer_trusted',
      'accelerometer_trusted',
      'customer_curated',
      'step_trainer_trusted',
      'machine_learning_curated',
    ])
      expect(catalog.tables[table as 'customer_curated']?.parameters?.consent_policy).toBe('any');
    anyReadings = await count(lake, 'accelerometer_trusted');
    expect(anyReadings).toBeGreaterThan(sinceConsentReadings); // the sample has readings before consent
    // Now the lake's: a run without the flag keeps it.
    expect((await execute(lake, 'after-change')).status).toBe('SUCCEEDED');
    expect(await count(lake, 'accelerometer_trusted')).toBe(anyReadings);
  }, 120_000);

  it('keeps a job from building on a table of the other policy (customer_curated included)', async () => {
    // The finding: step_trainer_trusted was built from a customer_curated of the other policy.
    const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
    try {
      const mixed = engine.runJob('step_trainer_landing_to_trusted', params('since-consent', 'mixing'));
      await expect(mixed).rejects.toThrow(ParameterMismatchError);
      await expect(mixed).rejects.toThrow(
        /customer_curated was built with consent policy any, but this run uses since-consent/,
      );
    } finally {
      engine.close();
    }
  }, 60_000);
});

describe('a missing landing folder', () => {
  let dir: string;
  let lake: Lake;
  beforeAll(async () => {
    dir = tempDir('landing-folder');
    lake = new Lake(dir);
    await generate(lake.root, 'lake', { customers: 30, seed: 6, badLineRate: 0 });
    expect((await execute(lake, 'first')).status).toBe('SUCCEEDED');
  }, 60_000);
  afterAll(() => removeDir(dir));

  it('is an error before any job runs, naming it; the tables stay as they were', async () => {
    const before = await lake.readCatalog();
    const folder = lake.path(landingPrefix('step_trainer'));
    renameSync(folder, `${dir}-step-trainer-aside`); // moved, or a mount gone
    try {
      const run = execute(lake, 'unmounted');
      await expect(run).rejects.toThrow(LandingFolderMissingError);
      await expect(run).rejects.toThrow(`the landing folder ${folder} is missing`);
      expect(await lake.readCatalog()).toEqual(before);
      // The engine checks too, for a job run on its own.
      const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
      try {
        await expect(engine.runJob('step_trainer_landing_to_trusted', params())).rejects.toThrow(
          LandingFolderMissingError,
        );
      } finally {
        engine.close();
      }
      expect((await lake.readCatalog()).tables.step_trainer_landing).toEqual(before.tables.step_trainer_landing);
    } finally {
      renameSync(`${dir}-step-trainer-aside`, folder);
    }
    expect((await execute(lake, 'put-back')).status).toBe('SUCCEEDED');
  }, 60_000);

  it('emptied on purpose (its files deleted, the folder kept) is a lake with no data of that kind: the run publishes', async () => {
    const folder = lake.path(landingPrefix('step_trainer'));
    const aside = `${dir}-step-trainer-files`;
    renameSync(folder, aside);
    mkdirSync(folder);
    try {
      expect((await execute(lake, 'emptied')).status).toBe('SUCCEEDED');
      const { tables } = await lake.readCatalog();
      expect([tables.step_trainer_trusted?.rows, tables.machine_learning_curated?.rows]).toEqual([0, 0]);
    } finally {
      rmSync(folder, { recursive: true });
      renameSync(aside, folder);
    }
    expect((await execute(lake, 'refilled')).status).toBe('SUCCEEDED');
    expect((await lake.readCatalog()).tables.machine_learning_curated?.rows).toBeGreaterThan(0);
  }, 60_000);

  it('of a new lake is made: an empty one is a lake with no data of that kind', async () => {
    const fresh = new Lake(tempDir('landing-new'));
    try {
      await generate(fresh.root, 'lake', { customers: 20, seed: 7, badLineRate: 0 });
      rmSync(fresh.path(landingPrefix('step_trainer')), { recursive: true });
      const result = await execute(fresh, 'no-step-trainer');
      expect(result.status).toBe('SUCCEEDED');
      expect(readdirSync(fresh.path(landingPrefix('step_trainer')))).toEqual([]);
      const { tables } = await fresh.readCatalog();
      expect(tables.step_trainer_trusted?.rows).toBe(0);
      expect(tables.customer_curated?.rows).toBeGreaterThan(0);
      for (const table of DERIVED_TABLES) expect(tables[table]?.runId).toBe('no-step-trainer');
      // From now on the lake has read it: moving it away is the error above, emptying it is not.
      rmSync(fresh.path(landingPrefix('step_trainer')), { recursive: true });
      await expect(execute(fresh, 'gone')).rejects.toThrow(LandingFolderMissingError);
      mkdirSync(fresh.path(landingPrefix('step_trainer')));
      expect((await execute(fresh, 'empty')).status).toBe('SUCCEEDED');
    } finally {
      removeDir(fresh.root);
    }
  }, 60_000);
});
