/** Small lexical helpers shared by the DDL reader and the dependency reader. */

/** The SQL with comments removed and string literals replaced by '' (so their words never count). */
export function stripCommentsAndStrings(sql: string): string {
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
      i++;
      while (i < sql.length && sql[i] !== "'") i += sql[i] === '\\' ? 2 : 1;
      out += "''";
    } else {
      out += ch;
    }
  }
  return out;
}

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
    else tokens.push({ kind: 'punct', text: m[4] });
  }
  return tokens;
}
