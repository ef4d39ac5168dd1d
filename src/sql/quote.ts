/** Quoting for SQL text the local engine builds (DuckDB's rules, which Spark shares for these two). */

/** A string literal: 'it''s'. */
export const sqlString = (value: string): string => `'${value.replace(/'/g, "''")}'`;

/** A quoted identifier: "user", "a""b". */
export const sqlIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * A path as DuckDB's readers take it literally: they expand `*`, `?` and `[`, so those are written as
 * one-character classes (`[*]`). DuckDB cannot match a backslash in such a pattern, so a path with both
 * is refused; landing files, whose names come from users, are read through aliases instead (landing.ts).
 */
export function literalPath(file: string): string {
  if (!/[*?[]/.test(file)) return file;
  if (file.includes('\\'))
    throw new Error(`cannot read ${file}: a path with a backslash and one of * ? [ (move the lake to a plainer path)`);
  return file.replace(/[*?[]/g, (ch) => `[${ch}]`);
}
