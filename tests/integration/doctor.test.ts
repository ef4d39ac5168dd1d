import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { examineLake } from '../../src/build/doctor';
import { JobFailedError, LocalEngine } from '../../src/build/engine';
import { Lake, LakeDamagedError } from '../../src/lake/lake';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { TEST_SALT, dumpLake, freshDump, params, removeDir, runPipeline, tempDir } from '../helpers/lake';

// Issue 18, item 3: damage goes seen. Every committed file is checked against the size and SHA-256
// recorded at its commit; every error about a damaged file names it and the repair.

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');

function stedi(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, STEDI_PII_SALT: TEST_SALT },
  });
}

/** The first file under a lake's committed version of a key whose name matches. */
function committedFile(lake: Lake, key: string, pattern: RegExp): string {
  const catalog = JSON.parse(readFileSync(lake.path('_catalog.json'), 'utf8')) as {
    versions: Record<string, { id: string; files: Record<string, unknown> }>;
  };
  const version = required(catalog.versions[key], `the version of ${key}`);
  const file = required(
    Object.keys(version.files).find((f) => pattern.test(f)),
    `a file of ${key} matching ${pattern}`,
  );
  return lake.path(path.join('_versions', key, version.id, file));
}

describe('stedi doctor', () => {
  let dir: string;
  let lake: Lake;
  beforeEach(async () => {
    dir = tempDir('doctor');
    lake = new Lake(dir);
    await generate(lake.root, 'lake', { customers: 30, seed: 11, badLineRate: 0.02 });
    await runPipeline(lake, 'any', 'built');
  }, 60_000);
  afterEach(() => removeDir(dir));

  it('finds nothing damaged on a lake as built, every file checked and every table counted', async () => {
    const found = await examineLake(lake);
    expect(found.damaged).toEqual([]);
    expect(found.unrecorded).toEqual([]);
    expect(found.filesChecked).toBeGreaterThan(10);
    expect(found.counted.map((c) => c.table).sort()).toHaveLength(8);
    for (const c of found.counted) expect(c.rows).toBe(c.recorded);
    const cli = stedi('doctor', '--lake', dir);
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/nothing damaged/);
  }, 60_000);

  it('names a truncated validated segment and trusted part file, exits 1, and --repair rebuilds them from landing', async () => {
    // The finding: these passed stedi check, stedi tables and no-change runs, then failed every later run.
    const segment = committedFile(lake, 'accelerometer/validated', /^part-.*\.parquet$/);
    const part = committedFile(lake, 'step_trainer/trusted', /\.parquet$/);
    truncateSync(segment, 40);
    truncateSync(part, 40);
    const found = await examineLake(lake);
    expect(found.damaged.map((d) => d.file)).toEqual(expect.arrayContaining([segment, part]));
    expect(found.damaged.find((d) => d.file === part)?.problem).toMatch(/^40 bytes, \d+ when committed$/);

    const cli = stedi('doctor', '--lake', dir);
    expect(cli.status).toBe(1);
    expect(cli.stdout).toContain(`damaged: ${segment}: 40 bytes`);
    expect(cli.stdout).toContain(`damaged: ${part}: 40 bytes`);
    expect(cli.stdout).toMatch(/run `stedi doctor --repair`/);

    // A job that reads the damaged file names it and says how to repair it.
    const engine = await LocalEngine.open(lake, { memoryLimit: '512MB', rebuild: false });
    try {
      const run = engine.runJob('machine_learning_curated', params('any', 'reads-damage'));
      await expect(run).rejects.toThrow(JobFailedError);
      await expect(run).rejects.toThrow(
        new RegExp(`${part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged .*stedi doctor --repair`),
      );
    } finally {
      engine.close();
    }

    const repair = stedi('doctor', '--lake', dir, '--repair');
    expect(repair.status).toBe(0);
    expect(repair.stdout).toMatch(/after the repair:\n.*nothing damaged/);
    expect((await examineLake(lake)).damaged).toEqual([]);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  }, 120_000);

  it('names a file whose content changed at the same size, a file added to a version, and a count that does not match', async () => {
    const part = committedFile(lake, 'customer/trusted', /\.parquet$/);
    const bytes = readFileSync(part);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    writeFileSync(part, bytes);
    const stray = path.join(path.dirname(part), 'part-stray.parquet');
    writeFileSync(stray, readFileSync(committedFile(lake, 'customer/curated', /\.parquet$/)));
    const found = await examineLake(lake);
    expect(found.damaged).toEqual(
      expect.arrayContaining([
        { file: part, problem: 'its content is not what was committed (SHA-256 differs)' },
        { file: stray, problem: 'not part of the committed version' },
      ]),
    );
  }, 60_000);

  it('names a catalog that does not parse, in every command, and --repair rebuilds the lake under the policy given', async () => {
    const snapshot = path.basename(readlinkSync(lake.path('_current'))); // the current one, among those kept for runs
    writeFileSync(lake.path(`_snapshots/${snapshot}/catalog.json`), '{"tables": {');
    const catalog = lake.path('_catalog.json');
    // The finding: a JSON error that named no file.
    expect(() => lake.snapshotSync()).toThrow(LakeDamagedError);
    const tables = stedi('tables', '--lake', dir);
    expect(tables.status).toBe(1);
    expect(tables.stderr).toContain(`${catalog} is damaged`);
    expect(tables.stderr).toContain('stedi doctor --repair');
    const run = stedi('run', '--lake', dir);
    expect(run.stderr).toContain(`${catalog} is damaged`);

    const found = await examineLake(lake);
    expect(found).toMatchObject({ catalogDamaged: true, damaged: [{ file: catalog }] });
    // Which policy the lake had is in the catalog: the repair asks for it rather than guess.
    const unsure = stedi('doctor', '--lake', dir, '--repair');
    expect(unsure.status).toBe(2);
    expect(unsure.stderr).toMatch(/give --consent any\|since-consent/);
    const repair = stedi('doctor', '--lake', dir, '--repair', '--consent', 'any');
    expect(repair.status).toBe(0);
    expect((await lake.readCatalog()).consentPolicy).toBe('any');
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  }, 120_000);

  it('names a validated manifest that does not parse', async () => {
    const manifest = committedFile(lake, 'customer/validated', /^_manifest\.json$/);
    const size = readFileSync(manifest).length;
    writeFileSync(manifest, `{"files": ${' '.repeat(size - 10)}`); // the same size: only its parse tells
    const found = await examineLake(lake);
    expect(found.damaged.find((d) => d.file === manifest && d.problem.startsWith('not a manifest: '))).toBeDefined();
    // A run that reads it names it, and the repair.
    const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
    try {
      const run = engine.runJob('customer_landing_to_trusted', params());
      await expect(run).rejects.toThrow(`${manifest} is damaged (`);
      await expect(run).rejects.toThrow('stedi doctor --repair');
    } finally {
      engine.close();
    }
    expect(stedi('doctor', '--lake', dir, '--repair').status).toBe(0);
    expect((await examineLake(lake)).damaged).toEqual([]);
  }, 120_000);

  it('stedi tables says its counts come from the catalog', () => {
    const tables = stedi('tables', '--lake', dir, '--json');
    const listed = JSON.parse(tables.stdout) as { name: string; rowsFrom?: string }[];
    expect(listed.find((t) => t.name === 'customer_trusted')?.rowsFrom).toBe('catalog');
    expect(listed.find((t) => t.name === 'customer_quarantine')?.rowsFrom).toBe('data');
    expect(stedi('tables', '--lake', dir).stdout).toMatch(/rows {12}\d+ \(from the catalog, not counted/);
  });
});
