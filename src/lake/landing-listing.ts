import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

/** A `*.json` entry of a folder that is not read as a file, and why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

export interface JsonFiles {
  /** Full paths, sorted by name. */
  files: string[];
  skipped: SkippedFile[];
}

/**
 * The `*.json` files of a folder (none when it does not exist), sorted by name. A symbolic link to a file
 * is read as that file: S3 has no links, so locally one can only be a user's way to land a big file
 * without copying it, and following it loses nothing: the landing zone is only read, the file's identity
 * (validated.ts) is its target's, so a changed target is checked again, and `stedi run --landing` already
 * copies a linked file's content. An entry that cannot be read as a file (a link to nothing, to a folder,
 * a link loop, a folder named *.json) is returned in `skipped` with the reason, to be reported: never
 * passed over silently.
 */
export function jsonFilesIn(dir: string): JsonFiles {
  const listing: JsonFiles = { files: [], skipped: [] };
  if (!existsSync(dir)) return listing;
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.name.endsWith('.json'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isFile()) listing.files.push(file);
    else if (entry.isSymbolicLink()) {
      const problem = linkProblem(file);
      if (problem) listing.skipped.push({ file, reason: problem });
      else listing.files.push(file);
    } else if (entry.isDirectory()) listing.skipped.push({ file, reason: 'a folder, not a file' });
    else listing.skipped.push({ file, reason: 'not a regular file' });
  }
  return listing;
}

/** Why a symbolic link cannot be read as a file, or undefined when it leads to one. */
function linkProblem(link: string): string | undefined {
  let target = '?';
  try {
    target = readlinkSync(link);
    return statSync(link).isFile() ? undefined : `a symbolic link to ${target}, which is not a file`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `a symbolic link to ${target}, which does not exist`;
    if (code === 'ELOOP') return `a symbolic link to ${target}, which leads round in a loop`;
    return `a symbolic link to ${target}, which cannot be read: ${(error as Error).message}`;
  }
}
