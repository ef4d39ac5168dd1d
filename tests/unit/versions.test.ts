import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { required } from '../../src/required';
import { removeDir, tempDir } from '../helpers/lake';

// The commit primitive of the local lake (src/lake/versions.ts through Lake.begin), on its own: any set
// of keys, tables or not, replaced together. The crash behaviour is tested in crash-points.test.ts.
describe('lake transactions', () => {
  let dir: string;
  let lake: Lake;
  beforeEach(() => {
    dir = tempDir('versions');
    lake = new Lake(dir);
  });
  afterEach(() => removeDir(dir));

  const commit = (runId: string, files: Record<string, string>) => {
    const transaction = lake.begin(runId);
    for (const [key, text] of Object.entries(files)) writeFileSync(path.join(transaction.stage(key), 'data'), text);
    transaction.commit([]);
  };
  const read = (key: string) => readFileSync(path.join(dir, key, 'data'), 'utf8');
  const versionsOf = (key: string) => readdirSync(path.join(dir, '_versions', key)).sort();

  it('publishes many keys at once, each visible at its key, and keeps the version each replaced', async () => {
    lake = new Lake(dir, { keepRuns: 1 }); // no run's snapshot kept beyond the current one
    commit('run-1', { 'a/validated/f1.json': 'one', 'a/validated/f2%.json': 'two' });
    expect([read('a/validated/f1.json'), read('a/validated/f2%.json')]).toEqual(['one', 'two']);
    const first = (await lake.readCatalog()).versions!;
    const firstF1 = required(first['a/validated/f1.json'], 'the first version of f1.json');

    commit('run-2', { 'a/validated/f1.json': 'one again' });
    const second = (await lake.readCatalog()).versions!;
    expect(read('a/validated/f1.json')).toBe('one again');
    expect(second['a/validated/f2%.json']).toEqual(first['a/validated/f2%.json']); // untouched
    expect(second['a/validated/f1.json']?.previous).toBe(firstF1.id);
    expect(versionsOf('a/validated/f1.json')).toHaveLength(2); // current and previous

    commit('run-3', { 'a/validated/f1.json': 'third' });
    expect(versionsOf('a/validated/f1.json')).not.toContain(firstF1.id);
    expect(versionsOf('a/validated/f1.json')).toHaveLength(2);
    expect(readdirSync(path.join(dir, '_snapshots'))).toEqual([`g${(await lake.readCatalog()).generation}`]);
  });

  it("logs each commit's run once, at its last commit, and keeps the snapshots of the newest runs with their versions", async () => {
    lake = new Lake(dir, { keepRuns: 2 });
    commit('run-1', { 'c/trusted': 'one' });
    const first = required((await lake.readCatalog()).versions?.['c/trusted'], 'the first version');
    commit('run-2', { 'c/trusted': 'two' });
    commit('run-2', { 'd/trusted': 'made later in run-2' }); // a run commits more than once
    commit('run-3', { 'c/trusted': 'three' });
    const catalog = await lake.readCatalog();
    expect(catalog.runs?.map((r) => [r.runId, r.generation])).toEqual([
      ['run-3', 4],
      ['run-2', 3],
      ['run-1', 1],
    ]);
    // The snapshots of the newest two runs, each the one its last commit made; run-1's is gone, and with
    // it the version only it linked to (the previous version of c/trusted is run-2's).
    expect(catalog.retainedSnapshots).toEqual([4, 3]);
    expect(readdirSync(path.join(dir, '_snapshots')).sort()).toEqual(['g3', 'g4']);
    expect(versionsOf('c/trusted')).toHaveLength(2);
    expect(versionsOf('c/trusted')).not.toContain(first.id);
    const kept = JSON.parse(readFileSync(path.join(dir, '_snapshots/g3/catalog.json'), 'utf8')) as typeof catalog;
    expect(readFileSync(path.join(dir, '_versions/c/trusted', kept.versions!['c/trusted']!.id, 'data'), 'utf8')).toBe(
      'two',
    );
  });

  it('shows nothing of an aborted transaction, and the next one removes what a crash left staged', async () => {
    commit('run-1', { 'b/trusted': 'kept' });
    const before = await lake.readCatalog();

    const aborted = lake.begin('run-2');
    const staged = aborted.stage('b/trusted');
    writeFileSync(path.join(staged, 'data'), 'never seen');
    aborted.abort();
    expect(existsSync(staged)).toBe(false);

    const crashed = lake.begin('run-3').stage('b/trusted'); // never committed nor aborted, as after kill -9
    expect(await lake.readCatalog()).toEqual(before);
    expect(read('b/trusted')).toBe('kept');
    // While its process lives, its transaction is open: this process's other commits keep what it staged.
    lake.begin('run-4').abort();
    expect(existsSync(crashed)).toBe(true);
    // The next process (the one after the crash) removes it.
    new Lake(dir).begin('run-5').abort();
    expect(existsSync(crashed)).toBe(false);
  });

  it('refuses keys outside the lake or of its own', () => {
    const transaction = lake.begin('run-1');
    for (const key of ['../x', '/abs', '_versions/x', 'a/../b', ''])
      expect(() => transaction.stage(key)).toThrow(/not a versionable lake key/);
  });
});
