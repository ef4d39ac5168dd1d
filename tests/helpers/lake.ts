import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ALL_TABLES, DATASETS, landingPrefix } from '../../src/definition/layout';
import { LocalEngine, RunParameters } from '../../src/build/engine';
import { Lake } from '../../src/lake/lake';
import { QuerySession, Row } from '../../src/stand-ins/athena/query';
import { ConsentPolicy, JOB_NAMES } from '../../src/definition/pipeline';

export const TEST_SALT = 'test-salt-0123456789abcdef';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `stedi-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function params(consentPolicy: ConsentPolicy = 'any', runId = 'test-run'): RunParameters {
  return { runId, consentPolicy, piiSalt: TEST_SALT };
}

/** Runs the five jobs in order straight on the engine (the state machine has its own tests). */
export async function runPipeline(lake: Lake, consentPolicy: ConsentPolicy = 'any', runId = 'test-run') {
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB' });
  try {
    const results = [];
    for (const job of JOB_NAMES) results.push(await engine.runJob(job, params(consentPolicy, runId)));
    return results;
  } finally {
    engine.close();
  }
}

/** Runs one query against the lake's catalog. */
export async function query(lake: Lake, sql: string): Promise<Row[]> {
  const session = await QuerySession.open(lake, sql);
  try {
    return (await session.query(sql)).rows;
  } finally {
    session.close();
  }
}

/** Every catalog table and quarantine view of a lake, each as its rows in JSON, sorted: equal dumps, equal lakes. */
export async function dumpLake(lake: Lake): Promise<Record<string, string[]>> {
  const views = [...ALL_TABLES, ...DATASETS.map((d) => `${d}_quarantine`)];
  const session = await QuerySession.open(lake);
  try {
    const { tables } = await lake.readCatalog();
    // The catalog's counts too: the run summary's rows and quarantined lines come from them.
    const dump: Record<string, string[]> = {
      catalog: ALL_TABLES.map((t) => `${t} ${tables[t]?.rows} ${tables[t]?.rejected ?? ''}`),
    };
    for (const view of views)
      dump[view] = (await session.query(`select * from ${view}`)).rows.map((r) => JSON.stringify(r)).sort();
    return dump;
  } finally {
    session.close();
  }
}

/** The dump of a fresh lake holding only this lake's landing files, after a full run under `consentPolicy`. */
export async function freshDump(lake: Lake, consentPolicy: ConsentPolicy): Promise<Record<string, string[]>> {
  const dir = tempDir('fresh');
  try {
    for (const dataset of DATASETS) {
      const landing = lake.path(landingPrefix(dataset));
      if (existsSync(landing)) cpSync(landing, path.join(dir, landingPrefix(dataset)), { recursive: true });
    }
    const fresh = new Lake(dir);
    await runPipeline(fresh, consentPolicy, 'fresh');
    return await dumpLake(fresh);
  } finally {
    removeDir(dir);
  }
}
