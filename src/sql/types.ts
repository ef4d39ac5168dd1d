/**
 * Column types: the Hive/Glue Catalog names the DDL and the catalog use, and the DuckDB types the local
 * engine reads and writes them as. The one mapping between the two.
 */

export type HiveType = 'string' | 'bigint' | 'int' | 'double' | 'boolean' | 'date' | 'timestamp';

export const DUCKDB_TYPE: Record<HiveType, string> = {
  string: 'VARCHAR',
  bigint: 'BIGINT',
  int: 'INTEGER',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
};

const HIVE_TYPE = new Map(Object.entries(DUCKDB_TYPE).map(([hive, duckdb]) => [duckdb, hive]));

/** The DuckDB type of a catalog column type; an unknown one is read as text. */
export function duckdbType(hiveType: string): string {
  return (DUCKDB_TYPE as Record<string, string | undefined>)[hiveType] ?? 'VARCHAR';
}

/** The catalog type of a column DuckDB describes (e.g. VARCHAR → string); others keep DuckDB's name, lowercased. */
export function hiveType(duckdbTypeName: string): string {
  return HIVE_TYPE.get(duckdbTypeName) ?? duckdbTypeName.toLowerCase();
}
