import { AthenaClient } from '@aws-sdk/client-athena';
import { runAthenaQuery } from '../../aws/athena';
import { awsClientConfig } from '../../aws/clients';
import { DATASETS, Dataset } from '../../definition/layout';
import { quarantineTableName } from '../../definition/support-tables';
import { bytesAsText, formatTable, printable } from '../common/format';
import type { Where } from '../common/options';
import { Row, athenaTarget, existingLake } from './targets';

const out = (line: string) => process.stdout.write(`${line}\n`);
// --- stedi quarantine ---------------------------------------------------------------------------------

/** One SELECT over the quarantine tables, the same text on DuckDB (the lake's views) and on Athena. */
export function quarantineSql(datasets: readonly Dataset[]): string {
  const parts = datasets.map(
    (d) =>
      `select '${d}' as dataset, q.source_file, q.line_number, q.reason, q.line, q.line_encoding from ${quarantineTableName(d)} as q`,
  );
  return `${parts.join('\nunion all\n')}\norder by dataset, source_file, line_number`;
}

export async function quarantineCommand(
  where: Where,
  options: { dataset?: Dataset; json?: boolean; width: number },
): Promise<number> {
  const sql = quarantineSql(options.dataset ? [options.dataset] : DATASETS);
  let rows: Row[];
  if ('stage' in where) {
    rows = (await runAthenaQuery(new AthenaClient(awsClientConfig()), await athenaTarget(where.stage), sql)).rows;
  } else {
    const lake = existingLake(where.lake);
    const { QuerySession } = await import('../../stand-ins/athena/query');
    const session = await QuerySession.open(lake, sql);
    try {
      rows = (await session.query(sql)).rows;
    } finally {
      session.close();
    }
  }
  if (options.json) {
    out(JSON.stringify(rows));
    return 0;
  }
  // Escaped before it is clipped: a landing line's escape sequences are shown, never sent to the terminal.
  const clip = (s: unknown) => {
    const text = printable(typeof s === 'string' ? s : s === null || s === undefined ? '' : JSON.stringify(s));
    return text.length > options.width ? `${text.slice(0, options.width - 1)}…` : text;
  };
  out(
    formatTable(
      ['dataset', 'file', 'line', 'reason', 'text'],
      rows.map((r) => ({
        dataset: r.dataset,
        file: r.source_file,
        line: r.line_number,
        reason: r.reason,
        text: clip(r.line_encoding === 'base64' ? bytesAsText(Buffer.from(String(r.line), 'base64')) : r.line),
      })),
    ),
  );
  out(`(${rows.length} rejected line${rows.length === 1 ? '' : 's'})`);
  return 0;
}
