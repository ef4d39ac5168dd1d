/** A result set as Athena returns it for a SELECT: the column names as the first row, every value as text. */
export interface AthenaResultSet {
  columns: [name: string, type: string][];
  rows: (string | null)[][];
}

/**
 * Queues results in the moto server's Athena: moto runs no SQL, so each query started from now on
 * gets the next of these, in the order the server receives them (moto's
 * /moto-api/static/athena/query-results). A NULL is a Data entry without VarCharValue, as in Athena.
 */
export async function queueAthenaResults(endpoint: string, results: AthenaResultSet[]): Promise<void> {
  const cell = (v: string | null) => (v === null ? {} : { VarCharValue: v });
  const body = {
    results: results.map((r) => ({
      rows: [{ Data: r.columns.map(([name]) => cell(name)) }, ...r.rows.map((row) => ({ Data: row.map(cell) }))],
      column_info: r.columns.map(([Name, Type]) => ({
        CatalogName: 'hive',
        SchemaName: '',
        TableName: '',
        Name,
        Label: Name,
        Type,
        Precision: 0,
        Scale: 0,
        Nullable: 'UNKNOWN',
        CaseSensitive: Type === 'varchar',
      })),
    })),
  };
  const response = await fetch(`${endpoint}/moto-api/static/athena/query-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`moto refused the Athena results: ${response.status}`);
}
