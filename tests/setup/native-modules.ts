/**
 * jest's global setup: loads DuckDB's native binding once, before any test.
 *
 * Node loads a native module once per process, and jest hands `.node` files to Node's own require, so every
 * test file shares it. Its N-API init creates a resource (DuckDBNapiRefReaper) that lives as long as the
 * process without keeping it alive (`node -e "require('@duckdb/node-api')"` exits at once), but
 * `--detectOpenHandles` (which runs every test in this process) counts a native resource with no `hasRef`
 * as open, and blamed it on whichever test loaded DuckDB first. Loaded here, it belongs to no test, and the
 * report names only what tests leave open.
 */
export default async function loadNativeModules(): Promise<void> {
  await import('@duckdb/node-api');
}
