import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { RunCommit, RunLog, logRun } from './run-log';

/**
 * Committed versions of a lake's keys, swapped in atomically.
 *
 * Every version of a key (a folder such as `customer/trusted/`) is written once into its own folder,
 * `_versions/<key>/<version>/`, and never changed. A commit writes a new snapshot, `_snapshots/g<N>/`:
 * the whole catalog (`catalog.json`) and, for every key, a symbolic link to its committed version
 * (named by the key with `/` written `%2F`, so a snapshot is one flat folder). Then
 * one rename, of the symbolic link `_current`, switches from the old snapshot to the new one: the single
 * commit point. Before it a reader sees the old catalog and the old data, after it the new ones, never
 * a mix and never nothing. The key layout of the bucket stays visible: `customer/trusted` is a link to
 * `_current/customer%2Ftrusted`, `_catalog.json` a link to `_current/catalog.json`; these links never
 * change once made.
 *
 * Any key can be versioned this way, a table folder or one file's output (`accelerometer/validated/x.json`),
 * as long as no key lies inside another. A snapshot holds a link per key, so a commit costs time in the
 * number of keys: fine for tens or hundreds, not for many thousands.
 *
 * Every file-system change here is synchronous, so that all of them happen on the process's main thread
 * in a fixed order (the crash tests kill a run at each one). A process crash (kill -9) at any instant
 * leaves the lake readable; power loss is not covered (nothing is fsynced).
 */

export const VERSIONS_DIR = '_versions';
export const SNAPSHOTS_DIR = '_snapshots';
export const CURRENT_LINK = '_current';
export const CATALOG_LINK = '_catalog.json';
export const SNAPSHOT_CATALOG = 'catalog.json';

/** A version folder's name: `v-<run>-<8 hex digits>`; nothing else under _versions/ looks like it. */
const VERSION_NAME = /^v-[A-Za-z0-9_.-]*-[0-9a-f]{8}$/;

export interface KeyVersion {
  id: string;
  /** The version this one replaced: kept until the next commit of the key, for readers that started before. */
  previous?: string;
  /**
   * Every file of the version (path relative to its folder) as committed: its size and SHA-256, which
   * `stedi doctor` checks. Absent on versions committed before it was recorded.
   */
  files?: Record<string, FileRecord>;
}

export interface FileRecord {
  size: number;
  sha256: string;
}

/** What a commit records: the versioned keys, the runs (run-log.ts), whatever the catalog holds beside them. */
export interface VersionedCatalog extends RunLog {
  /** How many commits the lake has seen; names the snapshot folder. */
  generation?: number;
  versions?: Record<string, KeyVersion>;
}

/** A key without its trailing slash: `customer/trusted/` → `customer/trusted`. */
export function normalizeKey(key: string): string {
  const k = key.replace(/\/+$/, '');
  if (!k || k.startsWith('/') || k.startsWith('_') || k.split('/').some((part) => part === '..' || part === '.'))
    throw new Error(`not a versionable lake key: ${key}`);
  return k;
}

/** A key's entry in a snapshot folder: one flat name per key. */
const snapshotEntry = (key: string): string => normalizeKey(key).replace(/%/g, '%25').replace(/\//g, '%2F');

/** The folder of a commit's snapshot: its catalog and a link per key. */
export const snapshotDir = (root: string, generation: number): string =>
  path.join(root, SNAPSHOTS_DIR, `g${generation}`);

export function versionDir(root: string, key: string, id: string): string {
  return path.join(root, VERSIONS_DIR, normalizeKey(key), id);
}

/** The lake's committed catalog, read through `_current`; undefined when nothing was committed this way. */
export function readCommitted<C extends VersionedCatalog>(root: string): C | undefined {
  // A commit's cleanup may remove the snapshot we just resolved: read again through the new link.
  for (let attempt = 0; ; attempt++) {
    let target: string;
    try {
      target = readlinkSync(path.join(root, CURRENT_LINK));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return JSON.parse(readFileSync(path.join(root, target, SNAPSHOT_CATALOG), 'utf8')) as C;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw error;
    }
  }
}

/**
 * Commits a new catalog whose `versions` already name the new versions (made with stage()). Atomic: the
 * rename of `_current` is the only step a reader can notice. Afterwards old snapshots and versions that
 * no key refers to any more (as current or previous version, or in a snapshot kept for a run) are removed.
 * With `run`, the commit is logged as that run's (run-log.ts).
 */
export function publish<C extends VersionedCatalog>(
  root: string,
  catalog: C,
  inFlight: ReadonlySet<string> = new Set(),
  run?: RunCommit,
): C {
  const committed = readCommitted<C>(root);
  const generation = Math.max(catalog.generation ?? 0, committed?.generation ?? 0) + 1;
  const next = { ...catalog, generation, ...(run ? logRun(catalog, run, generation) : {}) };
  const snapshot = snapshotDir(root, generation);
  removeTree(snapshot); // left by a crashed commit: never current
  mkdirSync(snapshot, { recursive: true });
  for (const [key, version] of Object.entries(next.versions ?? {})) {
    symlinkSync(path.relative(snapshot, versionDir(root, key, version.id)), path.join(snapshot, snapshotEntry(key)));
    ensureVisibleLink(root, key);
  }
  writeFileSync(path.join(snapshot, SNAPSHOT_CATALOG), `${JSON.stringify(next, null, 2)}\n`);
  replaceLink(path.join(root, CURRENT_LINK), path.relative(root, snapshot)); // the commit point
  ensureCatalogLink(root);
  collectGarbage(root, next, inFlight);
  return next;
}

/** A new, empty version folder for `key` (not visible to readers until published). */
export function stage(root: string, key: string, runId: string): { id: string; dir: string } {
  const id = `v-${runId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80)}-${randomBytes(4).toString('hex')}`;
  const dir = versionDir(root, key, id);
  mkdirSync(dir, { recursive: true });
  return { id, dir };
}

/** Sets `key`'s committed version in a catalog about to be published, remembering the one it replaces. */
export function withVersion<C extends VersionedCatalog>(catalog: C, key: string, id: string): C {
  const k = normalizeKey(key);
  const versions = { ...(catalog.versions ?? {}) };
  versions[k] = { id, ...(versions[k] ? { previous: versions[k].id } : {}) };
  return { ...catalog, versions };
}

/**
 * Puts the lake in order after a crash, before a writer starts: removes snapshots, versions and links
 * that no commit refers to, and makes the visible links. Readers never need it (they read `_current`).
 */
export function recoverVersions(root: string, inFlight: ReadonlySet<string> = new Set()): void {
  const committed = readCommitted(root);
  if (!committed) return;
  for (const key of Object.keys(committed.versions ?? {})) ensureVisibleLink(root, key);
  ensureCatalogLink(root);
  collectGarbage(root, committed, inFlight);
}

/** Replaces (or creates) a symbolic link atomically: a new link beside it, renamed over it. */
function replaceLink(link: string, target: string): void {
  const temporary = `${link}.next`;
  removeTree(temporary);
  symlinkSync(target, temporary);
  renameSync(temporary, link);
}

function isLinkTo(link: string, target: string): boolean {
  try {
    return lstatSync(link).isSymbolicLink() && readlinkSync(link) === target;
  } catch {
    return false;
  }
}

/**
 * `customer/trusted` → `../_current/customer%2Ftrusted`: made before the key's first commit, so it never
 * points at a missing version once that commit is visible (until then it resolves to nothing, as the
 * catalog has no such table yet).
 */
function ensureVisibleLink(root: string, key: string): void {
  const link = path.join(root, key);
  const target = path.relative(path.dirname(link), path.join(root, CURRENT_LINK, snapshotEntry(key)));
  if (isLinkTo(link, target)) return;
  if (existsSync(link) && !lstatSync(link).isSymbolicLink())
    throw new Error(`${link} is in the way of the lake's link to ${key}: move it out of the lake`);
  mkdirSync(path.dirname(link), { recursive: true });
  replaceLink(link, target);
}

function ensureCatalogLink(root: string): void {
  const link = path.join(root, CATALOG_LINK);
  const target = path.join(CURRENT_LINK, SNAPSHOT_CATALOG);
  if (!isLinkTo(link, target)) replaceLink(link, target);
}

/**
 * Removes old snapshots, versions no key refers to, and links left half-made by a crash. `inFlight`
 * names versions (`<key>/<id>`) staged by a transaction of this process that is still open: a run
 * stages its tables until its checks pass, while other commits (its validated copies) go on.
 */
function collectGarbage(root: string, committed: VersionedCatalog, inFlight: ReadonlySet<string>): void {
  removeTree(path.join(root, `${CURRENT_LINK}.next`));
  removeTree(path.join(root, `${CATALOG_LINK}.next`));
  const retained = new Set([committed.generation, ...(committed.retainedSnapshots ?? [])].map((g) => `g${g}`));
  const snapshots = path.join(root, SNAPSHOTS_DIR);
  if (existsSync(snapshots)) {
    for (const name of readdirSync(snapshots).sort()) if (!retained.has(name)) removeTree(path.join(snapshots, name));
  }
  const kept = new Set<string>([...inFlight, ...retainedVersions(root, committed)]);
  for (const [key, version] of Object.entries(committed.versions ?? {})) {
    kept.add(path.join(key, version.id));
    if (version.previous) kept.add(path.join(key, version.previous));
  }
  const walk = (relative: string): void => {
    const dir = path.join(root, VERSIONS_DIR, relative);
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory()) continue;
      const child = path.join(relative, entry.name);
      if (!VERSION_NAME.test(entry.name)) walk(child);
      else if (!kept.has(child)) removeTree(path.join(root, VERSIONS_DIR, child));
    }
  };
  if (existsSync(path.join(root, VERSIONS_DIR))) walk('');
  // A crash between making a visible link and renaming it into place leaves `<key>.next`.
  for (const key of Object.keys(committed.versions ?? {})) removeTree(path.join(root, `${key}.next`));
}

/** The versions (`<key>/<id>`) the snapshots kept for runs link to: collected only with their snapshots. */
function retainedVersions(root: string, committed: VersionedCatalog): string[] {
  const kept: string[] = [];
  for (const generation of committed.retainedSnapshots ?? []) {
    if (generation === committed.generation) continue;
    let catalog: VersionedCatalog;
    try {
      catalog = JSON.parse(
        readFileSync(path.join(snapshotDir(root, generation), SNAPSHOT_CATALOG), 'utf8'),
      ) as VersionedCatalog;
    } catch {
      continue; // removed or never finished (a crash before its commit): it keeps nothing
    }
    for (const [key, version] of Object.entries(catalog.versions ?? {})) kept.push(path.join(key, version.id));
  }
  return kept;
}

/**
 * Removes a file, link or folder tree, children first, one unlink or rmdir per entry (rmSync would try
 * rmdir on every non-empty folder first); nothing when it does not exist.
 */
export function removeTree(target: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = lstatSync(target).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isDirectory) return unlinkSync(target);
  for (const name of readdirSync(target).sort()) removeTree(path.join(target, name));
  rmdirSync(target);
}
