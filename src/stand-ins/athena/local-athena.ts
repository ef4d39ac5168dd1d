import type { QueryResult } from '../../checks/lake-session';
import { required } from '../../required';
import { endOfTrinoPiece } from '../../sql/text';

/** The Athena integrations of Step Functions the pipeline uses (the data checks after the last job). */
export const ATHENA_START_QUERY_SYNC_RESOURCE = 'arn:aws:states:::athena:startQueryExecution.sync';
export const ATHENA_GET_QUERY_RESULTS_RESOURCE = 'arn:aws:states:::athena:getQueryResults';

/** What runs a query locally: DuckDB over the lake, as the checks read it. */
export interface QueryEngine {
  query(sql: string): Promise<QueryResult>;
  close(): void;
}

/** An error as a Step Functions task reports it: Catch and Retry match on its name. */
export class AthenaTaskError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Athena's name for a DuckDB column type (ResultSetMetadata.ColumnInfo[].Type). */
function athenaType(duckdbType: string): string {
  const t = duckdbType.toUpperCase();
  if (t === 'VARCHAR') return 'varchar';
  if (t === 'BIGINT' || t === 'HUGEINT' || t === 'UBIGINT') return 'bigint';
  if (t === 'INTEGER') return 'integer';
  if (t === 'DOUBLE' || t === 'FLOAT') return 'double';
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'DATE') return 'date';
  if (t.startsWith('TIMESTAMP')) return 'timestamp';
  return 'varchar';
}

/** A value as Athena returns it: always text, NULL as a Data entry without VarCharValue. */
function cell(value: unknown): { VarCharValue?: string } {
  if (value === null || value === undefined) return {};
  return { VarCharValue: typeof value === 'string' ? value : JSON.stringify(value) };
}

interface StoredQuery {
  execution: Record<string, unknown>;
  columns: string[];
  types: string[];
  rows: Record<string, unknown>[];
}

/**
 * The two Athena tasks of the state machine bound to a local engine, shaped as Step Functions and
 * Athena document them:
 * - startQueryExecution.sync waits for the query and returns GetQueryExecution's response,
 *   `{"QueryExecution": {"QueryExecutionId", "Query", "StatementType", "Status": {"State": ...}, ...}}`;
 *   a query that fails fails the task with States.TaskFailed, its cause that response as JSON with
 *   State FAILED and the engine's message as StateChangeReason;
 * - getQueryResults returns `{"ResultSet": {"Rows", "ResultSetMetadata": {"ColumnInfo"}}, "UpdateCount"}`:
 *   a SELECT's first row holds the column names, every value is text, and MaxResults (at most 1000)
 *   counts that header row; an unknown id fails with Athena.InvalidRequestException;
 * - ExecutionParameters fill the query's `?` placeholders in order, each value as SQL text (a string is
 *   given quoted: `'run_1'`), as Athena's parameterized queries do.
 */
export function localAthena(
  open: () => Promise<QueryEngine>,
  options: {
    workGroup: string;
    database: string;
    /** Told of every query that ran: the SQL and its rows, or the error. */
    onQuery?: (sql: string, outcome: { rows: number } | { error: string }) => void;
  },
) {
  const queries = new Map<string, StoredQuery>();
  let counter = 0;

  const startQueryExecutionSync = async (input: unknown): Promise<unknown> => {
    const { QueryString, WorkGroup, QueryExecutionContext, ExecutionParameters } = input as {
      QueryString?: string;
      WorkGroup?: string;
      QueryExecutionContext?: { Database?: string };
      ExecutionParameters?: unknown;
    };
    if (typeof QueryString !== 'string' || QueryString.trim() === '')
      throw new AthenaTaskError('Athena.InvalidRequestException', 'QueryString is required');
    const id = `local-query-${++counter}`;
    const submitted = new Date().toISOString();
    const execution = {
      QueryExecutionId: id,
      Query: QueryString,
      StatementType: /^\s*(select|with)\b/i.test(QueryString.replace(/^(\s*--[^\n]*\n)*/, '')) ? 'DML' : 'UTILITY',
      WorkGroup: WorkGroup ?? options.workGroup,
      QueryExecutionContext: {
        Catalog: 'AwsDataCatalog',
        Database: QueryExecutionContext?.Database ?? options.database,
      },
      ResultConfiguration: { OutputLocation: `local://athena-results/${id}.csv` },
    };
    if (
      ExecutionParameters !== undefined &&
      (!Array.isArray(ExecutionParameters) || !ExecutionParameters.every((v) => typeof v === 'string'))
    )
      throw new AthenaTaskError('Athena.InvalidRequestException', 'ExecutionParameters must be a list of strings');
    const engine = await open();
    try {
      const result = await engine.query(withParameters(QueryString, ExecutionParameters ?? []));
      options.onQuery?.(QueryString, { rows: result.rows.length });
      const done = {
        ...execution,
        Status: { State: 'SUCCEEDED', SubmissionDateTime: submitted, CompletionDateTime: new Date().toISOString() },
      };
      queries.set(id, { execution: done, ...result });
      return { QueryExecution: done };
    } catch (error) {
      const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      options.onQuery?.(QueryString, { error: reason });
      const failed = {
        ...execution,
        Status: {
          State: 'FAILED',
          StateChangeReason: reason,
          SubmissionDateTime: submitted,
          CompletionDateTime: new Date().toISOString(),
        },
      };
      throw new AthenaTaskError('States.TaskFailed', JSON.stringify({ QueryExecution: failed }));
    } finally {
      engine.close();
    }
  };

  // Errors reach the caller as a rejected promise, as from the service.
  const getQueryResults = (input: unknown): Promise<unknown> => Promise.resolve().then(() => readResults(input));

  const readResults = (input: unknown): unknown => {
    const {
      QueryExecutionId,
      MaxResults = 1000,
      NextToken,
    } = input as {
      QueryExecutionId?: string;
      MaxResults?: number;
      NextToken?: string;
    };
    const stored = QueryExecutionId ? queries.get(QueryExecutionId) : undefined;
    if (!stored)
      throw new AthenaTaskError('Athena.InvalidRequestException', `QueryExecution ${QueryExecutionId} was not found`);
    if (!Number.isInteger(MaxResults) || MaxResults < 1 || MaxResults > 1000)
      throw new AthenaTaskError('Athena.InvalidRequestException', 'MaxResults must be between 1 and 1000');
    const all = [
      { Data: stored.columns.map((c) => ({ VarCharValue: c })) },
      ...stored.rows.map((row) => ({ Data: stored.columns.map((c) => cell(row[c])) })),
    ];
    const from = NextToken ? Number(NextToken) : 0;
    const page = all.slice(from, from + MaxResults);
    const next = from + MaxResults < all.length ? String(from + MaxResults) : undefined;
    return {
      ResultSet: {
        Rows: page,
        ResultSetMetadata: {
          ColumnInfo: stored.columns.map((name, i) => {
            const type = athenaType(required(stored.types[i], `the type of column ${name}`));
            return {
              CatalogName: 'hive',
              SchemaName: '',
              TableName: '',
              Name: name,
              Label: name,
              Type: type,
              Precision: 0,
              Scale: 0,
              Nullable: 'UNKNOWN',
              CaseSensitive: type === 'varchar',
            };
          }),
        },
      },
      UpdateCount: 0,
      ...(next ? { NextToken: next } : {}),
    };
  };

  return { startQueryExecutionSync, getQueryResults };
}

/**
 * The query with its `?` placeholders replaced, in order, by ExecutionParameters ("The values are applied
 * sequentially to the parameters in the query in the order in which the parameters occur": Athena API
 * reference, StartQueryExecution). A `?` in a string literal, a quoted identifier or a comment is text. A
 * count that differs fails the query, as Trino's prepared statements do.
 */
export function withParameters(sql: string, values: readonly string[]): string {
  let out = '';
  let used = 0;
  let i = 0;
  while (i < sql.length) {
    const end = endOfTrinoPiece(sql, i) ?? i + 1; // a string, a quoted name or a comment is text
    if (end === i + 1 && sql[i] === '?') {
      out += values[used] ?? '?';
      used++;
    } else out += sql.slice(i, end);
    i = end;
  }
  if (used !== values.length)
    throw new Error(`Incorrect number of parameters: expected ${used} but found ${values.length}`);
  return out;
}
