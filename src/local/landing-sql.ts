import type { ColumnDefinition, ColumnType, LandingTableDefinition } from '../sql/ddl';

/** DuckDB's json_type() names a JSON value may have for each column type. */
const ACCEPTED_JSON_TYPES: Record<ColumnType, string[]> = {
  string: ['VARCHAR'],
  bigint: ['UBIGINT', 'BIGINT'],
  int: ['UBIGINT', 'BIGINT'],
  double: ['UBIGINT', 'BIGINT', 'DOUBLE'],
};

const DUCKDB_TYPE: Record<ColumnType, string> = {
  string: 'VARCHAR',
  bigint: 'BIGINT',
  int: 'INTEGER',
  double: 'DOUBLE',
};

/** How a reason names a JSON value's type. */
const JSON_TYPE_WORD = `case json_type(v)
  when 'VARCHAR' then 'a string' when 'UBIGINT' then 'an integer' when 'BIGINT' then 'an integer'
  when 'DOUBLE' then 'a number with a fraction' when 'BOOLEAN' then 'a boolean'
  when 'OBJECT' then 'an object' when 'ARRAY' then 'an array' else lower(json_type(v)) end`;

export const sqlString = (value: string): string => `'${value.replace(/'/g, "''")}'`;
export const sqlIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function jsonTypeWord(valueExpr: string): string {
  return `(${JSON_TYPE_WORD.replace(/json_type\(v\)/g, `json_type(${valueExpr})`)})`;
}

function columnChecks(column: ColumnDefinition, index: number): string[] {
  const value = `vals[${index + 1}]`;
  const type = `json_type(${value})`;
  const accepted = ACCEPTED_JSON_TYPES[column.type].map(sqlString).join(', ');
  const checks: string[] = [];
  if (column.required) {
    checks.push(`when coalesce(${type}, 'NULL') = 'NULL' then ${sqlString(`missing required field "${column.name}"`)}`);
  }
  checks.push(
    `when ${type} <> 'NULL' and ${type} not in (${accepted}) then ` +
      `${sqlString(`field "${column.name}" must be ${column.type}, found `)} || ${jsonTypeWord(value)}`,
  );
  if (column.type !== 'string') {
    checks.push(
      `when ${type} <> 'NULL' and try_cast(${value} as ${DUCKDB_TYPE[column.type]}) is null then ` +
        `${sqlString(`field "${column.name}" is out of range for ${column.type}: `)} || cast(${value} as varchar)`,
    );
  }
  return checks;
}

function columnValue(column: ColumnDefinition, index: number): string {
  const value = `vals[${index + 1}]`;
  const expr = column.type === 'string' ? `${value} ->> '$'` : `try_cast(${value} as ${DUCKDB_TYPE[column.type]})`;
  return `${expr} as ${sqlIdentifier(column.name)}`;
}

/**
 * One pass over a landing table's JSON-lines files: every non-blank line becomes one row holding
 * either the typed columns (reason null) or the reason it is rejected, with its source file,
 * line number and original text. A UTF-8 BOM at a file's start and CR line ends are stripped.
 * `rootPrefixLength` is the length of "<lake root>/", cut off file names to give lake keys.
 */
export function parseLandingSql(table: LandingTableDefinition, files: string[], rootPrefixLength: number): string {
  const paths = `[${files.map(sqlString).join(', ')}]`;
  const jsonPaths = `[${table.columns.map((c) => sqlString(`$."${c.name}"`)).join(', ')}]`;
  const source =
    files.length === 0
      ? `select null::varchar as filename, null::varchar as raw_line, null::bigint as line_number where false`
      : `select
           filename,
           unnest(string_split(content, chr(10))) as raw_line,
           generate_subscripts(string_split(content, chr(10)), 1) as line_number
         from read_text(${paths})`;
  const reason = [
    `when not is_json then 'not valid JSON'`,
    `when json_type(line) <> 'OBJECT' then 'not a JSON object: found ' || ${jsonTypeWord('line')}`,
    ...table.columns.flatMap(columnChecks),
  ].join('\n        ');
  return `
with source_lines as (
    ${source}
),
lines as (
    select
        filename,
        line_number,
        raw_line,
        rtrim(case when line_number = 1 then ltrim(raw_line, chr(65279)) else raw_line end, chr(13)) as line
    from source_lines
),
records as (
    select
        filename,
        line_number,
        raw_line,
        line,
        json_valid(line) as is_json
    from lines
    where trim(line) <> ''
),
extracted as (
    select
        filename,
        line_number,
        raw_line,
        line,
        is_json,
        case when is_json and json_type(line) = 'OBJECT' then json_extract(line, ${jsonPaths}) end as vals
    from records
),
checked as (
    select
        *,
        case
        ${reason}
        end as reason
    from extracted
)
select
    reason,
    case when reason is not null then substr(filename, ${rootPrefixLength + 1}) end as source_file,
    case when reason is not null then line_number end as line_number,
    case when reason is not null then raw_line end as raw_line,
    ${table.columns.map(columnValue).join(',\n    ')}
from checked`;
}
