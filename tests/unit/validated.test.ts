import { glueDir } from '../../src/project';
import { required } from '../../src/required';
import { LandingTableDefinition, readLandingTables } from '../../src/definition/ddl';
import {
  FileIdentity,
  LandingStat,
  ValidatedEntry,
  ValidatedManifest,
  isRacy,
  planSync,
  rulesVersion,
} from '../../src/build/validated';

const SECOND = 1_000_000_000n;
const NOW = 1_800_000_000n * SECOND + 123_456_789n;

function identity(overrides: Partial<FileIdentity> = {}): FileIdentity {
  const old = String(NOW - 60n * SECOND + 5n);
  return { size: '100', mtimeNs: old, ctimeNs: old, ino: '7', dev: '1', ...overrides };
}

const stat = (name: string, id: FileIdentity, racy = false): LandingStat => ({
  name,
  path: `/l/${name}`,
  identity: id,
  racy,
});
const entry = (id: FileIdentity, segment: string, racy = false): ValidatedEntry => ({
  identity: id,
  ...(racy ? { racy: true as const } : {}),
  records: 1,
  fingerprint: '1',
  rejected: 0,
  segment,
});

describe('isRacy: an identity taken within a clock tick of the file last change cannot vouch for its content', () => {
  it('is racy when mtime or ctime is less than 100 ms before the stat, or after it', () => {
    expect(isRacy(identity(), NOW)).toBe(false);
    expect(isRacy(identity({ mtimeNs: String(NOW - 150_000_000n) }), NOW)).toBe(false);
    expect(isRacy(identity({ mtimeNs: String(NOW - 50_000_000n) }), NOW)).toBe(true);
    expect(isRacy(identity({ ctimeNs: String(NOW - 50_000_000n) }), NOW)).toBe(true);
    expect(isRacy(identity({ mtimeNs: String(NOW + SECOND) }), NOW)).toBe(true); // a clock ahead of ours
  });

  it('takes a tick of 2 s on a file system that stamps whole seconds', () => {
    const whole = String((NOW / SECOND - 1n) * SECOND); // 1.12 s before the stat, no fraction
    expect(isRacy(identity({ mtimeNs: whole, ctimeNs: whole }), NOW)).toBe(true);
    const older = String((NOW / SECOND - 3n) * SECOND);
    expect(isRacy(identity({ mtimeNs: older, ctimeNs: older }), NOW)).toBe(false);
  });
});

describe('planSync', () => {
  const rules = 'r1';
  const committed: ValidatedManifest = {
    rules,
    files: {
      'same.json': entry(identity(), 's1'),
      'touched.json': entry(identity({ ino: '8' }), 's1'),
      'gone.json': entry(identity({ ino: '9' }), 's2'),
      'racy.json': entry(identity({ ino: '10' }), 's3', true),
      'alone.json': entry(identity({ ino: '11' }), 's4'),
    },
    segments: { s1: 2, s2: 1, s3: 1, s4: 1 },
  };

  it('reuses unchanged entries, checks new and changed files and racy entries, and drops those of files gone', () => {
    const plan = planSync(
      [
        stat('same.json', identity()),
        stat('touched.json', identity({ ino: '8', ctimeNs: String(NOW) })), // rewritten in place, mtime put back
        stat('racy.json', identity({ ino: '10' })), // identical, but recorded racy
        stat('alone.json', identity({ ino: '11' })),
        stat('new.json', identity({ ino: '12' })),
      ],
      committed,
      rules,
    );
    expect(plan.reuse).toEqual(['same.json', 'alone.json']);
    expect(plan.check.map((f) => f.name)).toEqual(['touched.json', 'racy.json', 'new.json']);
    expect(plan.removed).toEqual(['gone.json']);
    // s1 also holds a reused entry: it is rewritten without touched.json's records; s4 stays as it is.
    expect([...plan.dirtySegments].sort()).toEqual(['s1', 's2', 's3']);
  });

  it('reuses a racy entry only while its file has the SHA-256 it recorded, whatever its identity now', () => {
    const racy = { ...entry(identity({ ino: '10' }), 's3', true), sha256: 'aa' };
    const manifest = { ...committed, files: { 'racy.json': racy }, segments: { s3: 1 } };
    const rewritten = identity({ ino: '10', ctimeNs: String(NOW) }); // the same bytes written again
    const same = planSync([{ ...stat('racy.json', rewritten), sha256: 'aa' }], manifest, rules);
    expect([same.reuse, same.check, [...same.dirtySegments]]).toEqual([['racy.json'], [], []]);
    const other = planSync([{ ...stat('racy.json', identity({ ino: '10' })), sha256: 'bb' }], manifest, rules);
    expect([other.reuse, other.check.map((f) => f.name), [...other.dirtySegments]]).toEqual([
      [],
      ['racy.json'],
      ['s3'],
    ]);
  });

  it.each<[string, Partial<FileIdentity>]>([
    ['size', { size: '101' }],
    ['mtime', { mtimeNs: String(NOW - SECOND) }],
    ['ctime', { ctimeNs: String(NOW - SECOND) }],
    ['inode', { ino: '99' }],
    ['device', { dev: '2' }],
  ])('checks a file whose %s changed', (_, change) => {
    const plan = planSync([stat('same.json', identity(change))], committed, rules);
    expect(plan.check.map((f) => f.name)).toEqual(['same.json']);
  });

  it('checks every file again, reusing nothing, under other rules', () => {
    const plan = planSync(
      [stat('same.json', identity()), stat('alone.json', identity({ ino: '11' }))],
      committed,
      'r2',
    );
    expect(plan.reuse).toEqual([]);
    expect(plan.check.map((f) => f.name)).toEqual(['same.json', 'alone.json']);
    expect(plan.removed.sort()).toEqual(['gone.json', 'racy.json', 'touched.json']);
    expect([...plan.dirtySegments].sort()).toEqual(['s1', 's2', 's3', 's4']);
  });

  it('checks everything when there is no validated copy yet', () => {
    const plan = planSync([stat('a.json', identity())], undefined, rules);
    expect(plan).toEqual({ reuse: [], check: [stat('a.json', identity())], removed: [], dirtySegments: new Set() });
  });
});

describe('rulesVersion: a change of the DDL or of the checking rules makes a new validated copy', () => {
  const tables = readLandingTables(glueDir());
  const accelerometer = tables.accelerometer_landing;
  const column = (t: LandingTableDefinition, i: number) => required(t.columns[i], `column ${i} of ${t.name}`);
  const changed = (change: (t: LandingTableDefinition) => void): LandingTableDefinition => {
    const copy = structuredClone(accelerometer);
    change(copy);
    return copy;
  };

  it('is the same for the same DDL and DuckDB, and differs per table', () => {
    expect(rulesVersion(accelerometer, '1.5.6')).toBe(rulesVersion(structuredClone(accelerometer), '1.5.6'));
    expect(new Set(Object.values(tables).map((t) => rulesVersion(t, '1.5.6'))).size).toBe(3);
  });

  it.each<[string, (t: LandingTableDefinition) => void]>([
    ['a column made optional', (t) => void (column(t, 2).required = false)],
    ['a column type', (t) => void (column(t, 2).type = 'bigint')],
    ['the epoch-ms rule', (t) => void (column(t, 1).epochMillis = false)],
    ['a column added', (t) => void t.columns.push({ ...column(t, 2), name: 'w', required: false })],
    ['a comment', (t) => void (column(t, 0).comment = 'the customer email')],
  ])('changes with %s', (_, change) => {
    expect(rulesVersion(changed(change), '1.5.6')).not.toBe(rulesVersion(accelerometer, '1.5.6'));
  });

  it('changes with the DuckDB version, whose reader does the checking', () => {
    expect(rulesVersion(accelerometer, '1.5.7')).not.toBe(rulesVersion(accelerometer, '1.5.6'));
  });
});
