import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { DERIVED_TABLES_FILE, readDerivedTables } from '../../src/definition/derived-tables';
import { generate } from '../../src/sample/generate';
import { Lake } from '../../src/lake/lake';
import { loadJobs } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import { removeDir, runPipeline, tempDir } from '../helpers/lake';

// The stack defines the five derived tables in the Glue Data Catalog with the columns of
// glue/tables/derived_tables.json, before any job runs (a job reading a table that has no rows yet gets
// these columns). They must be the columns each job's SQL writes: here, what the local engine writes.

describe('the derived tables the stack defines', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('derived-tables');
  });
  afterAll(() => removeDir(dir));

  it('have the columns, types and partition keys each job writes (its SQL run by the local engine)', async () => {
    const lake = new Lake(path.join(dir, 'lake'));
    await generate(lake.root, 'lake', { customers: 12, seed: 5, badLineRate: 0 });
    await runPipeline(lake);
    const catalog = await lake.readCatalog();
    const declared = readDerivedTables();
    expect(declared.map((t) => t.name)).toEqual([...DERIVED_TABLES]);
    for (const table of declared) {
      const written = required(catalog.tables[table.name], `${table.name} in the catalog`);
      expect({ table: table.name, columns: [...table.columns, ...table.partitionKeys] }).toEqual({
        table: table.name,
        columns: written.columns.map((c) => ({ name: c.name, type: c.type })),
      });
      expect(table.partitionKeys.map((k) => k.name)).toEqual(written.partitionKeys);
      expect(table.partitionKeys.map((k) => k.name)).toEqual(
        required(
          loadJobs().find((j) => j.target === table.name),
          `the job that writes ${table.name}`,
        ).partitionKeys,
      );
    }
  }, 60_000);

  it('refuses a declaration that lacks a table or puts a partition key elsewhere than last, naming the file', () => {
    const glue = path.join(dir, 'glue');
    mkdirSync(path.join(glue, 'tables'), { recursive: true });
    const file = path.join(glue, DERIVED_TABLES_FILE);
    const full = Object.fromEntries(
      readDerivedTables().map((t) => [t.name, [...t.columns, ...t.partitionKeys]] as const),
    );
    const { machine_learning_curated: _dropped, ...fewer } = full;
    writeFileSync(file, JSON.stringify(fewer));
    expect(() => readDerivedTables(glue)).toThrow(new RegExp(`${file}.*must declare`));
    const [first, ...rest] = required(full.accelerometer_trusted, 'the declared accelerometer_trusted');
    writeFileSync(file, JSON.stringify({ ...full, accelerometer_trusted: [...rest.reverse(), first] }));
    expect(() => readDerivedTables(glue)).toThrow(
      /partition keys of accelerometer_trusted \(reading_date\) must be its last/,
    );
  });
});
