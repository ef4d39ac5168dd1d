import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalEngine, RunParameters } from '../../src/local/engine';
import { Lake } from '../../src/local/lake';
import { QuerySession, Row } from '../../src/local/query';
import { ConsentPolicy, JOB_NAMES } from '../../src/pipeline';

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
