import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { GlueEngine } from '../../src/glue-engine/engine';
import { DATASETS, landingPrefix, validatedPrefix } from '../../src/definition/layout';
import { Lake } from '../../src/lake/lake';
import { ConsentPolicy, JOB_NAMES } from '../../src/definition/pipeline';
import { glueDir } from '../../src/project';
import { readLandingTables } from '../../src/definition/ddl';
import { describeWithGlue, dumpTables, firstDifference, parquetRows } from '../helpers/glue';
import { TEST_SALT, params, query, removeDir, runPipeline, tempDir } from '../helpers/lake';

// Spark on a shared 2-core machine: a run of the five jobs takes a minute or more.
jest.setTimeout(20 * 60_000);

/**
 * Issue 17, item 4: the five jobs through the real runner on Spark (glue/run_sql_job.py, the Glue engine)
 * and the DuckDB engine on the same landing files give the same tables, row for row, with the same column
 * types, hashed ids included, and the same quarantined lines with the same reasons. One Spark (one worker)
 * serves the whole file: each case resets the engine's bucket to its own lake.
 */
describeWithGlue('the Glue engine (Spark) and the DuckDB engine agree', () => {
  const dirs: string[] = [];
  let engine: GlueEngine;

  /** A lake with these landing files: DATASET/NAME -> text, or a folder laid out as `stedi generate --out` writes. */
  function lakeWith(files: Record<string, string | Buffer> | string): Lake {
    const dir = tempDir('glue-agree');
    dirs.push(dir);
    for (const dataset of DATASETS) mkdirSync(path.join(dir, landingPrefix(dataset)), { recursive: true });
    if (typeof files === 'string')
      for (const dataset of DATASETS)
        cpSync(path.join(files, dataset), path.join(dir, landingPrefix(dataset)), { recursive: true });
    else
      for (const [name, text] of Object.entries(files)) {
        const [dataset, file] = name.split('/') as [string, string];
        writeFileSync(path.join(dir, landingPrefix(dataset as never), file), text);
      }
    return new Lake(dir);
  }

  /** The five jobs on the Glue engine over the lake's landing files, as the state machine runs them. */
  async function runOnGlue(consent: ConsentPolicy, runId = 'glue-run') {
    const results = [];
    for (const job of JOB_NAMES) results.push(await engine.runJob(job, params(consent, runId)));
    return results;
  }

  /** The same landing files in a fresh lake, run on the DuckDB engine. */
  async function duckdbLakeOf(lake: Lake, consent: ConsentPolicy): Promise<Lake> {
    const fresh = lakeWith({});
    for (const dataset of DATASETS)
      cpSync(lake.path(landingPrefix(dataset)), fresh.path(landingPrefix(dataset)), { recursive: true });
    await runPipeline(fresh, consent, 'duckdb-run');
    return fresh;
  }

  async function duckdbDumpOf(lake: Lake, consent: ConsentPolicy) {
    return dumpTables(await duckdbLakeOf(lake, consent));
  }

  async function expectAgreement(lake: Lake, consent: ConsentPolicy) {
    const duckdb = await duckdbDumpOf(lake, consent);
    const glue = await dumpTables(engine.lake);
    expect(firstDifference(duckdb, glue)).toBeUndefined();
    return glue;
  }

  beforeAll(async () => {
    const lake = lakeWith({});
    engine = await GlueEngine.open({ lake, consentPolicy: 'any', piiSalt: TEST_SALT, fresh: true });
  }, 180_000);

  afterAll(async () => {
    await engine?.close({ keepState: false });
    dirs.forEach(removeDir);
  });

  test('the landing cases: the same records, and the same quarantined lines with the same reasons', async () => {
    const fixture = JSON.parse(
      readFileSync(path.join(__dirname, '../fixtures/landing-cases/accelerometer.json'), 'utf8'),
    ) as {
      blank: string[];
      cases: {
        line?: string;
        base64?: string;
        long?: { prefix: string; fill: string; bytes: number; suffix: string };
      }[];
    };
    // The cases of lines over 16 MB included: their quarantine part is a multipart upload through S3A. A
    // "base64" case is a line that is not UTF-8: its bytes.
    const lines = fixture.cases.map((c) =>
      c.line !== undefined
        ? Buffer.from(c.line)
        : c.base64 !== undefined
          ? Buffer.from(c.base64, 'base64')
          : Buffer.from(`${c.long!.prefix}${c.long!.fill.repeat(c.long!.bytes)}${c.long!.suffix}`),
    );
    const newline = Buffer.from('\n');
    // Every case, blank lines between some, and each alone in a file of its own: a file's only bad line too.
    const files: Record<string, Buffer> = {
      'accelerometer/all-cases.json': Buffer.concat(
        [...fixture.blank.map((b) => Buffer.from(b)), ...lines].flatMap((line, i) => (i ? [newline, line] : [line])),
      ),
    };
    lines.forEach(
      (line, i) => (files[`accelerometer/case-${String(i).padStart(2, '0')}.json`] = Buffer.concat([line, newline])),
    );
    const lake = lakeWith(files);
    await engine.reset(lake);
    await runOnGlue('any');

    const glue = await dumpTables(engine.lake);
    const duckdbLake = await duckdbLakeOf(lake, 'any');
    const duckdb = await dumpTables(duckdbLake);
    expect(
      firstDifference({ q: duckdb.accelerometer_quarantine! }, { q: glue.accelerometer_quarantine! }),
    ).toBeUndefined();
    expect(glue.accelerometer_quarantine!.rows.length).toBeGreaterThan(10);
    // The records each engine's validated copy holds.
    const columns = readLandingTables(glueDir()).accelerometer_landing.columns.map((c) => c.name);
    const scratch = tempDir('glue-validated');
    dirs.push(scratch);
    const glueRecords = await parquetRows(
      await engine.downloadPrefix(validatedPrefix('accelerometer'), scratch),
      columns,
    );
    const duckdbRecords = (
      await query(duckdbLake, `select ${columns.map((c) => `"${c}"`).join(', ')} from accelerometer_landing`)
    )
      .map((r) => JSON.stringify(r))
      .sort();
    expect(
      firstDifference(
        { accelerometer_landing: { columns, rows: duckdbRecords } },
        { accelerometer_landing: { columns, rows: glueRecords } },
      ),
    ).toBeUndefined();
    expect(glueRecords.length).toBeGreaterThan(5);
    expect(firstDifference(duckdb, glue)).toBeUndefined();
  });

  const generated = tempDir('glue-generated');
  dirs.push(generated);
  let generatedLake: Lake | undefined;

  test.each(['any', 'since-consent'] as const)(
    'generated data (2,000 customers, 1%% bad lines), consent policy %s: every table equal row for row, with the same types',
    async (consent) => {
      // One bucket for both policies: the second run reuses the validated copy and rebuilds every table.
      if (!generatedLake) {
        await generate(generated, 'drop', { customers: 2000, seed: 17, badLineRate: 0.01, recordsPerFile: 20_000 });
        generatedLake = lakeWith(generated);
        await engine.reset(generatedLake);
      }
      await runOnGlue(consent);
      const glue = await expectAgreement(generatedLake, consent);
      expect(glue.customer_curated!.rows.length).toBeGreaterThan(500);
      expect(glue.machine_learning_curated!.rows.length).toBeGreaterThan(1000);
    },
  );

  test('a second run reusing the validated copy, a one-file drop, a replaced file and a deleted file: each equal to a fresh run', async () => {
    await generate(generated, 'drop', { customers: 400, seed: 5, badLineRate: 0.01, recordsPerFile: 5_000 });
    const lake = lakeWith(generated);
    await engine.reset(lake);
    await runOnGlue('any', 'first');

    // 1. nothing changed: every landing file reused from the validated copy
    const again = await runOnGlue('any', 'again');
    expect(again[0]!.landingFiles.customer).toEqual({ checked: 0, reused: 1, removed: 0 });
    expect(again[1]!.landingFiles.accelerometer?.checked).toBe(0);
    await expectAgreement(lake, 'any');

    const accelerometer = lake.path(landingPrefix('accelerometer'));
    const [first, second] = readdirSync(accelerometer).sort();
    // 2. one file dropped: the first file's readings a day later, under a new name
    const later = readFileSync(path.join(accelerometer, first!), 'utf8').replace(
      /"timestamp":(\d+)/g,
      (_, t: string) => `"timestamp":${Number(t) + 86_400_000}`,
    );
    writeFileSync(path.join(accelerometer, 'accelerometer-dropped.json'), later);
    await engine.uploadLanding();
    const dropped = await runOnGlue('any', 'dropped');
    expect(dropped[1]!.landingFiles.accelerometer).toEqual(expect.objectContaining({ checked: 1, removed: 0 }));
    await expectAgreement(lake, 'any');

    // 3. a file replaced: the second file cut to its first half
    const text = readFileSync(path.join(accelerometer, second!), 'utf8').split('\n');
    writeFileSync(path.join(accelerometer, second!), text.slice(0, text.length / 2).join('\n'));
    await engine.uploadLanding();
    const replaced = await runOnGlue('any', 'replaced');
    expect(replaced[1]!.landingFiles.accelerometer).toEqual(expect.objectContaining({ checked: 1, removed: 0 }));
    await expectAgreement(lake, 'any');

    // 4. a file deleted
    rmSync(path.join(accelerometer, first!));
    await engine.uploadLanding();
    const deleted = await runOnGlue('any', 'deleted');
    expect(deleted[1]!.landingFiles.accelerometer).toEqual(expect.objectContaining({ checked: 0, removed: 1 }));
    await expectAgreement(lake, 'any');
  });
});
