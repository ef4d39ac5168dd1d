import { DuckDBConnection, DuckDBInstance, StatementType } from '@duckdb/node-api';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DATASETS,
  TableName,
  datasetOfLandingTable,
  isLandingTable,
  quarantinePrefix,
  validatedPrefix,
} from '../../definition/layout';
import { glueDir } from '../../project';
import { readLandingTables } from '../../definition/ddl';
import { Lake, LakeSnapshot, SkippedFile, parquetScanSql } from '../../lake/lake';
import { literalPath, sqlIdentifier, sqlString } from '../../sql/quote';
import { quarantineScanSql } from '../../lake/quarantine';
import {
  committedCopy,
  readValidatedCopy,
  rulesVersion,
  segmentsScanSql,
  validatedScanSql,
} from '../../build/validated';
import { isEmptySql, tokenize } from '../../sql/text';
import { installSparkDialect } from '../../build/spark-dialect';
import { removeTree } from '../../lake/versions';
import { Row, plainRows } from '../../lake/rows';

export type { Row } from '../../lake/rows';

/** A statement `stedi query` refuses: anything but a query, as Athena's SELECT-only access. */
export class ReadOnlyQueryError extends Error {
  constructor(kind: string) {
    super(`stedi query only reads: ${kind} statements are not allowed (use SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE)`);
    this.name = 'ReadOnlyQueryError';
  }
}

/**
 * SQL that is not one statement: none at all (DuckDB's parser has no message for it), or several, which
 * Athena refuses ("Only one sql statement is allowed") and which would otherwise print one result only.
 */
export class QueryTextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryTextError';
  }
}

/** A table bound from elsewhere than the lake's catalog: its SELECT and the folders that reads. */
export interface BoundView {
  sql: string;
  reads: string[];
}

/**
 * The local stand-in for Athena: a DuckDB connection with one view per catalog table (landing
 * tables read the landing files as they are now: the validated copy's records of unchanged files, and
 * the files changed since checked into the session's scratch folder, never into the lake) and one
 * <dataset>_quarantine view per dataset, of one committed state of the lake.
 *
 * Read-only as Athena is: once the views are bound, DuckDB may touch only the folders they read
 * (enable_external_access off, allowed_directories, the configuration locked, no extension installed
 * or loaded), and only SELECT statements run. A COPY, ATTACH, INSTALL, SET, CREATE... is refused.
 */
export class QuerySession {
  private constructor(
    private readonly db: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly scratch: string,
    readonly tables: TableName[],
    /** Tables of the catalog that could not be bound, with the reason. */
    readonly unreadable: string[],
    /** Landing entries of the landing tables bound that could not be read as files, and why. */
    readonly skippedLandingFiles: SkippedFile[] = [],
  ) {}

  /**
   * Opens a session over the lake's catalog. Binding a landing table checks the landing files changed
   * since the last run, so with `forSql` only the landing tables that SQL names are bound. With `asOf` (a
   * snapshot a run left, lake-history.ts) every table is read as committed in it, landing tables from its
   * validated copy alone: landing files changed since are not read. `views` binds tables another way
   * (the Glue engine's Iceberg snapshots) instead of the catalog's, or leaves them out (null).
   */
  static async open(
    lake: Lake,
    forSql?: string,
    asOf?: LakeSnapshot,
    views?: Map<TableName, BoundView | null>,
  ): Promise<QuerySession> {
    const named = forSql === undefined ? undefined : new Set(tokenize(forSql).map((t) => t.text));
    const scratch = await mkdtemp(path.join(tmpdir(), 'stedi-query-'));
    const db = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      temp_directory: path.join(scratch, 'duckdb'),
    });
    const connection = await db.connect();
    try {
      await installSparkDialect(connection);
      const snapshot = asOf ?? (await lake.snapshot());
      const landing = readLandingTables(glueDir());
      const duckdb = String(
        (await connection.runAndReadAll('select library_version from pragma_version()')).getRows()[0]?.[0],
      );
      const tables: TableName[] = [];
      const unreadable: string[] = [];
      const skippedLandingFiles: SkippedFile[] = [];
      const readable = new Set<string>([scratch]);
      for (const entry of Object.values(snapshot.catalog.tables)) {
        if (views?.has(entry.name)) continue;
        if (named && isLandingTable(entry.name) && !named.has(entry.name)) continue;
        try {
          if (isLandingTable(entry.name) && asOf) {
            const copy = committedCopy(snapshot, datasetOfLandingTable(entry.name));
            if (!copy) throw new Error(`its validated copy is missing from the snapshot`);
            const segments = Object.keys(copy.manifest.segments);
            await connection.run(
              `create view ${sqlIdentifier(entry.name)} as ${segmentsScanSql(landing[entry.name], copy.dir, segments)}`,
            );
            readable.add(copy.dir);
          } else if (isLandingTable(entry.name)) {
            const definition = landing[entry.name];
            const dataset = datasetOfLandingTable(entry.name);
            const copy = await readValidatedCopy(connection, {
              lake,
              snapshot,
              dataset,
              definition,
              rules: rulesVersion(definition, duckdb),
              scratch: await mkdtemp(path.join(scratch, `${dataset}-`)),
            });
            skippedLandingFiles.push(...copy.skipped);
            await connection.run(`create view ${sqlIdentifier(entry.name)} as ${validatedScanSql(definition, copy)}`);
            const committed = snapshot.dirOf(validatedPrefix(dataset));
            if (committed) readable.add(committed);
          } else {
            await connection.run(`create view ${sqlIdentifier(entry.name)} as ${parquetScanSql(snapshot, entry)}`);
            readable.add(snapshot.dirOf(entry.location)!);
          }
          tables.push(entry.name);
        } catch (error) {
          // One unreadable table must not hide the others; querying it fails (it has no view).
          unreadable.push(`${entry.name}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
        }
      }
      for (const [name, view] of views ?? []) {
        if (!view) continue;
        await connection.run(`create view ${sqlIdentifier(name)} as ${view.sql}`).catch((error: unknown) => {
          throw new Error(`table ${name} cannot be read: ${(error as Error).message.split('\n')[0]}`);
        });
        view.reads.forEach((dir) => readable.add(dir));
        tables.push(name);
      }
      for (const dataset of DATASETS) {
        const dir = snapshot.dirOf(quarantinePrefix(dataset));
        if (dir) readable.add(dir);
        await connection.run(`create view ${sqlIdentifier(`${dataset}_quarantine`)} as ${quarantineScanSql(dir)}`);
      }
      await lockDown(connection, [...readable]);
      return new QuerySession(db, connection, scratch, tables, unreadable, skippedLandingFiles);
    } catch (error) {
      connection.closeSync();
      db.closeSync();
      removeTree(scratch);
      throw error;
    }
  }

  /**
   * Runs one query, checked to be a SELECT first; BIGINT values within 2^53 come back as numbers, dates
   * as ISO strings. SQL with no statement, or more than one, is refused (QueryTextError).
   */
  async query(sql: string): Promise<{ columns: string[]; rows: Row[] }> {
    if (isEmptySql(sql)) throw new QueryTextError('the query is empty: give one SQL statement');
    const extracted = await this.connection.extractStatements(sql);
    if (extracted.count !== 1)
      throw new QueryTextError(
        `the query holds ${extracted.count} statements: give one at a time (Athena runs one statement per query)`,
      );
    const statement = await extracted.prepare(0);
    if (statement.statementType !== StatementType.SELECT)
      throw new ReadOnlyQueryError(StatementType[statement.statementType] ?? String(statement.statementType));
    const reader = await statement.runAndReadAll();
    return { columns: reader.columnNames(), rows: plainRows(reader) };
  }

  close(): void {
    this.connection.closeSync();
    this.db.closeSync();
    removeTree(this.scratch);
  }
}

/**
 * From here on DuckDB reads only the given folders and writes nowhere, and no SET can undo it. Views
 * bound before are checked when they run, so the folders they read are the allowed ones. DuckDB checks
 * a path as the view names it, a pattern (literalPath: `[*]` for a `*`) when the lake's path holds a
 * glob character, so each folder is allowed as that pattern too: it matches only the folder itself.
 */
async function lockDown(connection: DuckDBConnection, directories: string[]): Promise<void> {
  const asPatterns = directories.filter((d) => /[*?[]/.test(d) && !d.includes('\\')).map(literalPath);
  const list = [...directories, ...asPatterns]
    .map((d) => sqlString(d.endsWith(path.sep) ? d : `${d}${path.sep}`))
    .join(', ');
  await connection.run(`set allowed_directories = [${list}]`);
  await connection.run(`set enable_external_access = false`);
  await connection.run(`set lock_configuration = true`);
}
