import {
  AthenaClient,
  ColumnInfo,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  Row as AthenaRow,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';

export type Row = Record<string, unknown>;

/**
 * Where the CLI's queries run: the stack's workgroup (its scan limit) and database, and where this caller's
 * results go: a prefix of its own (userResultsLocation), which its policy lets it alone read.
 */
export interface AthenaTarget {
  workGroup: string;
  database: string;
  /** s3://<bucket>/athena-results/users/<aws:userid>/ */
  outputLocation: string;
}

/** Query results: the pipeline's checks' (the workgroup's default location) and each CLI user's, apart. */
export const PIPELINE_RESULTS_PREFIX = 'athena-results/pipeline/';
export const USER_RESULTS_PREFIX = 'athena-results/users/';

/**
 * A caller's own results location, named by its aws:userid (IAM User Guide, "IAM policy elements: Variables and
 * tags": aws:userid is the caller's unique id, role-id:session-name for an assumed role), which STS
 * GetCallerIdentity returns as UserId: the CLI user's policy grants that prefix through ${aws:userid}.
 */
export function userResultsLocation(bucket: string, userId: string): string {
  if (!userId || userId.includes('/')) throw new Error(`not an aws:userid: "${userId}"`);
  return `s3://${bucket}/${USER_RESULTS_PREFIX}${userId}/`;
}

export class AthenaQueryError extends Error {
  constructor(
    message: string,
    readonly queryExecutionId: string,
  ) {
    super(message);
    this.name = 'AthenaQueryError';
  }
}

export interface AthenaResult {
  columns: string[];
  /** Athena's type of each column (varchar, bigint, double, ...). */
  types: string[];
  rows: Row[];
  queryExecutionId: string;
  dataScannedBytes?: number;
}

const POLL_MS = Number(process.env.STEDI_POLL_MS ?? 500);
const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'integer', 'int', 'bigint']);
const FLOAT_TYPES = new Set(['double', 'float', 'real']);

/**
 * Runs one statement in the workgroup and reads all its rows. Athena returns every value as text;
 * numbers come back as numbers (integers beyond 2^53 as strings) and NULL as null, as the local
 * `stedi query` prints them.
 */
export async function runAthenaQuery(client: AthenaClient, target: AthenaTarget, sql: string): Promise<AthenaResult> {
  const { QueryExecutionId: id } = await client.send(
    new StartQueryExecutionCommand({
      QueryString: sql,
      WorkGroup: target.workGroup,
      QueryExecutionContext: { Catalog: 'AwsDataCatalog', Database: target.database },
      // The workgroup does not override these (Athena guide, "Override client-side settings"): each user's
      // results land under their own prefix, encrypted as the workgroup's would be.
      ResultConfiguration: {
        OutputLocation: target.outputLocation,
        EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
      },
    }),
  );
  if (!id) throw new Error('Athena started no query');
  let execution;
  for (;;) {
    execution = (await client.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution;
    const state = execution?.Status?.State;
    if (state === 'SUCCEEDED') break;
    if (state === 'FAILED' || state === 'CANCELLED') {
      const reason = execution?.Status?.StateChangeReason ?? execution?.Status?.AthenaError?.ErrorMessage ?? '';
      throw new AthenaQueryError(`Athena query ${id} ${state.toLowerCase()}: ${reason}`, id);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  // A SELECT's first row on the first page holds the column names; a DDL statement's rows do not.
  const hasHeader = execution?.StatementType !== 'DDL' && execution?.StatementType !== 'UTILITY';
  let columnInfo: ColumnInfo[] = [];
  const rows: Row[] = [];
  let nextToken: string | undefined;
  let first = true;
  do {
    const page = await client.send(
      new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: nextToken, MaxResults: 1000 }),
    );
    if (first) columnInfo = page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
    const pageRows = page.ResultSet?.Rows ?? [];
    for (const [i, row] of pageRows.entries()) {
      if (first && i === 0 && hasHeader) continue;
      rows.push(toRow(row, columnInfo));
    }
    first = false;
    nextToken = page.NextToken;
  } while (nextToken);
  return {
    columns: columnInfo.map((c) => c.Name ?? ''),
    types: columnInfo.map((c) => (c.Type ?? 'varchar').toLowerCase()),
    rows,
    queryExecutionId: id,
    dataScannedBytes: execution?.Statistics?.DataScannedInBytes,
  };
}

function toRow(row: AthenaRow, columns: ColumnInfo[]): Row {
  const out: Row = {};
  columns.forEach((column, i) => {
    out[column.Name ?? `_col${i}`] = toValue(row.Data?.[i]?.VarCharValue, (column.Type ?? 'varchar').toLowerCase());
  });
  return out;
}

/** A value of Athena's text result as the local engine gives it. */
export function toValue(text: string | undefined, type: string): unknown {
  if (text === undefined) return null;
  if (INTEGER_TYPES.has(type)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : text;
  }
  if (FLOAT_TYPES.has(type)) return Number(text);
  if (type === 'boolean') return text === 'true';
  return text;
}
