/** Small lexical helpers for SQL text: the DDL reader, the check definitions, the query session. */

import { required } from '../required';

/** The index of the quote that closes the string literal opened at `open` (a backslash escapes one character). */
export function endOfString(sql: string, open: number): number {
  let i = open + 1;
  while (i < sql.length && sql[i] !== "'") i += sql[i] === '\\' ? 2 : 1;
  return i;
}

/** The SQL without comments (-- to the end of the line, and /* ... *\/); string literals kept, or as '' when asked. */
export function stripComments(sql: string, { blankStrings = false } = {}): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i];
    if (ch === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out += '\n';
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 1;
      out += ' ';
    } else if (ch === "'") {
      const end = endOfString(sql, i);
      out += blankStrings ? "''" : sql.slice(i, end + 1);
      i = end;
    } else {
      out += ch;
    }
  }
  return out;
}

/** The SQL with comments removed and string literals replaced by '' (so their words never count). */
export const stripCommentsAndStrings = (sql: string): string => stripComments(sql, { blankStrings: true });

export type Token = { kind: 'word' | 'punct'; text: string };

/** Words (identifiers and keywords, lowercased; `quoted` identifiers unquoted) and punctuation. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const re = /`([^`]+)`|([A-Za-z_][A-Za-z0-9_$]*)|([0-9]+(?:\.[0-9]+)?)|(\S)/g;
  const text = stripCommentsAndStrings(sql);
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== undefined) tokens.push({ kind: 'word', text: m[1].toLowerCase() });
    else if (m[2] !== undefined) tokens.push({ kind: 'word', text: m[2].toLowerCase() });
    else if (m[3] !== undefined) tokens.push({ kind: 'punct', text: m[3] });
    else tokens.push({ kind: 'punct', text: required(m[4], 'a punctuation character') });
  }
  return tokens;
}

/** Whether SQL holds no statement: only blanks, comments and semicolons. */
export const isEmptySql = (sql: string): boolean => tokenize(sql).every((t) => t.text === ';');

/**
 * Where the piece of Trino (Athena) SQL opening at `i` ends when a scan must step over it whole: a string
 * literal ('it''s'), a quoted identifier ("a""b"), a line or a block comment; undefined when none opens there.
 */
export function endOfTrinoPiece(sql: string, i: number): number | undefined {
  const ch = sql[i];
  if (ch === "'" || ch === '"') {
    let j = i + 1;
    while (j < sql.length) {
      if (sql[j] === ch && sql[j + 1] === ch)
        j += 2; // a doubled quote stays inside
      else if (sql[j] === ch) return j + 1;
      else j++;
    }
    return sql.length;
  }
  if (ch === '-' && sql[i + 1] === '-') {
    const end = sql.indexOf('\n', i);
    return end < 0 ? sql.length : end;
  }
  if (ch === '/' && sql[i + 1] === '*') {
    const end = sql.indexOf('*/', i + 2);
    return end < 0 ? sql.length : end + 2;
  }
  return undefined;
}
