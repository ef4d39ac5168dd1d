import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { JobResult } from '../../src/build/engine';
import { Lake, sha256Of } from '../../src/lake/lake';
import { VALIDATED_MANIFEST, ValidatedManifest, committedCopy, identityOf } from '../../src/build/validated';
import { required } from '../../src/required';
import { dumpLake, freshDump, query, removeDir, runPipeline, tempDir } from '../helpers/lake';
import { testClock } from '../helpers/clock';
import { acceptEdit } from '../helpers/tamper';

/*
 * The validated copy on sequences of landing changes written out by hand: what each run checks, reuses
 * and drops, that reused objects are the very same files (hard links), and that the tables always equal a
 * fresh lake's over the same landing files. tests/integration/incremental-property.test.ts tries random
 * sequences, crashes included.
 */

jest.setTimeout(60_000);

let clock = testClock();
/** Past the file system's clock tick after a write, so a run records the files as not racy (landing-identity.ts). */
const settle = () => clock.passTick();

const accelerometerOf = (results: JobResult[]) => {
  const job = required(
    results.find((r) => r.job === 'accelerometer_landing_to_trusted'),
    'accelerometer_landing_to_trusted in the run',
  );
  return required(job.landingFiles.accelerometer, 'the accelerometer landing files of its run');
};

describe('the validated copy of landing', () => {
  let dir: string;
  let lake: Lake;
  const landing = (name: string) => path.join(lake.root, 'accelerometer', 'landing', name);
  const manifest = (): { manifest: ValidatedManifest; dir: string } =>
    required(committedCopy(lake.snapshotSync(), 'accelerometer'), 'the committed validated copy');
  const entryOf = (name: string) => required(manifest().manifest.files[name], `the manifest entry of ${name}`);
  const segmentOf = (name: string) =>
    path.join(manifest().dir, required(entryOf(name).segment, `the segment of ${name}`));
  const landingNames = () => readdirSync(path.join(dir, 'accelerometer', 'landing')).sort();
  const firstLanding = () => required(landingNames()[0], 'a landing file');

  beforeEach(async () => {
    dir = tempDir('validated');
    clock = testClock();
    lake = new Lake(dir, { clock: () => clock.now() });
    await generate(dir, 'lake', { customers: 12, seed: 21, badLineRate: 0.03, recordsPerFile: 150 });
    settle();
  });
  afterEach(() => removeDir(dir));

  it('checks only new and changed files, reuses the rest untouched, drops those gone, and equals a fresh lake', async () => {
    const names = landingNames();
    expect(names.length).toBeGreaterThanOrEqual(5);
    const nth = (i: number) => required(names[i], `landing file ${i}`);
    expect(accelerometerOf(await runPipeline(lake))).toEqual({ checked: names.length, reused: 0, removed: 0 });
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));

    // Unchanged: nothing checked, every job skipped.
    const rerun = await runPipeline(lake);
    expect(accelerometerOf(rerun)).toEqual({ checked: 0, reused: names.length, removed: 0 });
    expect(rerun.every((r) => r.skipped)).toBe(true);

    // A new file: checked alone; the segment of the others is the same file, hard-linked into the new version.
    const before = statSync(segmentOf(nth(0)));
    writeFileSync(landing('new.json'), readFileSync(landing(nth(1)), 'utf8').replace(/@test\.com/g, '@new.test.com'));
    settle();
    expect(accelerometerOf(await runPipeline(lake))).toEqual({ checked: 1, reused: names.length, removed: 0 });
    const after = statSync(segmentOf(nth(0)));
    expect([after.ino, after.nlink]).toEqual([before.ino, before.nlink + 1]);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));

    // Replaced under the same name with fewer, then with more and different lines; one deleted.
    const second = readFileSync(landing(nth(1)), 'utf8').split('\n');
    writeFileSync(landing(nth(1)), second.slice(0, 20).join('\n') + '\n');
    unlinkSync(landing(nth(2)));
    settle();
    expect(accelerometerOf(await runPipeline(lake))).toEqual({ checked: 1, reused: names.length - 1, removed: 1 });
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
    writeFileSync(landing(nth(1)), [...second, ...readFileSync(landing(nth(3)), 'utf8').split('\n')].join('\n'));
    settle();
    expect(accelerometerOf(await runPipeline(lake, 'since-consent'))).toEqual({
      checked: 1,
      reused: names.length - 1,
      removed: 0,
    });
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'since-consent'));

    // Never a record of a file gone or changed in a segment: the folder's Parquet is the table.
    const inFolder = await query(lake, 'select count(*) as n from accelerometer_landing');
    const copy = manifest();
    expect(inFolder).toEqual([{ n: Object.values(copy.manifest.segments).reduce((a, b) => a + b, 0) }]);
    expect(
      readdirSync(copy.dir)
        .filter((n) => n.endsWith('.parquet'))
        .sort(),
    ).toEqual(Object.keys(copy.manifest.segments).sort());
  });

  it('checks a file rewritten in place with the same size and its mtime put back (its ctime changed)', async () => {
    const name = firstLanding();
    const file = landing(name);
    await runPipeline(lake);
    const recorded = entryOf(name).identity;
    const text = readFileSync(file, 'utf8');
    // The same bytes but for one reading's axis: same size, same inode.
    const [from, to] = text.includes('"x":1.0') ? ['"x":1.0', '"x":0.0'] : ['"x":0.0', '"x":1.0'];
    const changed = text.replace(from, to);
    expect(changed).not.toBe(text);
    expect(changed.length).toBe(text.length);
    writeFileSync(file, changed);
    const mtime = `${recorded.mtimeNs.slice(0, -9)}.${recorded.mtimeNs.slice(-9)}`;
    expect(spawnSync('touch', ['-m', '-d', `@${mtime}`, file]).status).toBe(0);
    const now = statSync(file, { bigint: true });
    expect([String(now.size), String(now.mtimeNs), String(now.ino)]).toEqual([
      recorded.size,
      recorded.mtimeNs,
      recorded.ino,
    ]);

    expect(accelerometerOf(await runPipeline(lake))).toMatchObject({ checked: 1 });
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  /** Runs the pipeline with the clock read as the time `name` was written: the run records its entries as racy. */
  async function runAtWriteTimeOf(name: string): Promise<void> {
    const { mtimeMs } = statSync(landing(name));
    clock.at(Math.floor(mtimeMs));
    try {
      await runPipeline(lake);
    } finally {
      clock.release();
    }
  }

  it('records an entry made within a clock tick of its file as racy, with its SHA-256, and reuses it while the file has it', async () => {
    const name = firstLanding();
    await runAtWriteTimeOf(name);
    expect(entryOf(name)).toMatchObject({ racy: true, sha256: sha256Of(landing(name)) });
    const racy = Object.entries(manifest().manifest.files).filter(([, e]) => e.racy);
    const segments = racy.map(([n]) => statSync(segmentOf(n)).ino);
    const catalog = await lake.readCatalog();

    // Its content has the recorded hash: each entry stands, with its segment, and is no longer racy.
    const results = await runPipeline(lake);
    expect(accelerometerOf(results)).toEqual({ checked: 0, reused: landingNames().length, removed: 0 });
    expect(racy.map(([n]) => entryOf(n).racy)).toEqual(racy.map(() => undefined));
    expect(racy.map(([n]) => statSync(segmentOf(n)).ino)).toEqual(segments);
    // The content is the same, so the tables built on it are kept.
    expect(results.filter((r) => !r.skipped).map((r) => r.job)).toEqual([]);
    const after = await lake.readCatalog();
    expect(after.tables.accelerometer_landing?.content).toBe(catalog.tables.accelerometer_landing?.content);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  /** Rewrites a file in place with the given text, then puts its mtime back as it was (GNU touch). */
  function rewriteKeepingMtime(file: string, text: string): void {
    const before = statSync(file, { bigint: true });
    writeFileSync(file, text);
    const ns = String(before.mtimeNs);
    expect(spawnSync('touch', ['-m', '-d', `@${ns.slice(0, -9)}.${ns.slice(-9)}`, file]).status).toBe(0);
    const now = statSync(file, { bigint: true });
    expect([now.size, now.mtimeNs, now.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
  }

  it('reuses a racy entry whose file was rewritten with the same content, and checks one rewritten with another', async () => {
    const name = firstLanding();
    const file = landing(name);
    await runAtWriteTimeOf(name);
    const segment = statSync(segmentOf(name)).ino;
    const text = readFileSync(file, 'utf8');

    // The same bytes written again, its size and mtime kept (only its ctime moves): its hash vouches for it.
    rewriteKeepingMtime(file, text);
    await runAtWriteTimeOf(name); // still within the tick: confirmed by its hash, and recorded racy again
    expect(accelerometerOf(await runPipeline(lake))).toMatchObject({ checked: 0, removed: 0 });
    expect(statSync(segmentOf(name)).ino).toBe(segment);
    await runAtWriteTimeOf(name);

    // Another content of the same size, its mtime kept: its hash differs, so it is checked again.
    const [from, to] = text.includes('"x":1.0') ? ['"x":1.0', '"x":0.0'] : ['"x":0.0', '"x":1.0'];
    rewriteKeepingMtime(file, text.replace(from, to));
    settle();
    expect(accelerometerOf(await runPipeline(lake))).toMatchObject({ checked: 1, removed: 0 });
    expect(statSync(segmentOf(name)).ino).not.toBe(segment);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  it('checks a racy entry whose file changed in the same clock tick (its identity unchanged) as a changed file', async () => {
    const name = firstLanding();
    await runAtWriteTimeOf(name);
    const file = landing(name);
    const text = readFileSync(file, 'utf8');
    const [from, to] = text.includes('"x":1.0') ? ['"x":1.0', '"x":0.0'] : ['"x":0.0', '"x":1.0'];
    writeFileSync(file, text.replace(from, to));
    // A change in the tick the entry was recorded in leaves the identity as recorded: model it by recording
    // the file's identity now in the committed entry (the manifest replaced by a rename, as a commit writes it).
    const { manifest: committed, dir: copyDir } = manifest();
    const now = identityOf(statSync(file, { bigint: true }));
    const edited = { ...committed, files: { ...committed.files, [name]: { ...entryOf(name), identity: now } } };
    writeFileSync(path.join(copyDir, 'edited.json'), JSON.stringify(edited));
    renameSync(path.join(copyDir, 'edited.json'), path.join(copyDir, VALIDATED_MANIFEST));
    acceptEdit(lake, path.join(copyDir, VALIDATED_MANIFEST)); // a state modelled, not damage
    settle();

    const counts = accelerometerOf(await runPipeline(lake));
    expect(counts.checked).toBeGreaterThanOrEqual(1);
    expect(entryOf(name).racy).toBeUndefined();
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });

  it('checks every file again under other rules, but not for another salt or consent policy', async () => {
    const count = readdirSync(path.join(dir, 'accelerometer', 'landing')).length;
    await runPipeline(lake);
    expect(accelerometerOf(await runPipeline(lake, 'since-consent'))).toEqual({
      checked: 0,
      reused: count,
      removed: 0,
    });
    // A copy made with other rules (a DDL or rules change, or another DuckDB): everything is checked again.
    const copy = manifest();
    const file = path.join(copy.dir, VALIDATED_MANIFEST);
    writeFileSync(file, JSON.stringify({ ...copy.manifest, rules: 'other rules' }));
    acceptEdit(lake, file); // a state modelled, not damage
    expect(accelerometerOf(await runPipeline(lake, 'since-consent'))).toEqual({
      checked: count,
      reused: 0,
      removed: 0,
    });
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'since-consent'));
  });

  it('is read by stedi query as landing is now, without writing the lake', async () => {
    await runPipeline(lake);
    const generation = (await lake.readCatalog()).generation;
    const name = firstLanding();
    unlinkSync(landing(name));
    writeFileSync(landing('late.json'), '{"user":"a@b.c","timestamp":1655564000000,"x":1,"y":1,"z":1}\n{bad\n');
    const rows = await query(lake, 'select count(*) as n from accelerometer_landing where "user" = \'a@b.c\'');
    expect(rows).toEqual([{ n: 1 }]);
    expect((await lake.readCatalog()).generation).toBe(generation);
    await runPipeline(lake);
    expect(await dumpLake(lake)).toEqual(await freshDump(lake, 'any'));
  });
});
