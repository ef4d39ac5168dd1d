import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/generate';
import { ALL_TABLES } from '../../src/layout';
import { JobFailedError, LocalEngine, ParameterMismatchError } from '../../src/local/engine';
import { Lake } from '../../src/local/lake';
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

    expect(first.accelerometer_trusted.length).toBeGreaterThan(0);
    expect(first.machine_learning_curated.length).toBeGreaterThan(0);
    expect(second).toEqual(first);
    expect(readdirSync(path.join(lake.root, 'accelerometer')).sort()).toEqual(['landing', 'quarantine', 'trusted']);
  });

  it('replace a landing file dropped again under the same name, as S3 does', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    const drops = path.join(dir, 'drops');
    await generate(drops, 'drop', { customers: 20, seed: 3 });
    await lake.dropFolder(drops);
    await runPipeline(lake);
    const before = await query(lake, 'select count(*) as n from customer_landing');

    const [customerFile] = readdirSync(path.join(drops, 'customer'));
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

    // Break an input of the last job: it fails after it has started writing.
    const trusted = path.join(lake.root, 'step_trainer', 'trusted');
    const partition = readdirSync(trusted)[0];
    const file = readdirSync(path.join(trusted, partition))[0];
    writeFileSync(path.join(trusted, partition, file), 'not parquet');

    const engine = await LocalEngine.open(lake);
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

  it('recover the previous version after a crash between the two renames of a swap', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 10, seed: 5 });
    await runPipeline(lake);
    const previous = await query(lake, 'select count(*) as n from customer_trusted');

    // What a crash leaves: the old version moved aside, the new one still staged.
    const customerDir = path.join(lake.root, 'customer');
    renameSync(path.join(customerDir, 'trusted'), path.join(customerDir, '.trusted.previous-crashed'));
    writeFileSync(path.join(customerDir, '.trusted.staging-crashed'), 'half written');
    await lake.recover('customer/trusted/');

    expect(existsSync(path.join(customerDir, '.trusted.staging-crashed'))).toBe(false);
    expect(await query(lake, 'select count(*) as n from customer_trusted')).toEqual(previous);
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
      await expect(engine.runJob('machine_learning_curated', otherSalt)).rejects.toThrow(
        /customer_curated was built with another PII salt/,
      );
      await expect(engine.runJob('customer_trusted_to_curated', params('since-consent', 'run-policy'))).rejects.toThrow(
        /accelerometer_trusted was built with consent policy any, but this run uses since-consent/,
      );
      // Rebuilt from the first job that uses the new value, the chain works again.
      await engine.runJob('customer_trusted_to_curated', otherSalt);
      await expect(engine.runJob('machine_learning_curated', otherSalt)).resolves.toMatchObject({
        job: 'machine_learning_curated',
      });
    } finally {
      engine.close();
    }
  });
});
