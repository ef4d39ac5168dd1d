import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits for a condition that another process or the event loop makes true (a line printed, a file written),
 * looking again every `everyMs`; returns as soon as it holds, and fails naming what it waited for after
 * `timeoutMs`. The one place tests wait on time; a fixed wait ("long enough") is never the condition.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 30_000, everyMs = 20 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

/** One turn of the event loop: lets I/O callbacks and timers due now run. No time passes by design. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Until the clock is in a later whole second than `after`: S3 dates an object to the second, so an object
 * uploaded from then on is dated after an event at `after` (what `stedi drop --wait` compares).
 */
export const aSecondLater = (after: Date = new Date()): Promise<void> => {
  const next = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  return until(() => Date.now() >= next, 'the next whole second', { timeoutMs: 5_000, everyMs: 10 });
};
