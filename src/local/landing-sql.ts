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

/** How a reason names a JSON value's type, given DuckDB's json_type() name of it. */
const JSON_TYPE_WORD = `case t
  when 'VARCHAR' then 'a string' when 'UBIGINT' then 'an integer' when 'BIGINT' then 'an integer'
  when 'DOUBLE' then 'a number with a fraction' when 'BOOLEAN' then 'a boolean'
  when 'OBJECT' then 'an object' when 'ARRAY' then 'an array' else lower(t) end`;

export const sqlString = (value: string): string => `'${value.replace(/'/g, "''")}'`;
export const sqlIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function jsonTypeWord(typeExpr: string): string {
  return `(${JSON_TYPE_WORD.replace(/\bt\b/g, typeExpr)})`;
}

function columnChecks(column: ColumnDefinition, index: number): string[] {
  const type = `types[${index + 1}]`;
  const text = `texts[${index + 1}]`;
  const accepted = ACCEPTED_JSON_TYPES[column.type].map(sqlString).join(', ');
  const checks: string[] = [];
  if (column.required) {
    checks.push(`when coalesce(${type}, 'NULL') = 'NULL' then ${sqlString(`missing required field "${column.name}"`)}`);
  }
  checks.push(
    `when ${type} <> 'NULL' and ${type} not in (${accepted}) then ` +
      `${sqlString(`field "${column.name}" must be ${column.type}, found `)} || ${jsonTypeWord(type)}`,
  );
  if (column.type !== 'string') {
    checks.push(
      `when ${type} <> 'NULL' and try_cast(${text} as ${DUCKDB_TYPE[column.type]}) is null then ` +
        `${sqlString(`field "${column.name}" is out of range for ${column.type}: `)} || ${text}`,
    );
  }
  return checks;
}

function columnValue(column: ColumnDefinition, index: number): string {
  const text = `texts[${index + 1}]`;
  const expr = column.type === 'string' ? text : `try_cast(${text} as ${DUCKDB_TYPE[column.type]})`;
  return `${expr} as ${sqlIdentifier(column.name)}`;
}

/**
 * One pass over a landing table's JSON-lines files: every non-blank line becomes one row holding
 * either the typed columns (reason null) or the reason it is rejected, with its source file,
 * line number and original text. A UTF-8 BOM at a file's start and CR line ends are stripped.
 * Each file is read from `path` and named in reasons by `key`, its key in the lake.
 */
export function parseLandingSql(table: LandingTableDefinition, files: { path: string; key: string }[]): string {
  const jsonPaths = `[${table.columns.map((c) => sqlString(`$."${c.name}"`)).join(', ')}]`;
  const source =
    files.length === 0
      ? `select null::varchar as filename, null::varchar as raw_line, null::bigint as line_number where false`
      : `select
           filename,
           unnest(string_split(content, chr(10))) as raw_line,
           generate_subscripts(string_split(content, chr(10)), 1) as line_number
         from read_text(${fileList(files.map((f) => f.path))})`;
  const reason = [
    `when not is_json then 'not valid JSON'`,
    `when json_kind <> 'OBJECT' then 'not a JSON object: found ' || ${jsonTypeWord('json_kind')}`,
    ...table.columns.flatMap(columnChecks),
  ].join('\n        ');
  const keys = files.length === 0
    ? `select null::varchar as filename, null::varchar as source_file where false`
    : `select * from (values ${files.map((f) => `(${sqlString(f.path)}, ${sqlString(f.key)})`).join(', ')}) as v(filename, source_file)`;
  return `
with source_keys as (
    ${keys}
),
source_lines as (
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
        json_kind,
        case when json_kind = 'OBJECT' then json_type(line, ${jsonPaths}) end as types,
        case when json_kind = 'OBJECT' then json_extract_string(line, ${jsonPaths}) end as texts
    from (select *, case when is_json then json_type(line) end as json_kind from records)
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
    case when reason is not null then (select k.source_file from source_keys as k where k.filename = checked.filename) end as source_file,
    case when reason is not null then line_number end as line_number,
    case when reason is not null then raw_line end as raw_line,
    ${table.columns.map(columnValue).join(',\n    ')}
from checked`;
}

const jsonColumns = (table: LandingTableDefinition): string =>
  `{${table.columns.map((c) => `${sqlString(c.name)}: 'JSON'`).join(', ')}}`;

const typedColumns = (table: LandingTableDefinition): string =>
  `{${table.columns.map((c) => `${sqlString(c.name)}: ${sqlString(DUCKDB_TYPE[c.type])}`).join(', ')}}`;

const fileList = (files: string[]): string => `[${files.map(sqlString).join(', ')}]`;

/**
 * True when a raw JSON value breaks the column's rules: the fast twin of columnChecks, on the
 * value's text (cheaper than json_type), used only to send a file down the line-by-line path.
 */
function columnFails(column: ColumnDefinition): string {
  const text = `${sqlIdentifier(column.name)}::varchar`;
  const present = `(${text} is not null and ${text} <> 'null')`;
  const wrong =
    column.type === 'string' ? `left(${text}, 1) <> '"'` : `try_cast(${text} as ${DUCKDB_TYPE[column.type]}) is null`;
  return column.required ? `(not ${present} or ${wrong})` : `(${present} and ${wrong})`;
}

const failsExpression = (table: LandingTableDefinition): string => table.columns.map(columnFails).join(' or ');

/**
 * The usual case in one cheap pass: every file read strictly (a malformed line raises an error),
 * counting the records and those that break a rule. When that fails or finds a bad record,
 * landingFileCheckSql finds the files to parse line by line.
 */
export function landingQuickCheckSql(table: LandingTableDefinition, files: string[]): string {
  return `select count(*)::double as records, count(*) filter (where ${failsExpression(table)})::double as failing
    from read_json(${fileList(files)}, format = 'newline_delimited', columns = ${jsonColumns(table)})`;
}

/**
 * Per file: the records DuckDB's JSON reader reads (skipping malformed lines) and whether the
 * file is clean: as many records as lines, none breaking a rule.
 */
export function landingFileCheckSql(table: LandingTableDefinition, files: string[]): string {
  return `
with records as (
    select filename, ${failsExpression(table)} as fails
    from read_json(${fileList(files)}, format = 'newline_delimited', columns = ${jsonColumns(table)},
                   filename = true, ignore_errors = true)
),
record_counts as (
    select filename, count(*) as records, count(*) filter (where fails) as failing
    from records group by filename
),
line_counts as (
    select
        filename,
        length(content) - length(replace(content, chr(10), ''))
            + case when content <> '' and not ends_with(content, chr(10)) then 1 else 0 end as lines
    from read_text(${fileList(files)})
)
select
    l.filename,
    coalesce(r.records, 0)::double as records,
    (l.lines = coalesce(r.records, 0) and coalesce(r.failing, 0) = 0) as clean
from line_counts as l
left join record_counts as r on r.filename = l.filename`;
}

/** The typed records of files that passed landingFileCheckSql. */
export function typedLandingScanSql(table: LandingTableDefinition, files: string[]): string {
  const columns = table.columns.map((c) => sqlIdentifier(c.name)).join(', ');
  if (files.length === 0) {
    return `select ${table.columns.map((c) => `null::${DUCKDB_TYPE[c.type]} as ${sqlIdentifier(c.name)}`).join(', ')} where false`;
  }
  return `select ${columns} from read_json(${fileList(files)}, format = 'newline_delimited', columns = ${typedColumns(table)})`;
}
