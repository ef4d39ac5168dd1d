/** A value the code relies on was not there (an index or a match group that must exist): a broken invariant. */
export class MissingValueError extends Error {
  constructor(readonly what: string) {
    super(`missing ${what}`);
    this.name = 'MissingValueError';
  }
}

/** `value`, or a MissingValueError naming `what` when it is undefined. */
export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new MissingValueError(what);
  return value;
}
