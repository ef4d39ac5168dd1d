/**
 * A wall clock for a Lake (its `clock` option) that a test sets instead of waiting for time to pass:
 * - passTick(): a run then sees every landing file written so far as older than the file system's clock
 *   tick, so it records them as not racy (src/lake/landing-identity.ts isRacy);
 * - at(ms): the clock reads ms (e.g. a file's mtime: a run within the tick of the write) until release().
 */
export interface TestClock {
  now: () => number;
  passTick: () => void;
  at: (ms: number) => void;
  release: () => void;
}

export function testClock(): TestClock {
  let floor = 0;
  let fixed: number | undefined;
  return {
    now: () => fixed ?? Math.max(Date.now(), floor),
    // 3 s: past the 2 s tick taken for file systems that stamp whole seconds.
    passTick: () => {
      floor = Date.now() + 3_000;
    },
    at: (ms) => {
      fixed = ms;
    },
    release: () => {
      fixed = undefined;
    },
  };
}
