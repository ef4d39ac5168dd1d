import { cpSync, lstatSync, readdirSync, realpathSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { ALL_TABLES } from '../../src/definition/layout';
import { JobFailedError, LocalEngine, ParameterMismatchError } from '../../src/build/engine';
import { Lake } from '../../src/lake/lake';
import { required } from '../../src/required';
import { params, query, removeDir, runPipeline, tempDir } from '../helpers/lake';

async function dumpAllTables(lake: Lake): Promise<Record<string, string[]>> {
  const dump: Record<string, string[]> = {};
  for (const table of ALL_TABLES) {
    const rows = await query(lake, `select * from ${table}`);
    dump[table] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return dump;
}

describe('reruns', () => {
  jest.setTimeout(30_000);
  let dir: string;
  beforeEach(() => (dir = tempDir('reruns')));
  afterEach(() => removeDir(dir));

  it('give the same tables, row for row, with no appended duplicates', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 60, seed: 7, badLineRate: 0.02, recordsPerFile: 1000 });
    await runPipeline(lake, 'any', 'run-1');
    const first = await dumpAllTables(lake);
    await runPipeline(lake, 'any', 'run-2');
    const second = await dumpAllTables(lake);

    expect(first.accelerometer_trusted?.length).toBeGreaterThan(0);
    expect(first.machine_learning_curated?.length).toBeGreaterThan(0);
    expect(second).toEqual(first);
    expect(readdirSync(path.join(lake.root, 'accelerometer')).sort()).toEqual([
      'landing',
      'quarantine',
      'trusted',
      'validated',
    ]);
  });

  it('replace a landing file dropped again under the same name, as S3 does', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    const drops = path.join(dir, 'drops');
    await generate(drops, 'drop', { customers: 20, seed: 3 });
    await lake.dropFolder(drops);
    await runPipeline(lake);
    const before = await query(lake, 'select count(*) as n from customer_landing');

    const customerFile = required(readdirSync(path.join(drops, 'customer'))[0], 'a customer drop');
    writeFileSync(path.join(drops, 'customer', customerFile), '');
    await lake.drop(path.join(drops, 'customer', customerFile), 'customer');
    await runPipeline(lake);

    expect(before).toEqual([{ n: 20 }]);
    expect(await query(lake, 'select count(*) as n from customer_landing')).toEqual([{ n: 0 }]);
    expect(await query(lake, 'select count(*) as n from machine_learning_curated')).toEqual([{ n: 0 }]);
  });

  it('leave the previous version readable when a job fails mid-way', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 20, seed: 5 });
    await runPipeline(lake);
    const previous = await query(lake, 'select count(*) as n from machine_learning_curated');

    // Break an input of the last job: it fails after it has started writing (rebuilt, as its inputs are
    // unchanged as far as the catalog knows).
    const trusted = path.join(lake.root, 'step_trainer', 'trusted');
    const partition = required(readdirSync(trusted)[0], 'a step_trainer_trusted partition');
    const file = required(readdirSync(path.join(trusted, partition))[0], 'a file of that partition');
    writeFileSync(path.join(trusted, partition, file), 'not parquet');

    const engine = await LocalEngine.open(lake, { rebuild: true });
    try {
      await expect(engine.runJob('machine_learning_curated', params('any', 'run-broken'))).rejects.toThrow(
        JobFailedError,
      );
    } finally {
      engine.close();
    }
    expect(await query(lake, 'select count(*) as n from machine_learning_curated')).toEqual(previous);
    expect(readdirSync(path.join(lake.root, 'machine_learning'))).toEqual(['curated']);
  });

  it('migrate a lake of the old layout, putting back what a crash between its two renames left', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 10, seed: 5, badLineRate: 0.05 });
    await runPipeline(lake);
    const before = await dumpAllTables(lake);

    // The old layout: each table and quarantine a plain folder at its key, _catalog.json a plain file,
    // and no validated copy.
    const catalog = await lake.readCatalog();
    for (const key of Object.keys(catalog.versions!)) {
      const folder = lake.path(key);
      const version = realpathSync(folder);
      unlinkSync(folder);
      if (!key.endsWith('/validated')) cpSync(version, folder, { recursive: true });
    }
    for (const name of ['_catalog.json', '_current', '_snapshots', '_versions'])
      rmSync(lake.path(name), { recursive: true });
    writeFileSync(lake.path('_catalog.json'), JSON.stringify({ tables: catalog.tables }));
    // What a crash of the old swap left: the old version moved aside, the new one still staged.
    const customerDir = path.join(lake.root, 'customer');
    renameSync(path.join(customerDir, 'trusted'), path.join(customerDir, '.trusted.previous-crashed'));
    writeFileSync(path.join(customerDir, '.trusted.staging-crashed'), 'half written');

    lake.recover();
    expect(readdirSync(customerDir).sort()).toEqual(['curated', 'landing', 'quarantine', 'trusted']);
    expect(lstatSync(lake.path('customer/trusted')).isSymbolicLink()).toBe(true);
    expect(lstatSync(lake.path('_catalog.json')).isSymbolicLink()).toBe(true);
    expect(await dumpAllTables(lake)).toEqual(before);
    await runPipeline(lake, 'any', 'run-2');
    expect(await dumpAllTables(lake)).toEqual(before);
  });

  it('never read a table whose data went missing as empty: the job and the query name it', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 10, seed: 5 });
    await runPipeline(lake);
    rmSync(realpathSync(lake.path('customer/curated')), { recursive: true });

    const engine = await LocalEngine.open(lake);
    try {
      await expect(engine.runJob('step_trainer_landing_to_trusted', params('any', 'run-2'))).rejects.toThrow(
        /table customer_curated cannot be read: its data folder for customer\/curated\/ is missing/,
      );
    } finally {
      engine.close();
    }
    await expect(query(lake, 'select count(*) as n from customer_curated')).rejects.toThrow(/customer_curated/);
    expect(await query(lake, 'select count(*) as n from step_trainer_trusted')).not.toEqual([{ n: 0 }]);
  });

  it('refuse to build on a table made with another salt or consent policy, naming it', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 10, seed: 5 });
    await runPipeline(lake, 'any');
    const catalog = JSON.stringify(await lake.readCatalog());
    expect(catalog).not.toContain(params().piiSalt); // only a fingerprint is kept

    const engine = await LocalEngine.open(lake);
    try {
      const otherSalt = { ...params('any', 'run-salt'), piiSalt: 'another-salt-0123456789' };
      await expect(engine.runJob('step_trainer_landing_to_trusted', otherSalt)).rejects.toThrow(ParameterMismatchError);
      // step_trainer_trusted hashes e-mails with the salt to read customer_trusted's consent window.
      await expect(engine.runJob('machine_learning_curated', otherSalt)).rejects.toThrow(
        /step_trainer_trusted was built with another PII salt/,
      );
      // customer_trusted computes the consent window from the policy.
      await expect(engine.runJob('customer_trusted_to_curated', params('since-consent', 'run-policy'))).rejects.toThrow(
        /customer_trusted was built with consent policy any, but this run uses since-consent/,
      );
      // Rebuilt from the first job that uses the new value, the chain works again.
      await engine.runJob('customer_trusted_to_curated', otherSalt);
      await engine.runJob('step_trainer_landing_to_trusted', otherSalt);
      await expect(engine.runJob('machine_learning_curated', otherSalt)).resolves.toMatchObject({
        job: 'machine_learning_curated',
      });
    } finally {
      engine.close();
    }
  });
});
