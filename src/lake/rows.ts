import type { DuckDBResultReader } from '@duckdb/node-api';

/** A result row as plain JSON-friendly values, keyed by column name. */
export type Row = Record<string, unknown>;

/** BIGINT within 2^53 as a number (beyond it as a string), dates as ISO strings, lists and structs likewise. */
export function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/** A DuckDB result's rows as plain objects (toPlain). */
export function plainRows(reader: DuckDBResultReader): Row[] {
  const columns = reader.columnNames();
  return reader.getRowObjectsJS().map((row) => Object.fromEntries(columns.map((c) => [c, toPlain(row[c])])));
}
