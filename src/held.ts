import { describeHeld } from "./describe.ts";
import { fenceValueOf } from "./fence.ts";

/**
 * {@link HeldLock}: a lock (or semaphore slot) held for a scope, released by
 * `await using` at the scope's end, or by hand.
 *
 * @module
 */

/**
 * A holding from {@link DistributedPrimitive.hold}, released when the scope
 * that declared it with `await using` ends (however it ends), or by
 * {@link HeldLock.release}. Until then the lock is renewed in the background,
 * and the instance's other `withLock()` and `hold()` callers wait their turn.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "invoices" });
 * {
 *   await using held = await lock.hold({ timeoutS: 5 });
 *   console.log("holding", held.key, "with fence", held.fence);
 *   // critical section; held.signal aborts if the lock is lost
 * } // released here
 * ```
 */
export class HeldLock {
  /** The key held. */
  readonly key: string;
  /** The server's token for this holding. */
  readonly token: string;
  /** The fencing token, when the server sends one. */
  readonly fence: string | undefined;
  /** The lease TTL (seconds) the server applied when it granted the lock. */
  readonly leaseTtl: number;
  /** Aborts when this holding is lost, released or closed. */
  readonly signal: AbortSignal;
  /** The server (`host:port`) that granted it. */
  readonly server: string;
  /** The semaphore's limit, for a slot; `undefined` for a lock. */
  readonly #limit: number | undefined;
  #end: (() => Promise<void>) | undefined;
  readonly #check: () => void;

  /**
   * @internal Made by {@link DistributedPrimitive.hold}.
   * @param key The key held.
   * @param token The holding's token.
   * @param fence The holding's fencing token, if any.
   * @param leaseTtl The lease TTL granted.
   * @param signal Aborts when the holding ends.
   * @param end Releases the holding and passes the turn on; called once.
   * @param check Throws unless the holding is still held (reads the clock).
   * @param server The server (`host:port`) that granted it.
   * @param limit The semaphore's limit, for a slot.
   */
  constructor(
    key: string,
    token: string,
    fence: string | undefined,
    leaseTtl: number,
    signal: AbortSignal,
    end: () => Promise<void>,
    check: () => void,
    server: string,
    limit: number | undefined,
  ) {
    this.key = key;
    this.token = token;
    this.fence = fence;
    this.leaseTtl = leaseTtl;
    this.signal = signal;
    this.#end = end;
    this.#check = check;
    this.server = server;
    this.#limit = limit;
  }

  /**
   * The fence as a `bigint`, which orders correctly ({@link HeldLock.fence}
   * is the server's text); `undefined` without a decimal fence.
   *
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * await using held = await new DistributedLock({ key: "ledger" }).hold();
   * console.log(held.fenceValue ?? "this server sends no fence");
   * ```
   */
  get fenceValue(): bigint | undefined {
    return fenceValueOf(this.fence);
  }

  /**
   * Throw unless this holding is still held right now, reading the monotonic
   * clock (see `DistributedLock.assertHeld()`): put it immediately before
   * each write the lock protects.
   *
   * @throws LockLostError if the holding was lost; the reason it ended if it
   * was released or closed.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * await using held = await new DistributedLock({ key: "ledger" }).hold();
   * held.assertHeld();
   * ```
   */
  assertHeld(): void {
    this.#check();
  }

  /** `true` once {@link HeldLock.release} has run (by hand or at the end of an `await using` scope). */
  get released(): boolean {
    return this.#end === undefined;
  }

  /**
   * Release the lock (or slot) and let the instance's next caller have its
   * turn. Calling it again does nothing.
   *
   * @throws LockLostError if the holding was lost before it could be released:
   * the work it protected was not protected to the end.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const held = await new DistributedLock({ key: "k" }).hold();
   * try { /* work *\/ } finally { await held.release(); }
   * ```
   */
  release(): Promise<void> {
    const end = this.#end;
    if (end === undefined) return Promise.resolve();
    this.#end = undefined;
    return end();
  }

  /**
   * One line for logs: key, server, whether it is still held (`held`,
   * `released`, `lost`, or `ended` by `close()`), and the fence; never the
   * token. It does not read the clock: {@link HeldLock.assertHeld} does.
   *
   * @returns E.g. `HeldLock(key "invoices" on 127.0.0.1:6388, held, fence 42)`.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * await using held = await new DistributedLock({ key: "invoices" }).hold();
   * console.log(`working under ${held}`);
   * ```
   */
  toString(): string {
    return describeHeld(this.key, this.#limit, this.server, this.fence, this.released, this.signal);
  }

  /**
   * What `await using` calls at the end of the scope: {@link HeldLock.release}.
   * @throws LockLostError as release() does.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
