import type { DuckDBConnection } from '@duckdb/node-api';
import { LandingTableName, datasetOfLandingTable } from '../layout';
import type { LandingTableDefinition } from '../sql/ddl';
import type { Lake } from './lake';
import { landingFileCheckSql, landingQuickCheckSql, parseLandingSql, sqlIdentifier, sqlString, typedLandingScanSql } from './landing-sql';

export interface BoundLandingTable {
  valid: number;
  rejected: number;
  /** Temporary table of the line-by-line parse; its rows with a reason are the rejected lines. */
  parsedTable: string;
}

/**
 * Makes a landing table readable by its name on this connection: a view of its valid records.
 * Clean files are read by DuckDB's parallel JSON reader; only files with a bad line are parsed
 * line by line, which names each rejected line's file, number and reason.
 */
export async function bindLandingTable(
  connection: DuckDBConnection,
  lake: Lake,
  table: LandingTableName,
  definition: LandingTableDefinition,
): Promise<BoundLandingTable> {
  const files = await lake.landingFiles(datasetOfLandingTable(table));
  const clean: string[] = [];
  const dirty: string[] = [];
  let cleanRecords = 0;
  if (files.length > 0) {
    let allClean = false;
    try {
      const [records, failing] = (await connection.runAndReadAll(landingQuickCheckSql(definition, files))).getRows()[0] as [number, number];
      allClean = failing === 0;
      if (allClean) {
        clean.push(...files);
        cleanRecords = records;
      }
    } catch {
      // Some line is not JSON: the per-file check below finds which files hold one.
    }
    if (!allClean) {
      for (const row of (await connection.runAndReadAll(landingFileCheckSql(definition, files))).getRowObjectsJS()) {
        if (row.clean) {
          clean.push(String(row.filename));
          cleanRecords += Number(row.records);
        } else {
          dirty.push(String(row.filename));
        }
      }
    }
  }
  const parsed = sqlIdentifier(`${table}_parsed`);
  await connection.run(`create or replace temp table ${parsed} as ${parseLandingSql(definition, dirty.sort(), lake.root.length + 1)}`);
  const columns = definition.columns.map((c) => sqlIdentifier(c.name)).join(', ');
  await connection.run(
    `create or replace temp view ${sqlIdentifier(table)} as
     ${typedLandingScanSql(definition, clean.sort())}
     union all
     select ${columns} from ${parsed} where reason is null`,
  );
  const counts = await connection.runAndReadAll(
    `select count(*) filter (where reason is null)::double, count(*) filter (where reason is not null)::double from ${parsed}`,
  );
  const [dirtyValid, rejected] = counts.getRows()[0] as [number, number];
  return { valid: cleanRecords + dirtyValid, rejected, parsedTable: parsed };
}

/** Writes a bound table's rejected lines, in file and line order, as JSON lines. */
export async function writeRejected(connection: DuckDBConnection, bound: BoundLandingTable, file: string): Promise<void> {
  await connection.run(
    `copy (
       select source_file, line_number, reason, raw_line as line
       from ${bound.parsedTable} where reason is not null order by source_file, line_number
     ) to ${sqlString(file)} (format json)`,
  );
}
