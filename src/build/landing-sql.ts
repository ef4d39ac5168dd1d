import { EPOCH_MS_RANGE, EPOCH_MS_RANGE_TEXT } from '../sql/landing-rules';
import type { ColumnDefinition, ColumnType, LandingTableDefinition } from '../definition/ddl';
import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import { DUCKDB_TYPE } from '../sql/types';

/** DuckDB's json_type() names a JSON value may have for each column type. */
const ACCEPTED_JSON_TYPES: Record<ColumnType, string[]> = {
  string: ['VARCHAR'],
  bigint: ['UBIGINT', 'BIGINT'],
  int: ['UBIGINT', 'BIGINT'],
  double: ['UBIGINT', 'BIGINT', 'DOUBLE'],
};

/** How a reason names a JSON value's type, given DuckDB's json_type() name of it. */
const JSON_TYPE_WORD = `case t
  when 'VARCHAR' then 'a string' when 'UBIGINT' then 'an integer' when 'BIGINT' then 'an integer'
  when 'DOUBLE' then 'a number with a fraction' when 'BOOLEAN' then 'a boolean'
  when 'OBJECT' then 'an object' when 'ARRAY' then 'an array' else lower(t) end`;

function jsonTypeWord(typeExpr: string): string {
  return `(${JSON_TYPE_WORD.replace(/\bt\b/g, typeExpr)})`;
}

// Per column i (1-based) the line-by-line parse has s<i>, the value's JSON text (null when the key is
// missing or the value is JSON null), and v<i>, that text cast to the column type.
const textOf = (i: number): string => `s${i}`;
const valueOf = (i: number): string => `v${i}`;

/**
 * True when a value cast to the column type is unusable: out of range, or (double) not finite.
 * DuckDB reads NaN and Infinity, which are not JSON, and casts 1e400 to Infinity; both are rejected.
 */
function unusable(column: ColumnDefinition, value: string): string {
  return column.type === 'double' ? `not coalesce(isfinite(${value}), false)` : `${value} is null`;
}

/**
 * True when a present value, given its JSON text and that text cast to the column type, breaks the
 * column's type or range: the cheap test of both the whole-table check and the line-by-line parse.
 * DuckDB casts '1.5' and '1e3' to integers; its JSON functions write every non-integer number with a
 * '.' or an 'e' (1e2 as 100.0), so an integer column's text must have neither.
 */
function valueBroken(column: ColumnDefinition, text: string, value: string): string {
  if (column.type === 'string') return `left(${text}, 1) <> '"'`;
  if (column.type === 'double') return unusable(column, value);
  const implausible = column.epochMillis ? ` or ${implausibleTime(value)}` : '';
  return `(${value} is null or contains(${text}, '.') or contains(${text}, 'e')${implausible})`;
}

/** True when an epoch-ms value lies outside EPOCH_MS_RANGE (ddl.ts). */
function implausibleTime(value: string): string {
  return `(${value} < ${EPOCH_MS_RANGE.min} or ${value} >= ${EPOCH_MS_RANGE.end})`;
}

/**
 * The json_type() name of a value from its JSON text as from_json() writes it (null stays null):
 * an integer is written as itself, any other number with a fraction, an exponent or as NaN/Infinity.
 */
function jsonTextType(text: string): string {
  return `case
            when ${text} is null then null
            when left(${text}, 1) = '"' then 'VARCHAR'
            when left(${text}, 1) = '{' then 'OBJECT'
            when left(${text}, 1) = '[' then 'ARRAY'
            when ${text} in ('true', 'false') then 'BOOLEAN'
            when try_cast(${text} as HUGEINT)::varchar = ${text} then case when left(${text}, 1) = '-' then 'BIGINT' else 'UBIGINT' end
            else 'DOUBLE'
        end`;
}

/**
 * True when column i's value breaks a rule, from its text and cast value alone: cheap, so the value's
 * type is named (and the reason worked out) only for the few lines that break one.
 */
function columnBroken(column: ColumnDefinition, i: number): string {
  const text = textOf(i);
  const missing = column.required ? `${text} is null or ` : '';
  return `(${missing}(${text} is not null and ${valueBroken(column, text, valueOf(i))}))`;
}

/** The WHEN branches naming the first rule column i breaks, in the order the rules are checked. */
function columnReasons(column: ColumnDefinition, i: number): string[] {
  const text = textOf(i);
  const type = jsonTextType(text);
  const accepted = ACCEPTED_JSON_TYPES[column.type].map(sqlString).join(', ');
  const reasons: string[] = [];
  if (column.required) {
    reasons.push(`when ${text} is null then ${sqlString(`missing required field "${column.name}"`)}`);
  }
  reasons.push(
    `when ${text} is not null and ${type} not in (${accepted}) then ` +
      `${sqlString(`field "${column.name}" must be ${column.type}, found `)} || ${jsonTypeWord(type)}`,
  );
  if (column.type !== 'string') {
    reasons.push(
      `when ${text} is not null and ${unusable(column, valueOf(i))} then ` +
        `${sqlString(`field "${column.name}" is out of range for ${column.type}: `)} || ${text}`,
    );
  }
  if (column.epochMillis) {
    reasons.push(
      `when ${text} is not null and ${implausibleTime(valueOf(i))} then ` +
        `${sqlString(`field "${column.name}" is not a plausible epoch-ms time (${EPOCH_MS_RANGE_TEXT}): `)} || ${text}`,
    );
  }
  return reasons;
}

/**
 * One pass over a landing table's JSON-lines files (no line longer than MAX_LINE_BYTES: landing.ts
 * rejects those before): every non-blank line becomes one row holding
 * either the typed columns (reason null) or the reason it is rejected, with its source file,
 * line number and original text. A UTF-8 BOM at a file's start and CR line ends are stripped.
 * Each file is read from `path` and named in reasons by `key`, its key in the lake.
 */
export function parseLandingSql(table: LandingTableDefinition, files: { path: string; key: string }[]): string {
  const columns = table.columns.map((column, index) => ({ column, i: index + 1 }));
  const source =
    files.length === 0
      ? `select null::varchar as source_file, null::varchar as raw_line, null::bigint as line_number where false`
      : `select source_file, unnest(split) as raw_line, unnest(range(1, len(split) + 1)) as line_number
         from (
             select k.source_file, string_split(r.content, chr(10)) as split
             from read_text(${fileList(files.map((f) => f.path))}) as r
             join source_keys as k on k.filename = r.filename
         )`;
  const broken = [
    `not is_json`,
    `json_kind <> 'OBJECT'`,
    ...columns.map(({ column, i }) => columnBroken(column, i)),
  ].join('\n            or ');
  const reason = [
    `when not is_json then 'not valid JSON'`,
    `when json_kind <> 'OBJECT' then 'not a JSON object: found ' || ${jsonTypeWord('json_kind')}`,
    ...columns.flatMap(({ column, i }) => columnReasons(column, i)),
  ].join('\n            ');
  const keys =
    files.length === 0
      ? `select null::varchar as filename, null::varchar as source_file where false`
      : `select * from (values ${files.map((f) => `(${sqlString(f.path)}, ${sqlString(f.key)})`).join(', ')}) as v(filename, source_file)`;
  const fieldsStructure = JSON.stringify(Object.fromEntries(table.columns.map((c) => [c.name, 'JSON'])));
  return `
with source_keys as (
    ${keys}
),
source_lines as (
    ${source}
),
unmarked as (
    select source_file, line_number, raw_line, case when line_number = 1 then ltrim(raw_line, chr(65279)) else raw_line end as text
    from source_lines
),
lines as (
    -- rtrim with a character set is slow: only lines that end in CR go through it.
    select source_file, line_number, raw_line, case when ends_with(text, chr(13)) then rtrim(text, chr(13)) else text end as line
    from unmarked
),
records as (
    select source_file, line_number, raw_line, line, json_valid(line) as is_json
    from lines
    -- Blank lines (spaces, tabs, CR, FF, VT: what DuckDB's JSON reader skips) are no records;
    -- only the few lines that are not JSON are trimmed.
    where json_valid(line) or trim(line, ' ' || chr(9) || chr(13) || chr(12) || chr(11)) <> ''
),
objects as (
    -- Almost every line starts with '{': only the others need json_type() to name what they are.
    select *, case when not is_json then null when left(line, 1) = '{' then 'OBJECT' else json_type(line) end as json_kind
    from records
),
fielded as (
    -- One parse per line: each field's JSON text (null when missing or JSON null).
    select *, case when json_kind = 'OBJECT' then from_json(line, ${sqlString(fieldsStructure)}) end as fields
    from objects
),
texts as (
    select
        source_file, line_number, raw_line, is_json, json_kind,
        ${columns.map(({ column, i }) => `fields.${sqlIdentifier(column.name)}::varchar as ${textOf(i)}`).join(',\n        ')}
    from fielded
),
extracted as (
    select
        *,
        ${columns.map(({ column, i }) => `${typedFromText(column, textOf(i))} as ${valueOf(i)}`).join(',\n        ')}
    from texts
),
checked as (
    select
        *,
        -- The first rule a line breaks; worked out only for the few lines that break one.
        case when ${broken}
        then case
            ${reason}
        end end as reason
    from extracted
)
select
    reason,
    source_file,
    case when reason is not null then line_number end as line_number,
    case when reason is not null then raw_line end as raw_line,
    ${columns.map(({ column, i }) => `${valueOf(i)} as ${sqlIdentifier(column.name)}`).join(',\n    ')}
from checked`;
}

const jsonColumns = (table: LandingTableDefinition): string =>
  `{${table.columns.map((c) => `${sqlString(c.name)}: 'JSON'`).join(', ')}}`;

const fileList = (files: string[]): string => `[${files.map((f) => sqlString(literalPath(f))).join(', ')}]`;

/** The error() message of a record that breaks a rule in a strict pass (recordsPassSql). */
export const RULE_BROKEN = 'landing record breaks a rule';

/**
 * True when a record's value for a column breaks its rules, from the value's JSON text and that text
 * cast to the column type: missing when required, or present (not JSON null) with a wrong type or out
 * of range. The cheap test of the records pass; the line-by-line parse names the reason.
 */
function recordBroken(column: ColumnDefinition, text: string, value: string): string {
  const present = `(${text} is not null and ${text} <> 'null')`;
  const wrong = valueBroken(column, text, value);
  return column.required ? `(not ${present} or ${wrong})` : `(${present} and ${wrong})`;
}

/** A column's value from its JSON text: a string without its quotes (only one with an escape needs a parse),
 * a number cast. */
function typedFromText(column: ColumnDefinition, text: string): string {
  if (column.type !== 'string') return `try_cast(${text} as ${DUCKDB_TYPE[column.type]})`;
  return `case when left(${text}, 1) <> '"' then null when contains(${text}, '\\') then json_extract_string(${text}, '$') else substr(${text}, 2, length(${text}) - 2) end`;
}

/**
 * One pass over landing JSON-lines files that checks every record against the column rules and casts it
 * to the column types: rows (source_file, typed columns in DDL order). Each file is read from `path` and
 * named by `key`, its key in the lake.
 *
 * - strict: the reader reads strictly (a line that is not JSON, or repeats a key, raises) and a record
 *   that breaks a rule raises error(RULE_BROKEN) in a column every written row computes, so the pass
 *   succeeds only when every record of every file is valid. It cannot see a line that is JSON but no
 *   object (it reads as a record of nulls): a table needs a required column (requiresLineByLine).
 * - lenient: the reader skips what it cannot parse (ignore_errors) and each row says whether it breaks
 *   a rule (`broken`); with the file's line count this tells a clean file from one to parse line by line.
 */
export function recordsPassSql(
  table: LandingTableDefinition,
  files: { path: string; key: string }[],
  mode: 'strict' | 'lenient',
): string {
  const columns = table.columns.map((column, index) => ({ column, i: index + 1 }));
  const texts = columns.map(({ column, i }) => `${sqlIdentifier(column.name)}::varchar as ${textOf(i)}`);
  const values = columns.map(({ column, i }) => `${typedFromText(column, textOf(i))} as ${valueOf(i)}`);
  const broken = columns.map(({ column, i }) => recordBroken(column, textOf(i), valueOf(i))).join('\n          or ');
  const output = columns.map(({ column, i }) =>
    mode === 'strict' && i === 1
      ? `case when broken then error(${sqlString(RULE_BROKEN)}) else ${valueOf(i)} end as ${sqlIdentifier(column.name)}`
      : `${valueOf(i)} as ${sqlIdentifier(column.name)}`,
  );
  const keys = files.map((f) => `(${sqlString(f.path)}, ${sqlString(f.key)})`).join(', ');
  const options = mode === 'lenient' ? ', ignore_errors = true' : '';
  return `
with source_keys as (
    select * from (values ${keys}) as v(filename, source_file)
),
texts as (
    select filename, ${texts.join(', ')}
    from read_json(${fileList(files.map((f) => f.path))}, format = 'newline_delimited', columns = ${jsonColumns(table)},
                   filename = true${options})
),
checked as (
    select *, (${broken}) as broken
    from (select *, ${values.join(', ')} from texts)
)
select k.source_file, ${mode === 'lenient' ? 'c.broken, ' : ''}${output.join(', ')}
from checked as c
join source_keys as k on k.filename = c.filename`;
}

/**
 * The strict pass cannot tell a line that is JSON but no object from a record: it reads one as a record
 * of nulls, which a required column rejects. A table without one is checked line by line only.
 */
export function requiresLineByLine(table: LandingTableDefinition): boolean {
  return !table.columns.some((c) => c.required);
}

/** A SELECT of no rows with a landing table's typed columns (after source_file). */
export function emptyRecordsSql(table: LandingTableDefinition): string {
  const columns = table.columns.map((c) => `null::${DUCKDB_TYPE[c.type]} as ${sqlIdentifier(c.name)}`);
  return `select null::varchar as source_file, ${columns.join(', ')} where false`;
}
