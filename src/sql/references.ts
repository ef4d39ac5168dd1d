import { tokenize } from './text';

/**
 * The tables a query reads: every name after FROM or JOIN that is not one of its own CTEs.
 * Used to bind a job's inputs locally and to derive the job dependency graph from the SQL files,
 * so the SQL stays the single source of the pipeline's order.
 */
export function tablesReadBy(sql: string): string[] {
  const tokens = tokenize(sql);
  const cteNames = new Set<string>();
  const read: string[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    // A CTE is `name as (` at the top level, right after WITH or a comma.
    const prev = tokens[i - 1];
    if (
      depth === 0 &&
      t.kind === 'word' &&
      prev &&
      (prev.text === 'with' || prev.text === ',') &&
      tokens[i + 1]?.text === 'as' &&
      tokens[i + 2]?.text === '('
    ) {
      cteNames.add(t.text);
    }
    if (t.kind === 'word' && (t.text === 'from' || t.text === 'join')) {
      const next = tokens[i + 1];
      if (next?.kind === 'word' && !read.includes(next.text)) read.push(next.text);
    }
  }
  return read.filter((name) => !cteNames.has(name));
}
