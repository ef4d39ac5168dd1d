import type { TableName } from '../definition/layout';
import type { ConsentPolicy } from '../definition/pipeline';
import type { KeyVersion } from './versions';
import type { RunLog } from './run-log';

export interface CatalogColumn {
  name: string;
  /** A catalog (Hive) type, or DuckDB's name of a type the catalog has no name for (lowercased). */
  type: string;
}

/** Per input table, the segments it was made of when a table was built from it (sorted names; segments.ts). */
export type BuiltFrom = Record<string, string[]>;

/** One table of the local catalog: what `stedi query` (the local Athena) reads. */
export interface CatalogTable {
  name: TableName;
  /** Key prefix inside the lake, e.g. customer/trusted/. */
  location: string;
  format: 'json' | 'parquet';
  columns: CatalogColumn[];
  partitionKeys: string[];
  rows: number;
  /** Landing tables: lines rejected to <dataset>/quarantine/ by the last run. */
  rejected?: number;
  /** Landing tables: landing files in the validated copy (<dataset>/validated/). */
  files?: number;
  /**
   * What the table holds, independent of row order: equal ids, equal rows (a landing table's from its
   * validated copy, a job's table from a fingerprint of its rows). Job build keys are made of them.
   */
  content?: string;
  /** A job's table: the build key it was made with (engine.ts); the job is skipped while it is unchanged. */
  buildKey?: string;
  /** A job's table: the part of its build key that is the job's own (engine, SQL, parameters). */
  base?: string;
  /** A job's table: the content of each input it was built from. */
  inputs?: Record<string, string>;
  /**
   * A job's table: the immutable segments each input was made of when it was built (segments.ts). A job
   * row-wise in an input whose segments now include these runs over the added segments alone.
   */
  builtFrom?: BuiltFrom;
  /**
   * The job parameters this version was built with, where its SQL uses them: the consent policy,
   * and for the salt only a fingerprint (saltFingerprint), which does not reveal it.
   */
  parameters?: Partial<Record<'pii_salt' | 'consent_policy', string>>;
  /** The diagnostics of the job that wrote the table (its `-- Diagnostics:` header), by name. */
  diagnostics?: Record<string, number>;
  updatedAt: string;
  runId: string;
  /**
   * Derived tables: what the data checks' table_builds reads of this build (on AWS the jobs write it to
   * checks/table_builds/): the rows of the version it replaced (null when none) and the run's consent policy.
   */
  build?: { rowsBefore: number | null; consentPolicy: string; emptyInputs?: string[] };
}

export interface Catalog extends RunLog {
  tables: Partial<Record<TableName, CatalogTable>>;
  /**
   * The lake's consent policy, recorded by the first run that builds its tables (as a table records its
   * salt's fingerprint): every later run uses it unless told to change it (stedi run --change-consent).
   */
  consentPolicy?: ConsentPolicy;
  /** How many commits the lake has seen (versions.ts). */
  generation?: number;
  /** The committed version folder of each key: table folders and quarantine folders (versions.ts). */
  versions?: Record<string, KeyVersion>;
}
