import { createHash } from 'node:crypto';
import { Stats, closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Lake } from './lake';
import { FileRecord, VERSIONS_DIR } from './versions';

/**
 * A committed file of the lake is damaged (unreadable, cut short, not what was committed). The message
 * names it and says how to repair it.
 */
export class LakeDamagedError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `${file} is damaged (${reason}): run \`stedi doctor\` to see what is damaged, \`stedi doctor --repair\` to rebuild it from landing`,
    );
    this.name = 'LakeDamagedError';
  }
}

/** The DuckDB messages that mean a file it read is not a whole Parquet (or JSON) file. */
const DAMAGE_SIGNS =
  /magic bytes|corrupt|invalid parquet|too small to be a parquet|no such file|not a parquet|out of range|Invalid Input Error: File/i;

/**
 * An error of a read of the lake's committed files, with the damaged file named and the repair said,
 * when its message names a file under the lake's _versions/ and sounds like damage; otherwise the error.
 */
export function explainDamage(lake: Lake, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof LakeDamagedError) return error;
  const root = `${lake.root}${path.sep}${VERSIONS_DIR}${path.sep}`;
  const at = error.message.indexOf(root);
  if (at < 0 || !DAMAGE_SIGNS.test(error.message)) return error;
  const file = /^[^'"\s]+/.exec(error.message.slice(at))?.[0] ?? root;
  return new LakeDamagedError(file, error.message.split('\n')[0] ?? error.message);
}

/** Size and SHA-256 of each file under a version folder; one hard-linked from the previous version keeps its record. */
export function recordFiles(
  dir: string,
  previous?: { dir: string; files: Record<string, FileRecord> },
): Record<string, FileRecord> {
  const records: Record<string, FileRecord> = {};
  for (const relative of filesUnder(dir)) {
    const file = path.join(dir, relative);
    const stats = statSync(file);
    const before = previous?.files[relative];
    if (before && sameFile(stats, path.join(previous.dir, relative))) {
      // The same file as in the version before: never recorded anew, so damage is not carried in as sound.
      if (before.size !== stats.size)
        throw new LakeDamagedError(
          path.join(previous.dir, relative),
          `${stats.size} bytes, ${before.size} when committed`,
        );
      records[relative] = before;
      continue;
    }
    records[relative] = { size: stats.size, sha256: sha256Of(file) };
  }
  return records;
}

function sameFile(stats: Stats, other: string): boolean {
  try {
    const o = statSync(other);
    return o.ino === stats.ino && o.dev === stats.dev;
  } catch {
    return false;
  }
}

export function sha256Of(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Every file under a folder, as paths relative to it, sorted. */
export function filesUnder(dir: string, relative = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(dir, child));
    else found.push(child);
  }
  return found.sort();
}
