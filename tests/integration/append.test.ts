import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { TableName, datasetOfLandingTable, isLandingTable, landingPrefix } from '../../src/definition/layout';
import { JobResult, LocalEngine } from '../../src/build/engine';
import { Lake, TableUnreadableError, parquetScanSql } from '../../src/lake/lake';
import { installSparkDialect } from '../../src/build/spark-dialect';
import { committedCopy, segmentsScanSql } from '../../src/build/validated';
import { JobDefinition, loadJobs } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import { readLandingTables } from '../../src/definition/ddl';
import { glueDir } from '../../src/project';
import { sqlIdentifier } from '../../src/sql/quote';
import { TEST_SALT, dumpLake, freshDump, params, removeDir, runPipeline, tempDir } from '../helpers/lake';
import { testClock } from '../helpers/clock';

/*
 * A drop of new files only adds rows: a job whose output depends row by row on the input that gained them
 * (its `-- Row-wise in:` header) runs over those rows alone and adds what it makes to its table, the rest
 * of the table hard-linked from the version before. The tables must still equal a fresh lake's, row for
 * row; incremental-property.test.ts checks that on random sequences, crashes included.
 */

jest.setTimeout(120_000);

let clock = testClock();
/** Past the file system's clock tick after a write, so a run records the files as not racy (landing-identity.ts). */
const settle = () => clock.passTick();
const resultOf = (results: JobResult[], job: string) =>
  required(
    results.find((r) => r.job === job),
    job,
  );

describe('a drop of new landing files', () => {
  let dir: string;
  let lake: Lake;
  const accelerometerLanding = () => lake.path(landingPrefix('accelerometer'));

  beforeEach(async () => {
    dir = tempDir('append');
    clock = testClock();
    lake = new Lake(dir, { clock: () => clock.now() });
    await generate(dir, 'lake', { customers: 12, seed: 21, badLineRate: 0.03, recordsPerFile: 150 });
    await runPipeline(lake, 'any', 'first');
    settle();
  });
  afterEach(() => removeDir(dir));

  /** A new accelerometer file: the first lines of every landing file again (the step trainer pairs them too). */
  function dropAccelerometerFile(name: string): number {
    const lines = readdirSync(accelerometerLanding())
      .sort()
      .flatMap((file) => readFileSync(path.join(accelerometerLanding(), file), 'utf8').split('\n').slice(0, 20))
      .filter((line) => line.trim() !== '');
    writeFileSync(path.join(accelerometerLanding(), name), `${lines.join('\n')}\n`);
    return lines.length;
  }

  it('runs the jobs row-wise in accelerometer data over the new rows alone, and gives a fresh lake’s tables', async () => {
    dropAccelerometerFile('dropped-later.json');
    settle();
    const before = await lake.readCatalog();
    const results = await runPipeline(lake, 'any', 'after-drop');

    const accelerometer = resultOf(results, 'accelerometer_landing_to_trusted');
    const ml = resultOf(results, 'machine_learning_curated');
    expect(accelerometer.landingFiles.accelerometer).toMatchObject({ checked: 1, removed: 0 });
    // Appended: the rows it added are the new ones, and its table grew by exactly that many.
    expect(accelerometer.appended).toBeGreaterThan(0);
    expect(accelerometer.rowsOut).toBe(
      required(before.tables.accelerometer_trusted, 'table').rows + accelerometer.appended!,
    );
    expect(ml.appended).toBeGreaterThan(0);
    expect(ml.rowsOut).toBe(required(before.tables.machine_learning_curated, 'table').rows + ml.appended!);
    // Rows in, per input: the input that gained rows counts its new rows only, the others as they are.
    const after = await lake.readCatalog();
    const rows = (catalog: typeof before, table: TableName) => required(catalog.tables[table], table).rows;
    expect([accelerometer.appendedInput, accelerometer.rowsIn]).toEqual([
      'accelerometer_landing',
      {
        accelerometer_landing: rows(after, 'accelerometer_landing') - rows(before, 'accelerometer_landing'),
        customer_trusted: rows(before, 'customer_trusted'),
      },
    ]);
    expect(ml.appendedInput).toBe('accelerometer_trusted');
    expect(ml.rowsIn.accelerometer_trusted).toBe(accelerometer.appended);
    // Jobs that do not read accelerometer data are skipped; customer_trusted_to_curated reads it (a
    // semi join: not row-wise) and is rebuilt whole, to the same rows, so its readers are not.
    expect(results.filter((r) => r.skipped).map((r) => r.job)).toEqual([
      'customer_landing_to_trusted',
      'step_trainer_landing_to_trusted',
    ]);
    expect(resultOf(results, 'customer_trusted_to_curated').appended).toBeUndefined();

    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  it('keeps the files of the version before as hard links, not copies', async () => {
    const previous = lake.snapshotSync().dirOf('accelerometer/trusted/');
    const oldFiles = filesUnder(required(previous, 'accelerometer_trusted folder'));
    dropAccelerometerFile('dropped-later.json');
    settle();
    await runPipeline(lake, 'any', 'after-drop');
    const current = required(lake.snapshotSync().dirOf('accelerometer/trusted/'), 'accelerometer_trusted folder');
    expect(current).not.toBe(previous);
    const inodes = new Set(filesUnder(current).map((f) => statSync(f).ino));
    for (const file of oldFiles) expect(inodes).toContain(statSync(file).ino);
  });

  it('appends after a run that came within a clock tick of the last write (its entries racy, then confirmed)', async () => {
    // The run reads the clock as the time the file was written: it records its entry as racy.
    dropAccelerometerFile('dropped-at-once.json');
    const { mtimeMs } = statSync(path.join(accelerometerLanding(), 'dropped-at-once.json'));
    clock.at(Math.floor(mtimeMs));
    try {
      await runPipeline(lake, 'any', 'at-once');
    } finally {
      clock.release();
    }
    const racy = required(committedCopy(lake.snapshotSync(), 'accelerometer'), 'validated copy').manifest.files;
    expect(racy['dropped-at-once.json']?.racy).toBe(true);
    const previous = required(lake.snapshotSync().dirOf('accelerometer/trusted/'), 'accelerometer_trusted folder');
    const oldFiles = filesUnder(previous);

    dropAccelerometerFile('dropped-later.json');
    settle();
    const results = await runPipeline(lake, 'any', 'after-drop');
    expect(resultOf(results, 'accelerometer_landing_to_trusted').appended).toBeGreaterThan(0);
    const current = required(lake.snapshotSync().dirOf('accelerometer/trusted/'), 'accelerometer_trusted folder');
    const inodes = new Set(filesUnder(current).map((f) => statSync(f).ino));
    for (const file of oldFiles) expect(inodes).toContain(statSync(file).ino);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  /** Runs accelerometer_landing_to_trusted with its other input away: it refreshes the validated copy, then fails. */
  async function refreshOnly(runId: string): Promise<void> {
    const customers = required(lake.snapshotSync().dirOf('customer/trusted/'), 'customer_trusted folder');
    renameSync(customers, `${customers}.away`);
    const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
    try {
      await expect(engine.runJob('accelerometer_landing_to_trusted', params('any', runId))).rejects.toBeInstanceOf(
        TableUnreadableError,
      );
    } finally {
      engine.close();
      renameSync(`${customers}.away`, customers);
    }
  }

  it('appends the rows of two drops the table has not taken in, each committed to the validated copy on its own', async () => {
    const before = await lake.readCatalog();
    const recorded = required(before.tables.accelerometer_trusted?.builtFrom?.accelerometer_landing, 'recorded');
    // Two drops, each taken into the validated copy by a job that then failed: two versions of the copy
    // since the table was built, the second also confirming the first's racy entry by its SHA-256.
    const first = dropAccelerometerFile('first-drop.json');
    const { mtimeMs } = statSync(path.join(accelerometerLanding(), 'first-drop.json'));
    clock.at(Math.floor(mtimeMs));
    try {
      await refreshOnly('first');
    } finally {
      clock.release();
    }
    expect(committedCopy(lake.snapshotSync(), 'accelerometer')?.manifest.files['first-drop.json']?.racy).toBe(true);
    settle();
    const second = dropAccelerometerFile('second-drop.json');
    settle();
    await refreshOnly('second');
    const segments = Object.keys(
      required(committedCopy(lake.snapshotSync(), 'accelerometer'), 'copy').manifest.segments,
    );
    expect(segments).toEqual(expect.arrayContaining(recorded));
    expect(segments.length).toBe(recorded.length + 2);

    const results = await runPipeline(lake, 'any', 'after-two-drops');
    const accelerometer = resultOf(results, 'accelerometer_landing_to_trusted');
    expect(accelerometer.appendedInput).toBe('accelerometer_landing');
    // The new rows only: both drops' valid lines.
    const landingRows = (catalog: typeof before) => required(catalog.tables.accelerometer_landing, 'landing').rows;
    expect(accelerometer.rowsIn.accelerometer_landing).toBe(
      landingRows(await lake.readCatalog()) - landingRows(before),
    );
    expect(accelerometer.rowsIn.accelerometer_landing).toBeGreaterThan(Math.max(first, second));
    expect(accelerometer.rowsOut).toBe(
      required(before.tables.accelerometer_trusted, 'table').rows + accelerometer.appended!,
    );
    expect(resultOf(results, 'machine_learning_curated').appended).toBeGreaterThan(0);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  it('builds whole when a file the table was built from is replaced, its segment no longer in the copy', async () => {
    dropAccelerometerFile('dropped-later.json');
    settle();
    await runPipeline(lake, 'any', 'append');
    const recorded = required(
      (await lake.readCatalog()).tables.accelerometer_trusted?.builtFrom?.accelerometer_landing,
      'recorded segments',
    );
    const file = path.join(accelerometerLanding(), 'dropped-later.json');
    writeFileSync(`${file}.uploading`, readFileSync(file, 'utf8').split('\n').slice(0, 5).join('\n'));
    renameSync(`${file}.uploading`, file); // replaced, as stedi drop replaces a file
    settle();
    const results = await runPipeline(lake, 'any', 'replaced');
    const segments = Object.keys(
      required(committedCopy(lake.snapshotSync(), 'accelerometer'), 'copy').manifest.segments,
    );
    expect(recorded.every((segment) => segments.includes(segment))).toBe(false);
    const accelerometer = resultOf(results, 'accelerometer_landing_to_trusted');
    expect([accelerometer.skipped, accelerometer.appended]).toEqual([undefined, undefined]);
    expect(results.every((r) => r.appended === undefined)).toBe(true);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  it('builds whole when a file is replaced or the policy changes, and agrees every time', async () => {
    dropAccelerometerFile('dropped-later.json');
    settle();
    await runPipeline(lake, 'any', 'append');
    // Replaced: the new version does not only add rows.
    const file = path.join(accelerometerLanding(), 'dropped-later.json');
    writeFileSync(file, readFileSync(file, 'utf8').split('\n').slice(0, 5).join('\n'));
    settle();
    const replaced = await runPipeline(lake, 'any', 'replaced');
    expect(replaced.every((r) => r.appended === undefined)).toBe(true);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
    // A new file under another policy: the job's own parameters changed, so no append.
    dropAccelerometerFile('another.json');
    settle();
    const otherPolicy = await runPipeline(lake, 'since-consent', 'policy');
    expect(otherPolicy.every((r) => r.appended === undefined)).toBe(true);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'since-consent'));
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

/*
 * The `-- Row-wise in:` declarations are what makes an append correct, so each is checked on data: for a
 * job and an input it declares, its SQL over the input's rows split in two halves gives, together, the
 * rows it gives over all of them (as multisets). A query that is not row-wise fails the same check.
 */
describe('the row-wise declarations of the job files', () => {
  let dir: string;
  let lake: Lake;
  let db: DuckDBInstance;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    dir = tempDir('row-wise');
    clock = testClock();
    lake = new Lake(dir, { clock: () => clock.now() });
    await generate(dir, 'lake', { customers: 30, seed: 5, recordsPerFile: 400 });
    await runPipeline(lake, 'since-consent', 'built');
    db = await DuckDBInstance.create(':memory:');
    connection = await db.connect();
    await installSparkDialect(connection);
    await connection.run(
      `create temp table job_parameters as select '${TEST_SALT}' as pii_salt, 'since-consent' as consent_policy, 'r' as run_id`,
    );
  });
  afterAll(() => {
    connection.closeSync();
    db.closeSync();
    removeDir(dir);
  });

  /** Binds every input of the job as a temp table of its rows in the built lake. */
  async function bindInputs(job: Pick<JobDefinition, 'reads'>): Promise<void> {
    const snapshot = lake.snapshotSync();
    const ddl = readLandingTables(glueDir());
    for (const table of job.reads) {
      let select: string;
      if (isLandingTable(table)) {
        const copy = required(committedCopy(snapshot, datasetOfLandingTable(table)), `${table} validated copy`);
        select = segmentsScanSql(ddl[table], copy.dir, Object.keys(copy.manifest.segments));
      } else select = parquetScanSql(snapshot, required(snapshot.catalog.tables[table], table));
      await connection.run(`create or replace temp table ${sqlIdentifier(table)} as ${select}`);
    }
  }

  /** Whether the SQL over the input's two halves gives, together, its rows over the whole input. */
  async function splitsCleanly(
    sql: string,
    input: TableName,
  ): Promise<{ whole: number; halves: number; same: boolean }> {
    const name = sqlIdentifier(input);
    await connection.run(`create or replace temp table whole_input as select * from ${name}`);
    await connection.run(`create or replace temp table out_whole as ${sql}`);
    // Two halves of the input's rows, a multiset split (EXCEPT ALL keeps repeated rows apart).
    await connection.run(`select setseed(0.42)`);
    await connection.run(`create or replace temp table half_0 as select * from whole_input where random() < 0.5`);
    await connection.run(
      `create or replace temp table half_1 as select * from whole_input except all select * from half_0`,
    );
    const halves = [];
    for (const half of [0, 1]) {
      await connection.run(`create or replace temp table ${name} as select * from half_${half}`);
      await connection.run(`create or replace temp table out_${half} as ${sql}`);
      halves.push(`select * from out_${half}`);
    }
    const reader = await connection.runAndReadAll(
      `with parts as (${halves.join(' union all ')})
       select (select count(*) from out_whole)::integer,
              (select count(*) from parts)::integer,
              not exists (select * from out_whole except all select * from parts)
                and not exists (select * from parts except all select * from out_whole)`,
    );
    const [whole, parts, same] = required(reader.getRows()[0], 'the comparison row') as [number, number, boolean];
    return { whole, halves: parts, same };
  }

  const declared = loadJobs().flatMap((job) => job.rowWise.map((input) => [job.name, input] as const));

  it('declares some: the jobs that carry readings through', () => {
    expect(declared).toEqual([
      ['accelerometer_landing_to_trusted', 'accelerometer_landing'],
      ['step_trainer_landing_to_trusted', 'step_trainer_landing'],
      ['machine_learning_curated', 'step_trainer_trusted'],
      ['machine_learning_curated', 'accelerometer_trusted'],
    ]);
  });

  it.each(declared)('%s is row-wise in %s', async (name, input) => {
    const job = required(
      loadJobs().find((j) => j.name === name),
      name,
    );
    await bindInputs(job);
    const result = await splitsCleanly(job.sql, input);
    expect(result.whole).toBeGreaterThan(0);
    expect(result).toEqual({ whole: result.whole, halves: result.whole, same: true });
  });

  it('catches a query that is not row-wise (a count, a DISTINCT)', async () => {
    await bindInputs({ reads: ['accelerometer_trusted'] });
    expect((await splitsCleanly('select count(*) as n from accelerometer_trusted', 'accelerometer_trusted')).same).toBe(
      false,
    );
    expect(
      (await splitsCleanly('select distinct "user" from accelerometer_trusted', 'accelerometer_trusted')).same,
    ).toBe(false);
  });
});
