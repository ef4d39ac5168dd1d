import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DERIVED_TABLES, DerivedTableName, TABLE_PREFIX } from './layout';
import { loadJobs } from './pipeline';
import { glueDir } from '../project';
import { required } from '../required';

/**
 * The columns each job writes, as glue/tables/derived_tables.json declares them (Hive types, in the order
 * of the job's select list, its partition keys last). The stack defines each derived table with them in the
 * Glue Data Catalog before any job runs, so a job reads an upstream table that holds no rows yet with its
 * columns, and the Catalog keeps them for tables the Glue sink does not update (it updates no schema of an
 * unpartitioned table). A test checks them against what the local engine writes for the same SQL.
 */
export interface DerivedTableDefinition {
  name: DerivedTableName;
  /** Key prefix in the bucket, e.g. customer/trusted/. */
  location: string;
  /** The data columns, partition keys excluded. */
  columns: { name: string; type: string }[];
  partitionKeys: { name: string; type: string }[];
}

export const DERIVED_TABLES_FILE = 'tables/derived_tables.json';

/** The Hive types the jobs' columns may have (those of the landing DDL, and int for birthYear). */
const HIVE_TYPES = new Set(['string', 'bigint', 'int', 'double', 'boolean', 'date', 'timestamp']);

export function readDerivedTables(dir = glueDir()): DerivedTableDefinition[] {
  const file = path.join(dir, DERIVED_TABLES_FILE);
  const declared = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { name: string; type: string }[]>;
  const names = Object.keys(declared);
  if (names.join() !== DERIVED_TABLES.join())
    throw new Error(`${file} must declare ${DERIVED_TABLES.join(', ')} in that order, got ${names.join(', ')}`);
  return DERIVED_TABLES.map((name) => {
    const columns = required(declared[name], `the columns of ${name} in ${file}`);
    for (const c of columns)
      if (!/^[A-Za-z_]\w*$/.test(c.name) || !HIVE_TYPES.has(c.type))
        throw new Error(`${file}: ${name}.${c.name} ${c.type} is not a column name and Hive type`);
    const keys = required(
      loadJobs().find((j) => j.target === name),
      `the job that writes ${name}`,
    ).partitionKeys;
    const tail = columns.slice(columns.length - keys.length).map((c) => c.name);
    if (keys.length > 0 && tail.join() !== keys.join())
      throw new Error(`${file}: the partition keys of ${name} (${keys.join(', ')}) must be its last columns`);
    return {
      name,
      location: TABLE_PREFIX[name],
      columns: columns.slice(0, columns.length - keys.length),
      partitionKeys: columns.slice(columns.length - keys.length),
    };
  });
}
