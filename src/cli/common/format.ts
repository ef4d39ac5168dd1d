import { isUtf8 } from 'node:buffer';
import type { ExecutionEvent } from '../../stand-ins/step-functions/execution';
import { required } from '../../required';

/**
 * Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts the sequences that
 * recolour, move the cursor or retitle the window), DEL, and the bidirectional controls that reorder
 * what follows them.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * Text as the terminal should show it: each character of UNPRINTABLE escaped (\t, \n, \r, \x1b, \u202e),
 * so a landing line or a value can neither drive the terminal nor hide what follows it. `--json` gives the
 * text exactly.
 */
export const printable = (text: string): string =>
  text.replace(UNPRINTABLE, (ch) => {
    const code = ch.charCodeAt(0);
    return (
      SHORT_ESCAPES[ch] ??
      (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
    );
  });

/**
 * Bytes that are not all UTF-8 as text: each valid UTF-8 character as itself, each byte that is not part
 * of one as \xHH (so a quarantined line that is not UTF-8 reads as the line, its bad bytes named).
 */
export function bytesAsText(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i] ?? 0;
    const size =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead <= 0xdf
          ? 2
          : lead >= 0xe0 && lead <= 0xef
            ? 3
            : lead >= 0xf0 && lead <= 0xf4
              ? 4
              : 0;
    const character = bytes.subarray(i, i + size);
    if (size > 0 && character.length === size && isUtf8(character)) {
      out += character.toString('utf8');
      i += size;
    } else {
      out += `\\x${lead.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

/** Plain-text tables for the terminal; text escaped as `printable` does. */
export function formatTable(columns: string[], rows: Record<string, unknown>[]): string {
  // Rows hold JSON-friendly values: primitives as text, lists and structs as JSON.
  const cell = (v: unknown) =>
    v === null || v === undefined
      ? 'NULL'
      : typeof v === 'string'
        ? printable(v)
        : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint'
          ? String(v)
          : JSON.stringify(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const isNumber = columns.map((c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number' || r[c] === null));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const width = required(widths[i], `the width of column ${i}`);
        return isNumber[i] ? v.padStart(width) : v.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join('\n');
}

/** A UTC time as 17 digits, to the millisecond (20261130120000123): names executions by when they started. */
export const compactTimestamp = (date = new Date()): string =>
  date
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 17);

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;

/**
 * The rows a job read, per input table: `2683 accelerometer_landing + 15 customer_trusted`. Not one
 * sum: a job's inputs are different things (readings and the customers they are checked against). A
 * job that appended read only the new rows of one input, marked so.
 */
export const rowsPerInput = (rowsIn: Partial<Record<string, number>>, newRowsOnly?: string): string =>
  Object.entries(rowsIn)
    .map(([table, rows]) => `${rows} ${table}${table === newRowsOnly ? ' (new rows only)' : ''}`)
    .join(' + ');

/**
 * Prints the state machine's progress as it runs: one line per job finished (rebuilt, appended or skipped)
 * and per check, retries and alerts; each state entered (`→ State`) only when verbose.
 */
export function printProgress(
  log: (line: string) => void,
  { verbose = false }: { verbose?: boolean } = {},
): (event: ExecutionEvent) => void {
  return (event) => {
    if (event.type === 'state-entered') {
      if (verbose) log(`  → ${event.state}`);
    } else if (event.type === 'state-retried') log(`  ↻ ${event.state}: retry ${event.attempt}`);
    else if (event.type === 'job-failed') log(`  ✗ ${event.job}: ${event.error}: ${event.cause}`);
    else if (event.type === 'run-published') {
      if (verbose) log(`  ✓ published: main moved to the run's tables (branch ${event.branch})`);
    } else if (event.type === 'alert') process.stderr.write(`ALERT ${event.alert.subject}\n${event.alert.message}\n`);
    else if (event.type === 'check-finished')
      log(
        event.error !== undefined
          ? `  ✗ check ${event.check}: could not run: ${event.error}`
          : event.violations
            ? `  ✗ check ${event.check}: ${event.violations} violating row(s)`
            : `  ✓ check ${event.check}`,
      );
    else {
      const r = event.run.result!;
      const q = Object.entries(r.quarantined)
        .filter(([, n]) => n)
        .map(([d, n]) => `, ${n} ${d} line(s) quarantined`)
        .join('');
      const files = Object.entries(r.landingFiles)
        .map(([d, n]) => `; ${d} landing files: ${n.checked} checked, ${n.reused} reused, ${n.removed} removed`)
        .join('');
      const what = r.skipped
        ? `skipped, inputs unchanged (${rowsPerInput(r.rowsIn)} rows in, ${r.rowsOut} out)`
        : r.appended !== undefined
          ? `appended, ${rowsPerInput(r.rowsIn, r.appendedInput)} rows in, ${r.appended} added, ${r.rowsOut} out${q}`
          : `rebuilt, ${rowsPerInput(r.rowsIn)} rows in, ${r.rowsOut} out${q}`;
      log(`  ✓ ${r.job}: ${what}${files} (${seconds(r.durationMs)})`);
      for (const { file, reason } of r.skippedLandingFiles)
        process.stderr.write(`warning: landing file ${printable(file)} not read: ${printable(reason)}\n`);
    }
  };
}
