/**
 * One key layout for the S3 bucket and for a local lake folder. Every path the pipeline reads
 * or writes is derived here, so the bucket and the local lake can never disagree.
 */

export const DATASETS = ['customer', 'accelerometer', 'step_trainer'] as const;
export type Dataset = (typeof DATASETS)[number];

export const LANDING_TABLES = ['customer_landing', 'accelerometer_landing', 'step_trainer_landing'] as const;
export type LandingTableName = (typeof LANDING_TABLES)[number];

export const DERIVED_TABLES = [
  'customer_trusted',
  'accelerometer_trusted',
  'customer_curated',
  'step_trainer_trusted',
  'machine_learning_curated',
] as const;
export type DerivedTableName = (typeof DERIVED_TABLES)[number];

export type TableName = LandingTableName | DerivedTableName;
export const ALL_TABLES: readonly TableName[] = [...LANDING_TABLES, ...DERIVED_TABLES];

/** Key prefix (relative to the bucket or lake root, with a trailing slash) of each table. */
export const TABLE_PREFIX: Record<TableName, string> = {
  customer_landing: 'customer/landing/',
  accelerometer_landing: 'accelerometer/landing/',
  step_trainer_landing: 'step_trainer/landing/',
  customer_trusted: 'customer/trusted/',
  accelerometer_trusted: 'accelerometer/trusted/',
  step_trainer_trusted: 'step_trainer/trusted/',
  customer_curated: 'customer/curated/',
  machine_learning_curated: 'machine_learning/curated/',
};

export const landingPrefix = (dataset: Dataset): string => `${dataset}/landing/`;
export const quarantinePrefix = (dataset: Dataset): string => `${dataset}/quarantine/`;
/** Each landing file's valid records as typed Parquet, checked once (src/build/validated.ts, glue/run_sql_job.py). */
export const validatedPrefix = (dataset: Dataset): string => `${dataset}/validated/`;
export const landingTableOf = (dataset: Dataset): LandingTableName => `${dataset}_landing`;
export const datasetOfLandingTable = (table: LandingTableName): Dataset =>
  table.slice(0, -'_landing'.length) as Dataset;

export function isLandingTable(value: string): value is LandingTableName {
  return (LANDING_TABLES as readonly string[]).includes(value);
}

export function isTableName(value: string): value is TableName {
  return (ALL_TABLES as readonly string[]).includes(value);
}

/**
 * The table build log: one JSON object per derived table, `<prefix><table>.json`, replaced by the job
 * that rebuilds the table (the local engine and glue/run_sql_job.py alike). glue/checks/ read it as
 * the Catalog table table_builds.
 */
export const TABLE_BUILDS_PREFIX = 'checks/table_builds/';
export const tableBuildKey = (table: DerivedTableName): string => `${TABLE_BUILDS_PREFIX}${table}.json`;
