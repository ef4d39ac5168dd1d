import { GlueClient, paginateGetTables } from '@aws-sdk/client-glue';

/** A table of the Glue Data Catalog, as `stedi tables --stage` lists it. */
export interface CatalogListing {
  name: string;
  location: string;
  /** json, parquet, ... (the table's classification, else read from its formats), or view. */
  format: string;
  columns: { name: string; type: string }[];
  partitionKeys: string[];
  updatedAt?: string;
  isView: boolean;
}

/** Every table of the database, sorted by name. */
export async function listCatalogTables(glue: GlueClient, database: string): Promise<CatalogListing[]> {
  const tables: CatalogListing[] = [];
  for await (const page of paginateGetTables({ client: glue }, { DatabaseName: database })) {
    for (const t of page.TableList ?? []) {
      const sd = t.StorageDescriptor ?? {};
      const isView = t.TableType === 'VIRTUAL_VIEW';
      tables.push({
        name: t.Name ?? '',
        location: sd.Location ?? '',
        format: isView ? 'view' : formatOf(t.Parameters ?? {}, sd.InputFormat, sd.SerdeInfo?.SerializationLibrary),
        columns: (sd.Columns ?? []).map((c) => ({ name: c.Name ?? '', type: c.Type ?? '' })),
        partitionKeys: (t.PartitionKeys ?? []).map((k) => k.Name ?? ''),
        updatedAt: (t.UpdateTime ?? t.CreateTime)?.toISOString(),
        isView,
      });
    }
  }
  return tables.sort((a, b) => a.name.localeCompare(b.name));
}

function formatOf(parameters: Record<string, string>, inputFormat?: string, serde?: string): string {
  if (parameters.classification) return parameters.classification.toLowerCase();
  const described = `${inputFormat ?? ''} ${serde ?? ''}`.toLowerCase();
  if (described.includes('parquet')) return 'parquet';
  if (described.includes('json')) return 'json';
  return inputFormat ?? '';
}
