import { ALL_TABLES, DATASETS, Dataset, TableName, landingTableOf } from '../definition/layout';
import { Lake } from './lake';

export interface LakeSummary {
  tables: Record<TableName, { rows: number }>;
  quarantined: Record<Dataset, number>;
  /**
   * Accelerometer readings left out because their user matches a customer's email only ignoring case
   * (glue/queries/email_case_mismatches.sql, the accelerometer job's diagnostic).
   */
  emailCaseMismatches: number;
}

/** Row counts of all eight catalog tables and the quarantine counts, as the catalog holds them now. */
export async function summarize(lake: Lake): Promise<LakeSummary> {
  const catalog = await lake.readCatalog();
  const tables = Object.fromEntries(
    ALL_TABLES.map((t) => [t, { rows: catalog.tables[t]?.rows ?? 0 }]),
  ) as LakeSummary['tables'];
  const quarantined = Object.fromEntries(
    DATASETS.map((d) => [d, catalog.tables[landingTableOf(d)]?.rejected ?? 0]),
  ) as Record<Dataset, number>;
  const emailCaseMismatches = catalog.tables.accelerometer_trusted?.diagnostics?.email_case_mismatches ?? 0;
  return { tables, quarantined, emailCaseMismatches };
}
