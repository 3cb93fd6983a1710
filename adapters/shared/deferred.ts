/**
 * A promise with its settling functions, for adapters whose runtime reports
 * the steps of a connection through callbacks or events (Node, Bun): each
 * step's `DialStep.result`. A rejection nobody awaits is not reported (the
 * core may have given the attempt up before it awaited that step).
 *
 * @module
 */

/** A promise and the functions that settle it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A new {@link Deferred}. */
export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (reason: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
