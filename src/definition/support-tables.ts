import { DATASETS, Dataset, TABLE_BUILDS_PREFIX, quarantinePrefix } from './layout';

/**
 * Catalog tables beside the pipeline's eight, over files the jobs write: each dataset's quarantine
 * (the lines its landing check rejected) and the table build log that glue/checks/ read. On AWS the
 * stack defines them in the Glue Data Catalog (deploy/operate-resources.js) so that Athena reads
 * them; locally they are bound from the same keys of the lake.
 */
export interface SupportTable {
  name: string;
  /** Key prefix inside the bucket or lake. */
  location: string;
  columns: { name: string; type: 'string' | 'bigint'; comment: string }[];
  description: string;
}

export const quarantineTableName = (dataset: Dataset): string => `${dataset}_quarantine`;

export const QUARANTINE_COLUMNS: SupportTable['columns'] = [
  { name: 'source_file', type: 'string', comment: 'key of the landing file, e.g. customer/landing/customer-1.json' },
  { name: 'line_number', type: 'bigint', comment: 'line of that file, from 1' },
  { name: 'reason', type: 'string', comment: 'why the line was rejected' },
  {
    name: 'line',
    type: 'string',
    comment: 'the line exactly as it was (its bytes in base64 when line_encoding is base64)',
  },
  {
    name: 'line_encoding',
    type: 'string',
    comment: 'text: line is the line as it was; base64: the line is not UTF-8, line holds its bytes in base64',
  },
];

export const TABLE_BUILDS_TABLE = 'table_builds';

export const TABLE_BUILDS_COLUMNS: SupportTable['columns'] = [
  { name: 'table_name', type: 'string', comment: 'the derived table' },
  { name: 'run_id', type: 'string', comment: 'the run (execution name) that last rebuilt it' },
  { name: 'rows_before', type: 'bigint', comment: 'its rows before that rebuild; null when it had no version' },
  { name: 'rows_after', type: 'bigint', comment: 'the rows that rebuild wrote' },
  {
    name: 'consent_policy',
    type: 'string',
    comment: 'the consent policy of the run that rebuilt it',
  },
  { name: 'built_at', type: 'string', comment: 'when the rebuild finished, ISO 8601 UTC' },
  {
    name: 'empty_inputs',
    type: 'string',
    comment: 'the input tables of that rebuild that held no rows, comma-separated; empty when each had rows',
  },
];

export function supportTables(): SupportTable[] {
  return [
    ...DATASETS.map((dataset) => ({
      name: quarantineTableName(dataset),
      location: quarantinePrefix(dataset),
      columns: QUARANTINE_COLUMNS,
      description: `Landing lines of ${dataset} the last run rejected, with file, line number and reason`,
    })),
    {
      name: TABLE_BUILDS_TABLE,
      location: TABLE_BUILDS_PREFIX,
      columns: TABLE_BUILDS_COLUMNS,
      description: 'One row per derived table: the run that last rebuilt it and its row counts before and after',
    },
  ];
}
