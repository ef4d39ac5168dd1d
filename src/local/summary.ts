import { DATASETS, Dataset, LANDING_TABLES, TableName, ALL_TABLES } from '../layout';
import { Lake } from './lake';

export interface LakeSummary {
  tables: Record<TableName, { rows: number }>;
  quarantined: Record<Dataset, number>;
}

/** Row counts of all eight catalog tables and the quarantine counts, as the catalog holds them now. */
export async function summarize(lake: Lake): Promise<LakeSummary> {
  const catalog = await lake.readCatalog();
  const tables = Object.fromEntries(ALL_TABLES.map((t) => [t, { rows: catalog.tables[t]?.rows ?? 0 }])) as LakeSummary['tables'];
  const quarantined = Object.fromEntries(
    DATASETS.map((d, i) => [d, catalog.tables[LANDING_TABLES[i]]?.rejected ?? 0]),
  ) as Record<Dataset, number>;
  return { tables, quarantined };
}
