/**
 * aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22). On Node 20 every Task would
 * fail with a TypeError that a States.ALL Catch swallows, so this must load before it does.
 */
type WithResolvers = <T>() => { promise: Promise<T>; resolve: (value: T) => void; reject: (reason?: unknown) => void };

const PromiseConstructor = Promise as unknown as { withResolvers?: WithResolvers };
if (typeof PromiseConstructor.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T>() {
      let resolve!: (value: T) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export {};
