import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATASETS, DERIVED_TABLES, Dataset, LANDING_TABLES, TABLE_PREFIX, TableName } from '../../src/layout';
import { LocalEngine } from '../../src/local/engine';
import { Catalog, Lake } from '../../src/local/lake';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { TEST_SALT, params, query, removeDir, runPipeline, tempDir } from '../helpers/lake';

/*
 * A crash at any instant of a run leaves every table readable, old or new version, matching the catalog.
 *
 * A real `stedi run` is killed (SIGKILL, by strace's fault injection) at each rename, unlink, rmdir and
 * link it performs, one point per case. The run replaces a lake built from landing data v1 after a drop
 * of more customers, the deletion of one accelerometer file and the replacement of another (v2), so
 * every table's old and new versions differ and the validated copy gains, replaces and drops entries.
 * After each kill: every table reads with the rows its catalog entry counts, old or new; the quarantine
 * matches its count; the bucket-shaped folders (customer/trusted/..., <dataset>/validated/) hold the
 * same rows; a partial rerun (from step_trainer) gives the counts of those jobs rebuilt from scratch;
 * and a full rerun gives the new version of every table.
 *
 * strace without -f follows the main thread only, where the lake does all its file changes
 * (synchronously, so their order is fixed); DuckDB's own writes happen on its threads inside a version
 * folder no commit refers to yet.
 */

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const ENV = { ...process.env, STEDI_PII_SALT: TEST_SALT };
const SYSCALLS = 'rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat';
const haveStrace = spawnSync('strace', ['-V']).status === 0;
if (!haveStrace) console.warn('skipping the crash-point tests: strace is not installed');

function stedi(args: string[]): void {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  if (result.status !== 0) throw new Error(`stedi ${args.join(' ')} failed: ${result.stderr}`);
}

function copyLake(from: string, to: string): void {
  const result = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`cp -a ${from} ${to}: ${result.stderr}`);
}

type Counts = Record<TableName, number> & { rejected: Record<Dataset, number> };

function catalogCounts(catalog: Catalog): Counts {
  const counts = Object.fromEntries(
    [...LANDING_TABLES, ...DERIVED_TABLES].map((t) => [t, catalog.tables[t]?.rows ?? -1]),
  ) as unknown as Counts;
  counts.rejected = Object.fromEntries(
    DATASETS.map((d) => [d, catalog.tables[`${d}_landing`]?.rejected ?? -1]),
  ) as Record<Dataset, number>;
  return counts;
}

function expectOldOrNew(label: string, value: number, before: number, after: number): void {
  if (value !== before && value !== after)
    throw new Error(`${label}: the catalog counts ${value} rows, neither the old ${before} nor the new ${after}`);
}

/** The main thread's file-changing system calls of a run, in order, as strace names them. */
function tracedCalls(lake: string): string[] {
  const log = path.join(path.dirname(lake), 'trace.log');
  const result = spawnSync(
    'strace',
    ['-o', log, '-e', `trace=${SYSCALLS}`, process.execPath, BIN, 'run', '--lake', lake],
    { env: ENV, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`traced run failed: ${result.stderr}`);
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((line) => /^(\w+)\(/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

// Built once, synchronously, so that each kill point is a test of its own.
const work = haveStrace ? tempDir('crash') : '';
const template = path.join(work, 'template');
let old: Counts;
let fresh: Counts;
const points: [string, number][] = [];
/** Cuts a landing file into `parts` files of consecutive lines: `<name>-part-<i>.json`. */
function splitFile(file: string, parts: number): void {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const size = Math.ceil(lines.length / parts);
  for (let i = 0; i < parts; i++)
    writeFileSync(
      file.replace(/\.json$/, `-part-${i + 1}.json`),
      lines.slice(i * size, (i + 1) * size).join('\n') + '\n',
    );
  unlinkSync(file);
}

/**
 * v2 of the landing zone: the extra files added, the second accelerometer part deleted and the third
 * replaced by its first half, so a run adds, replaces and removes validated entries.
 */
function applyV2(lake: string, extra: string): void {
  const accelerometer = path.join(lake, 'accelerometer', 'landing');
  const parts = readdirSync(accelerometer)
    .filter((n) => n.includes('-part-'))
    .sort();
  unlinkSync(path.join(accelerometer, required(parts[1], 'a second accelerometer part')));
  const third = path.join(accelerometer, required(parts[2], 'a third accelerometer part'));
  const lines = readFileSync(third, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  writeFileSync(third, lines.slice(0, Math.ceil(lines.length / 2)).join('\n') + '\n');
  for (const dataset of DATASETS) {
    for (const name of readdirSync(path.join(extra, dataset)))
      writeFileSync(path.join(lake, dataset, 'landing', name), readFileSync(path.join(extra, dataset, name)));
  }
}

if (haveStrace) {
  const extra = path.join(work, 'extra');
  stedi(['generate', '--customers', '8', '--seed', '11', '--bad-lines', '0.01', '--lake', template]);
  const accelerometerFile = required(
    readdirSync(path.join(template, 'accelerometer', 'landing'))[0],
    'the generated accelerometer file',
  );
  splitFile(path.join(template, 'accelerometer', 'landing', accelerometerFile), 3);
  stedi(['generate', '--customers', '5', '--seed', '12', '--bad-lines', '0.01', '--out', extra]);
  // v2 adds customers of their own (other e-mail domain), under file names of their own.
  for (const dataset of DATASETS) {
    for (const name of readdirSync(path.join(extra, dataset))) {
      const text = readFileSync(path.join(extra, dataset, name), 'utf8').replace(/@test\.com/g, '@extra.test.com');
      writeFileSync(path.join(extra, dataset, `extra-${name}`), text);
      spawnSync('rm', [path.join(extra, dataset, name)]);
    }
  }
  stedi(['run', '--lake', template]);
  old = catalogCounts(new Lake(template).snapshotSync().catalog);
  const newLake = path.join(work, 'new');
  copyLake(template, newLake);
  applyV2(newLake, extra);
  stedi(['run', '--lake', newLake]);
  fresh = catalogCounts(new Lake(newLake).snapshotSync().catalog);
  applyV2(template, extra);
  const dry = path.join(work, 'dry', 'lake');
  mkdirSync(path.dirname(dry));
  copyLake(template, dry);
  const calls = tracedCalls(dry);
  const seen = new Map<string, number>();
  for (const name of calls) {
    seen.set(name, (seen.get(name) ?? 0) + 1);
    points.push([name, seen.get(name)!]);
  }
}

const describeIfStrace = haveStrace ? describe : describe.skip;

describeIfStrace('a run killed at each of its file-system changes', () => {
  let db: DuckDBInstance;
  let plain: DuckDBConnection;
  beforeAll(async () => {
    db = await DuckDBInstance.create(':memory:');
    plain = await db.connect();
  });
  afterAll(() => {
    plain.closeSync();
    db.closeSync();
    removeDir(work);
  });

  it('has old and new versions that differ in every table, and kill points to test', () => {
    for (const table of [...LANDING_TABLES, ...DERIVED_TABLES]) expect(fresh[table]).not.toBe(old[table]);
    expect(points.filter(([name]) => name.startsWith('rename')).length).toBeGreaterThanOrEqual(5);
    expect(points.length).toBeGreaterThan(20);
  });

  it.each(points)(
    'leaves every table readable, old or new, after a kill at %s #%i',
    async (syscall, nth) => {
      const dir = path.join(work, `${syscall}-${nth}`);
      mkdirSync(dir);
      const lakeDir = path.join(dir, 'lake');
      const scratch = path.join(dir, 'tmp');
      mkdirSync(scratch);
      copyLake(template, lakeDir);
      try {
        const killed = spawnSync(
          'strace',
          [
            '-o',
            '/dev/null',
            '-e',
            `inject=${syscall}:signal=SIGKILL:when=${nth}`,
            process.execPath,
            BIN,
            'run',
            '--lake',
            lakeDir,
          ],
          // A killed run cannot remove its scratch folders: keep them in this case's folder.
          { env: { ...ENV, TMPDIR: scratch }, encoding: 'utf8' },
        );
        expect(killed.signal).toBe('SIGKILL');

        // Each table reads as its catalog entry says, and that is its old or its new version.
        const lake = new Lake(lakeDir);
        const counts = catalogCounts(await lake.readCatalog());
        const views = [...LANDING_TABLES, ...DERIVED_TABLES, ...DATASETS.map((d) => `${d}_quarantine`)];
        const [counted] = await query(
          lake,
          `select ${views.map((v) => `(select count(*) from ${v}) as ${v}`).join(', ')}`,
        );
        const read = required(counted, 'the row of counts');
        for (const table of DERIVED_TABLES) {
          expectOldOrNew(table, counts[table], old[table], fresh[table]);
          expect([table, read[table]]).toEqual([table, counts[table]]);
        }
        for (const table of LANDING_TABLES) {
          expectOldOrNew(table, counts[table], old[table], fresh[table]);
          // Landing tables read the landing files, which hold v2 from the start.
          expect([table, read[table]]).toEqual([table, fresh[table]]);
        }
        for (const dataset of DATASETS) {
          const rejected = counts.rejected[dataset];
          expectOldOrNew(`${dataset} quarantine`, rejected, old.rejected[dataset], fresh.rejected[dataset]);
          expect([dataset, read[`${dataset}_quarantine`]]).toEqual([dataset, rejected]);
        }
        // The bucket-shaped folders show the same versions: the validated copy's Parquet holds the
        // records its landing table's catalog entry counts (never a record of a file gone or changed).
        for (const dataset of DATASETS) {
          const glob = path.join(lakeDir, dataset, 'validated', '*.parquet');
          const rows = (await plain.runAndReadAll(`select count(*)::int from read_parquet('${glob}')`)).getRows();
          expect([dataset, rows[0]?.[0]]).toEqual([dataset, counts[`${dataset}_landing` as TableName]]);
        }
        for (const table of DERIVED_TABLES) {
          const glob = path.join(lakeDir, TABLE_PREFIX[table], '**', '*.parquet');
          const rows =
            counts[table] === 0
              ? [[0]]
              : (await plain.runAndReadAll(`select count(*)::int from read_parquet('${glob}')`)).getRows();
          expect([table, rows[0]?.[0]]).toEqual([table, counts[table]]);
        }

        // A partial rerun (from step_trainer) builds on whatever is committed, skipping what it may: the
        // same as those two jobs rebuilt from scratch over the same inputs.
        const partial = async (rebuild: boolean) => {
          const engine = await LocalEngine.open(lake, { memoryLimit: '256MB', threads: 1, rebuild });
          try {
            const steps = await engine.runJob('step_trainer_landing_to_trusted', params('any', 'rerun'));
            const pairs = await engine.runJob('machine_learning_curated', params('any', 'rerun'));
            return [steps.rowsOut, pairs.rowsOut];
          } finally {
            engine.close();
          }
        };
        expect(await partial(false)).toEqual(await partial(true));
        // A full rerun then gives the new version of every table.
        await runPipeline(lake, 'any', 'rerun');
        expect(catalogCounts(await lake.readCatalog())).toEqual(fresh);
        expect(await query(lake, 'select count(*) as n from machine_learning_curated')).toEqual([
          { n: fresh.machine_learning_curated },
        ]);
        // The rerun's commit cleared what the crash left: only current and previous versions remain.
        const catalog = await lake.readCatalog();
        for (const [key, version] of Object.entries(catalog.versions ?? {})) {
          const kept = readdirSync(path.join(lakeDir, '_versions', key)).sort();
          expect([key, kept]).toEqual([key, [version.id, version.previous].filter(Boolean).sort()]);
        }
        expect(readdirSync(path.join(lakeDir, '_snapshots'))).toEqual([`g${catalog.generation}`]);
      } finally {
        removeDir(dir);
      }
    },
    60_000,
  );
});
