import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * DuckDB macros for the Spark SQL functions the job files use, so the files stay Spark SQL
 * and run unchanged on both engines. Spark runs with spark.sql.session.timeZone=UTC, and
 * DuckDB's epoch_ms gives a UTC timestamp, so dates agree.
 */
export const SPARK_MACROS: readonly string[] = [
  // sha2(expr, 256): hex SHA-256, as Spark's; the jobs only ask for 256 bits.
  `create or replace macro sha2(value, bits) as
     case when bits = 256 then sha256(value) else error('sha2: only 256 bits are supported locally') end`,
  // timestamp_millis(ms): the timestamp ms milliseconds after the epoch.
  `create or replace macro timestamp_millis(ms) as epoch_ms(ms)`,
  // to_date(ts): the date of a timestamp.
  `create or replace macro to_date(ts) as cast(ts as date)`,
];

export async function installSparkDialect(connection: DuckDBConnection): Promise<void> {
  for (const macro of SPARK_MACROS) await connection.run(macro);
}
