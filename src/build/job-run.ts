import { createHash } from 'node:crypto';
import type { Dataset, TableName } from '../definition/layout';
import { isLandingTable } from '../definition/layout';
import type { ConsentPolicy, JobDefinition, JobName, JobParameter } from '../definition/pipeline';
import type { CatalogTable, LakeSnapshot, LakeTransaction } from '../lake/lake';

/* What a job run is given (its run parameters) and the ways it fails that a caller tells apart. */

export interface RunParameters {
  /** Names this run in file names and the catalog (the Step Functions execution name). */
  runId: string;
  consentPolicy: ConsentPolicy;
  /** Salt of the customerId hash. Never written to the lake or to logs. */
  piiSalt: string;
}

/** A run opened with beginRun: its tables staged, published together by publishRun once its checks pass. */
export interface OpenRun {
  runId: string;
  consentPolicy: ConsentPolicy;
  transaction: LakeTransaction;
  tables: Map<TableName, CatalogTable>;
}

/**
 * The publish task of write, audit, publish (statemachines/pipeline.asl.json, PublishRun): a run of `job`'s
 * Glue job with --publish_tables, which moves each listed table the run wrote from main to the run's branch.
 */
export interface PublishRequest {
  job: JobName;
  runId: string;
  /** The run's Iceberg branch (--wap_branch). */
  branch: string;
  /** --publish_tables, in the pipeline's order. */
  tables: string[];
  /** The task's Arguments, as glue:startJobRun passes them. */
  taskArguments: Record<string, string>;
  jobRunId: string;
}

export class MissingInputError extends Error {
  constructor(
    readonly table: TableName,
    readonly lakeRoot: string,
  ) {
    super(`table ${table} has not been built in ${lakeRoot} yet; run the pipeline from the job that writes it`);
    this.name = 'MissingInputError';
  }
}

/** An input was built with another salt or consent policy than this run's: mixing them gives wrong rows. */
export class ParameterMismatchError extends Error {
  constructor(
    readonly table: TableName,
    parameter: string,
    built: string,
    now: string,
  ) {
    super(
      `${table} was built with ${parameter === 'pii_salt' ? 'another PII salt' : `consent policy ${built}`}, ` +
        `but this run uses ${parameter === 'pii_salt' ? 'a different one' : now}: rebuild it first (run the pipeline from the job that writes it, e.g. stedi run --from customer)`,
    );
    this.name = 'ParameterMismatchError';
  }
}

/** A short one-way fingerprint of the salt: enough to notice a change, useless to recover it. */
export function saltFingerprint(salt: string): string {
  return createHash('sha256').update(`stedi-lakehouse pii salt fingerprint\u0000${salt}`).digest('hex').slice(0, 16);
}

export function parameterValues(params: RunParameters): Record<JobParameter, string> {
  return { pii_salt: saltFingerprint(params.piiSalt), consent_policy: params.consentPolicy };
}

/**
 * A landing folder the lake has read from before is gone (moved, unmounted): read as empty it would empty
 * every table built from it. An empty folder is a lake with no data of that kind; a missing one is this.
 */
export class LandingFolderMissingError extends Error {
  constructor(
    readonly dataset: Dataset,
    readonly folder: string,
  ) {
    super(
      `the landing folder ${folder} is missing (moved or unmounted?), so no job ran: put it back; ` +
        `if the lake is to hold no ${dataset} data, make it an empty folder`,
    );
    this.name = 'LandingFolderMissingError';
  }
}

export class JobFailedError extends Error {
  constructor(
    readonly job: JobName,
    cause: unknown,
  ) {
    super(`job ${job} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'JobFailedError';
  }
}

/** Every input the job reads from the catalog is there, built with this run's salt and consent policy. */
export function checkInputs(job: JobDefinition, snapshot: LakeSnapshot, params: RunParameters): void {
  for (const table of job.reads) {
    if (isLandingTable(table)) continue;
    const entry = snapshot.catalog.tables[table];
    if (!entry) throw new MissingInputError(table, snapshot.lake.root);
    for (const [parameter, built] of Object.entries(entry.parameters ?? {})) {
      const now = parameterValues(params)[parameter as JobParameter];
      if (built !== now) throw new ParameterMismatchError(table, parameter, built, now);
    }
  }
}
