import { statSync } from 'node:fs';
import { UsageError } from './errors';

/**
 * Refuses what `stedi drop` must not drop, locally and with --stage alike, before anything is touched:
 * a missing file, a folder, anything but a regular file, and a name not ending in .json, which the
 * bucket's notifications (suffix .json) and the landing tables never read.
 */
export function checkDropFile(file: string): void {
  let stats;
  try {
    stats = statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`${file}: no such file`);
    throw error;
  }
  if (stats.isDirectory())
    throw new UsageError(
      `${file} is a folder: give one JSON-lines file (\`stedi run --landing DIR\` drops a folder's files)`,
    );
  if (!stats.isFile()) throw new UsageError(`${file}: not a regular file`);
  if (!file.endsWith('.json'))
    throw new UsageError(`${file}: the pipeline starts only for .json files and reads only them; rename it first`);
}
