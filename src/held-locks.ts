/**
 * {@link HeldLocks}: several keys held together (from `client.holdAll()`),
 * released together in reverse order, with one signal for all of them.
 * Each key is an ordinary {@link HeldLock}; this composes them.
 *
 * @module
 */
import { describeHeldLocks } from "./describe.ts";
import { LockLostError } from "./errors.ts";
import type { HeldLock } from "./held.ts";

/**
 * Several keys held together, from {@link DflockdClient.holdAll}: released
 * when the scope that declared them with `await using` ends (however it
 * ends), or by {@link HeldLocks.release}, in the reverse of the order they
 * were acquired in. Until then each key is renewed in the background.
 *
 * A loss of any one key aborts {@link HeldLocks.signal} with that key's
 * `LockLostError`; the other keys stay held until the release, which then
 * rejects with the `LockLostError`, as `withLock()` does.
 *
 * @example
 * ```ts
 * import { DflockdClient } from "dflockd-client";
 *
 * const client = new DflockdClient();
 * {
 *   await using held = await client.holdAll(["account:1", "account:2"], { timeoutS: 5 });
 *   console.log(held.locks.map((h) => h.key)); // in the order they were acquired
 *   // critical section; held.signal aborts if any key is lost
 * } // every key released here, the last acquired first
 * ```
 */
export class HeldLocks {
  /** The holdings, one per key, in the order they were acquired (the canonical order). */
  readonly locks: ReadonlyArray<HeldLock>;
  /**
   * Aborts when any of the keys is lost (its `LockLostError` as the reason),
   * closed, or when the keys are released.
   */
  readonly signal: AbortSignal;
  #released = false;

  /**
   * @internal Made by `client.holdAll()`.
   * @param locks The holdings, in acquisition order.
   * @param signal Aborts when any holding ends.
   */
  constructor(locks: ReadonlyArray<HeldLock>, signal: AbortSignal) {
    this.locks = Object.freeze([...locks]);
    this.signal = signal;
  }

  /**
   * The holding of `key`, if it is one of these.
   *
   * @param key A key given to `holdAll()`.
   * @returns Its {@link HeldLock} (for its fence, token, lease), or `undefined`.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * await using held = await new DflockdClient().holdAll(["orders", { key: "workers", limit: 3 }]);
   * console.log(held.get("orders")?.fence);
   * ```
   */
  get(key: string): HeldLock | undefined {
    return this.locks.find((h) => h.key === key);
  }

  /**
   * Throw unless every key is still held right now, reading the monotonic
   * clock for each (see `HeldLock.assertHeld()`): put it immediately before
   * each write the keys protect.
   *
   * @throws LockLostError for the first key (in acquisition order) that was
   * lost; the reason they ended once released or closed.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * await using held = await new DflockdClient().holdAll(["from", "to"]);
   * held.assertHeld();
   * ```
   */
  assertHeld(): void {
    for (const h of this.locks) h.assertHeld();
  }

  /** `true` once {@link HeldLocks.release} has been called (by hand or at the end of an `await using` scope). */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Release every key, one after the other, the last acquired first. Every
   * key is released even when one of them fails. Calling it again does
   * nothing (as `HeldLock.release()`).
   *
   * @throws LockLostError if any key was lost before it could be released
   * (the work the keys protected was not protected to the end); else the
   * first other error a release met (a `ConnectionError`: the connection
   * broke, which releases on the server).
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const held = await new DflockdClient().holdAll(["a", "b"]);
   * try { /* work *\/ } finally { await held.release(); }
   * ```
   */
  release(): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#released = true;
    return releaseInReverse(this.locks);
  }

  /**
   * One line for logs: how many keys, whether they are still held (`held`,
   * `released`, `lost` once any key is lost, `ended` by `close()`), and the
   * keys in the order taken with their servers; never a token.
   *
   * @returns E.g. `HeldLocks(2 keys, held: "account:1", "account:2" on 127.0.0.1:6388)`.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * await using held = await new DflockdClient().holdAll(["account:1", "account:2"]);
   * console.log(`moving money under ${held}`);
   * ```
   */
  toString(): string {
    return describeHeldLocks(this.locks, this.#released, this.signal);
  }

  /**
   * What `await using` calls at the end of the scope: {@link HeldLocks.release}.
   * @throws LockLostError as release() does.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/**
 * Release `locks` from the last to the first, each after the one before has
 * finished; every one is released whatever the others do.
 * @throws The first `LockLostError` met, else the first other error.
 */
export async function releaseInReverse(locks: ReadonlyArray<HeldLock>): Promise<void> {
  let failure: unknown;
  let failed = false;
  for (let i = locks.length - 1; i >= 0; i--) {
    try {
      await (locks[i] as HeldLock).release();
    } catch (err) {
      if (!failed || (err instanceof LockLostError && !(failure instanceof LockLostError))) failure = err;
      failed = true;
    }
  }
  if (failed) throw failure;
}
