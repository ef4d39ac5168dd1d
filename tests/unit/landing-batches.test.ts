import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { batchesBySize } from '../../src/build/landing';
import { removeDir, tempDir } from '../helpers/lake';

describe('batchesBySize', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('batches');
    for (const [name, size] of [
      ['a', 40],
      ['b', 40],
      ['c', 30],
      ['d', 200],
      ['e', 10],
    ] as const) {
      writeFileSync(path.join(dir, name), 'x'.repeat(size));
    }
  });
  afterAll(() => removeDir(dir));

  const files = (...names: string[]) => names.map((n) => ({ path: path.join(dir, n), key: n }));
  const keys = (batches: { key: string }[][]) => batches.map((b) => b.map((f) => f.key).join(''));

  it('keeps the order and cuts before a file that would pass the budget; a big file stands alone', async () => {
    expect(keys(await batchesBySize(files('a', 'b', 'c', 'd', 'e'), 110))).toEqual(['abc', 'd', 'e']);
    expect(keys(await batchesBySize(files('a', 'b', 'c', 'd', 'e'), 100))).toEqual(['ab', 'c', 'd', 'e']);
    expect(keys(await batchesBySize(files('e', 'a', 'b', 'c'), 100))).toEqual(['eab', 'c']);
    expect(keys(await batchesBySize(files('a', 'b', 'c', 'd', 'e'), 1000))).toEqual(['abcde']);
  });

  it('gives no batch for no files', async () => {
    expect(await batchesBySize([], 100)).toEqual([]);
  });
});
