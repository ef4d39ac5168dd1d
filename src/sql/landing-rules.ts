/*
 * Landing rules both engines apply to every line, beside the column types of glue/tables/. The Glue runner
 * (glue/run_sql_job.py) holds the same numbers; the shared cases of tests/fixtures/landing-cases/ test
 * both ends of each on both engines.
 */

/**
 * The plausible epoch milliseconds of a timestamp column (a bigint column whose DDL comment says
 * "epoch ms"): from 1970-01-01T00:00:00Z (0) up to, not including, 2100-01-01T00:00:00Z. A value outside
 * is rejected with a reason of its own; inside, the date conversions of both engines work (Spark's
 * timestamp_millis and DuckDB's overflow on 9223372036854775807, a valid bigint).
 */
export const EPOCH_MS_RANGE = { min: 0, end: Date.UTC(2100, 0, 1) } as const;
export const EPOCH_MS_RANGE_TEXT = 'from 1970-01-01 to 2100-01-01';

/**
 * The longest landing line read as a record, in bytes: DuckDB's JSON reader's default maximum object
 * size (16 MiB). A longer line is rejected as too long without being parsed (a record is a few hundred
 * bytes); the quarantine keeps it whole.
 */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
