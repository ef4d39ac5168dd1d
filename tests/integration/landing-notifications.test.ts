import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readBatch } from '../../src/landing-trigger/s3-records';
import { executionNameFor } from '../../src/landing-trigger/trigger';
import { Lake } from '../../src/lake/lake';
import { notificationFor } from '../../src/stand-ins/s3-notifications/local-trigger';
import { removeDir, tempDir } from '../helpers/lake';

/** The execution name the trigger gives the notification of the file as it is now. */
async function executionNameNow(lake: Lake, name: string): Promise<string> {
  return executionNameFor(readBatch([await notificationFor(lake, 'customer', name)]).files);
}

/**
 * Rewrites the file in place, then sets its mtime back, as `cp -p`, `rsync -t` or `touch -r` do. Its
 * change time is the kernel's coarse clock, which ticks every few milliseconds: the loop (no sleep) only
 * makes sure the rewrite lands on a later tick than the notification taken before it, as any rewrite a
 * person makes does.
 */
function rewriteKeepingMtime(file: string, text: string, before: bigint): void {
  do {
    writeFileSync(file, text);
    utimesSync(file, 1_700_000_000, 1_700_000_000);
  } while (statSync(file, { bigint: true }).ctimeNs === before);
}

// S3 gives every upload of a key a new version id and a larger sequencer ("Event message structure",
// Amazon S3 User Guide), so a second upload of the same key is a new execution. Locally the file's
// identity stands in for them.
describe('the local notification of a landing file (stedi drop, stedi watch)', () => {
  let dir: string;
  let lake: Lake;
  let file: string;
  beforeEach(() => {
    dir = tempDir('notifications');
    lake = new Lake(dir);
    mkdirSync(lake.path('customer/landing'), { recursive: true });
    file = path.join(lake.path('customer/landing'), 'c.json');
    writeFileSync(file, '{"email":"a@test.com"}\n');
    utimesSync(file, 1_700_000_000, 1_700_000_000);
  });
  afterEach(() => removeDir(dir));

  it('is the same for the same version of the file, so a drop and a watch start one execution', async () => {
    expect(await executionNameNow(lake, 'c.json')).toBe(await executionNameNow(lake, 'c.json'));
  });

  it('is a new version after a same-size rewrite whose modification time was put back', async () => {
    const first = await notificationFor(lake, 'customer', 'c.json');
    const before = statSync(file, { bigint: true });
    rewriteKeepingMtime(file, '{"email":"b@test.com"}\n', before.ctimeNs);
    const after = statSync(file, { bigint: true });
    // The finding: size, mtime and inode alone cannot tell the two versions apart.
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);

    const second = await notificationFor(lake, 'customer', 'c.json');
    expect(executionNameFor(readBatch([second]).files)).not.toBe(executionNameFor(readBatch([first]).files));
    expect(second.messageId).not.toBe(first.messageId);
    // The sequencer grows with each event of the key, as S3's does.
    const sequencer = (record: typeof first) => readBatch([record]).files[0]?.sequencer ?? '';
    expect(sequencer(second) > sequencer(first)).toBe(true);
  });
});
