import path from 'node:path';
import type { LakeSummary } from '../../lake/summary';
import type { ExecutionResult } from '../../stand-ins/step-functions/execution';
import { formatTable, seconds } from './format';

/** What `stedi run` prints after the per-job and per-check lines, when not --json. */
export interface RunReport {
  status: ExecutionResult['status'];
  summary: LakeSummary;
  /** The lake as given (--lake), so the commands printed can be pasted as they are. */
  lakeArgument: string;
  lakeRoot: string;
  elapsedMs: number;
  /** How this CLI was started: `node bin/stedi.js` in a checkout, `stedi` once installed. */
  invocation?: string;
}

/** The command that started this process, as a user would type it again. */
export function cliInvocation(argv: string[] = process.argv, cwd = process.cwd()): string {
  const script = argv[1];
  if (!script || !script.endsWith('.js')) return 'stedi';
  const relative = path.relative(cwd, script);
  return `node ${relative.startsWith('..') ? script : relative}`;
}

/** A shell word: as it is when it needs no quotes, else in single quotes. */
const shellWord = (word: string): string => (/^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`);

/** The tables, the outcome, and where to look next: the lake, `stedi query`, `stedi tables`, `stedi quarantine`. */
export function formatRunReport(report: RunReport): string[] {
  const { tables, quarantined, emailCaseMismatches } = report.summary;
  const stedi = report.invocation ?? cliInvocation();
  const lake = `--lake ${shellWord(report.lakeArgument)}`;
  const quarantinedLines = Object.values(quarantined).reduce((a, b) => a + b, 0);
  const lines = [
    '',
    formatTable(
      ['table', 'rows'],
      Object.entries(tables).map(([table, { rows }]) => ({ table, rows })),
    ),
  ];
  if (quarantinedLines > 0)
    lines.push(
      '',
      `quarantined landing lines: ${Object.entries(quarantined)
        .filter(([, n]) => n > 0)
        .map(([d, n]) => `${n} ${d}`)
        .join(', ')}`,
    );
  if (emailCaseMismatches > 0)
    lines.push(
      '',
      `accelerometer readings left out because their user matches a customer's email only when case is ignored: ${emailCaseMismatches} (emails join exactly as written; see docs/architecture.md)`,
    );
  lines.push(
    '',
    `${report.status} in ${seconds(report.elapsedMs)}`,
    '',
    `The lake is in ${report.lakeRoot} (Parquet tables under <dataset>/<zone>/). Next:`,
    `  ${stedi} query "select count(*) from machine_learning_curated" ${lake}`,
    `  ${stedi} tables ${lake}`,
  );
  if (quarantinedLines > 0)
    lines.push(`  ${stedi} quarantine ${lake}    # the ${quarantinedLines} landing line(s) the run rejected, and why`);
  return lines;
}
