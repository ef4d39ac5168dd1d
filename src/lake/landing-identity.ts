import { BigIntStats, copyFileSync, mkdtempSync, statSync } from 'node:fs';
import path from 'node:path';
import { Dataset, landingPrefix } from '../definition/layout';
import { sha256Of } from './lake-files';
import type { Lake, SkippedFile } from './lake';

/**
 * How a landing file is known unchanged without checking it again. Locally its identity is its size,
 * modification and change times in nanoseconds, inode and device: a file replaced by a rename (as
 * `stedi drop` does) has a new inode; one rewritten in place a new mtime and ctime, unless within the
 * same tick of the file system's clock as the recorded ones. An identity taken within that tick is
 * "racy" (as git's racily clean entries): it cannot vouch for the content, so the entry records the
 * SHA-256 of the bytes it checked instead, the local equivalent of an S3 ETag, and is reused only while
 * the file's content has that hash.
 */
export interface FileIdentity {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
}

/** A landing file as found now. */
export interface LandingStat {
  name: string;
  path: string;
  identity: FileIdentity;
  racy: boolean;
  /** SHA-256 of its content: known for the files whose entry must be confirmed by content (confirmByContent). */
  sha256?: string;
}

/**
 * The landing files of a dataset with their identities, taken before any is read (a symbolic link's are
 * its target's), and the entries that cannot be read as files (jsonFilesIn), keyed as S3 would key them.
 */
export async function statLandingFiles(
  lake: Lake,
  dataset: Dataset,
): Promise<{ found: LandingStat[]; skipped: SkippedFile[] }> {
  const now = BigInt(lake.clock()) * 1_000_000n;
  const found: LandingStat[] = [];
  const listing = await lake.landingListing(dataset);
  const skipped = listing.skipped.map((s) => ({ ...s, file: `${landingPrefix(dataset)}${path.basename(s.file)}` }));
  for (const file of listing.files) {
    let stats: BigIntStats;
    try {
      stats = statSync(file, { bigint: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed since it was listed
      throw error;
    }
    const identity = identityOf(stats);
    found.push({ name: path.basename(file), path: file, identity, racy: isRacy(identity, now) });
  }
  return { found, skipped };
}

export function identityOf(stats: BigIntStats): FileIdentity {
  return {
    size: String(stats.size),
    mtimeNs: String(stats.mtimeNs),
    ctimeNs: String(stats.ctimeNs),
    ino: String(stats.ino),
    dev: String(stats.dev),
  };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}

/**
 * A file system stamps times from a clock that advances in ticks (a few milliseconds on Linux; whole
 * seconds on some): a file rewritten in place in the same tick as its recorded change, with the same
 * size, keeps its identity. An identity taken less than a tick after the file's last change (mtime or
 * ctime) cannot vouch for its content. The tick is taken to be 100 ms, or 2 s when both times have no
 * fraction of a second.
 */
export function isRacy(identity: FileIdentity, statTimeNs: bigint): boolean {
  const mtime = BigInt(identity.mtimeNs);
  const ctime = BigInt(identity.ctimeNs);
  const second = 1_000_000_000n;
  const tick = mtime % second === 0n && ctime % second === 0n ? 2n * second : 100_000_000n;
  const latest = mtime > ctime ? mtime : ctime;
  return latest > statTimeNs - tick;
}

/** Hashes the files whose committed entry was recorded racy: planSync reuses one while its content is unchanged. */
export function confirmByContent(landing: LandingStat[], racyEntries: ReadonlySet<string>): LandingStat[] {
  return landing.map((file) => (racyEntries.has(file.name) ? { ...file, sha256: sha256OfFile(file.path) } : file));
}

/**
 * The bytes a racy file is checked from: read once, hashed, and written to scratch, so the hash its entry
 * records is that of the content checked even if the file changes meanwhile.
 */
export function pinContent(file: LandingStat, scratch: string): LandingStat & { checkedPath: string } {
  const checkedPath = path.join(mkdtempSync(path.join(scratch, 'pinned-')), 'file.json');
  copyFileSync(file.path, checkedPath);
  return { ...file, sha256: sha256Of(checkedPath), checkedPath };
}

function sha256OfFile(file: string): string | undefined {
  try {
    return sha256Of(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // gone since it was listed
    throw error;
  }
}
