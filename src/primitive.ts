/**
 * `DistributedLock` and `DistributedSemaphore`: a held lock or semaphore slot
 * with background renewal. This file is the documented API; engine.ts composes
 * the rest, and machine.ts decides which phase of a lock's life follows which.
 *
 * @module
 */
import { describeLock } from "./describe.ts";
import { LockEngine } from "./engine.ts";
import { fenceValueOf } from "./fence.ts";
import type { HeldLock } from "./held.ts";
import type { LeaseState } from "./machine.ts";
import type { AcquireOptions, EnqueueStatus, LockOptions, SemaphoreOptions } from "./options.ts";
import { readSettings } from "./options.ts";
import { poolOf } from "./pool.ts";

export type { AcquireOptions, EnqueueStatus, LockOptions, SemaphoreOptions } from "./options.ts";

/**
 * What {@link DistributedPrimitive.toJSON} returns, and `console.log` shows.
 *
 * @example
 * ```ts
 * import { DistributedLock, type LockSummary } from "dflockd-client";
 *
 * const s: LockSummary = new DistributedLock({ key: "k" }).toJSON();
 * console.log(s.key, s.state, s.server);
 * ```
 */
export interface LockSummary {
  /** The key. */
  readonly key: string;
  /** Where the instance is in its life. */
  readonly state: LeaseState;
  /** `host:port` the key goes to. */
  readonly server: string;
  /** The lease TTL (seconds), while held. */
  readonly leaseTtl?: number | undefined;
  /** The fencing token, while held and when the server sends one. */
  readonly fence?: string | undefined;
}

/**
 * What {@link DistributedLock} and {@link DistributedSemaphore} share: one
 * holding at a time, renewed in the background until released or lost.
 * Not constructed directly.
 *
 * @example
 * ```ts
 * import { DistributedLock, type DistributedPrimitive } from "dflockd-client";
 *
 * const held: DistributedPrimitive = new DistributedLock({ key: "k" });
 * console.log(held.state); // "released"
 * ```
 */
export abstract class DistributedPrimitive {
  /** The key this instance locks. */
  readonly key: string;
  readonly #e: LockEngine;
  /** The semaphore's limit (`undefined` for a lock), for {@link toString}. */
  readonly #limit: number | undefined;

  /** @internal */
  protected constructor(kind: "lock" | "semaphore", options: LockOptions, limit?: number) {
    const settings = readSettings(kind, options, limit);
    this.#e = new LockEngine(settings, poolOf(options));
    this.key = this.#e.key;
    this.#limit = settings.limit;
  }

  /** Where this instance is in its life; see {@link LeaseState}. */
  get state(): LeaseState {
    return this.#e.state;
  }

  /** `true` while the lock (or slot) is held. */
  get held(): boolean {
    return this.#e.held;
  }

  /** The server's token for the current holding, or `undefined` when not held. */
  get token(): string | undefined {
    return this.#e.token;
  }

  /** The fencing token, when held and the server sends one; else `undefined`. */
  get fence(): string | undefined {
    return this.#e.fence;
  }

  /**
   * The fence as a `bigint`, which orders correctly (`lock.fence` is the
   * server's text, and `"100" < "99"`); `undefined` when not held, when the
   * server sends no fence, or when its fence is not a decimal number.
   *
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "ledger" });
   * let newest = 0n; // kept by the resource the lock protects
   * if (await lock.acquire()) {
   *   const fence = lock.fenceValue;
   *   if (fence !== undefined && fence > newest) newest = fence;
   *   await lock.release();
   * }
   * ```
   */
  get fenceValue(): bigint | undefined {
    return fenceValueOf(this.#e.fence);
  }

  /** The lease TTL (seconds) the server applied to the current holding, or `undefined`. */
  get leaseTtl(): number | undefined {
    return this.#e.leaseTtl;
  }

  /**
   * Throw unless the lock (or slot) is held right now. It reads the
   * monotonic clock: past the loss deadline, the holding is reported lost at
   * this moment (signal aborted, `onLost` called) even if no timer has run,
   * as after a GC pause, a blocked event loop or a suspended process. Put it
   * immediately before each write the lock protects; it narrows the window
   * in which a paused holder can act on a lost lock, and a fence closes it.
   *
   * @throws LockLostError if the holding was lost (now or before).
   * @throws LockError `NOT_HELD` if nothing is held.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "ledger" });
   * await lock.withLock(async () => {
   *   const rows = ["a", "b"]; // slow work
   *   lock.assertHeld(); // throws LockLostError if the lease ran out meanwhile
   *   console.log(rows);
   * });
   * ```
   */
  assertHeld(): void {
    this.#e.assertHeld();
  }

  /**
   * The server (`host:port`) this instance's key goes to: the one of
   * `servers` the sharding strategy picks, the same from every client.
   *
   * @throws InvalidArgumentError if a custom `shardingStrategy` returns an invalid index.
   */
  get server(): string {
    return this.#e.server;
  }

  /**
   * An `AbortSignal` that aborts when the current holding is lost, released or
   * closed; `undefined` when nothing is held.
   */
  get signal(): AbortSignal | undefined {
    return this.#e.signal;
  }

  /**
   * Acquire, blocking up to `acquireTimeoutS`. While held, the lease is
   * renewed in the background (until `release()`, a loss, or `maxHoldS`); if
   * this instance is garbage-collected still holding, the client warns once.
   *
   * @param options `signal` to abort the attempt; `timeoutS` to wait this
   * long instead of `acquireTimeoutS`.
   * @returns `true` once held, `false` if the timeout passed.
   * @throws LockError with code `"BUSY"` if this instance already holds or is
   * acquiring (concurrent callers can share an instance through
   * {@link withLock}, which serves them in turn); a {@link ServerError} or
   * {@link ConnectionError} on failure.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k", acquireTimeoutS: 5 });
   * if (await lock.acquire()) {
   *   try { /* work *\/ } finally { await lock.release(); }
   * }
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#e.acquire(options, this);
  }

  /**
   * Two-phase acquisition, step 1: join the FIFO queue without blocking.
   *
   * @param options `signal` to abort the attempt; `timeoutS` to bound the
   * whole call (it then rejects with code `"TIMEOUT"`).
   * @returns `"acquired"` if the lock was free (it is now held and renewed),
   * `"queued"` otherwise; then call {@link wait}.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * const status = await lock.enqueue();
   * if (await lock.wait(10)) await lock.release();
   * ```
   */
  enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    return this.#e.enqueue(options, this);
  }

  /**
   * Two-phase acquisition, step 2: block until granted. Returns `true` at once
   * if {@link enqueue} already acquired.
   *
   * @param timeoutS Seconds to wait (whole, >= 0). Default: `acquireTimeoutS`.
   * @param options `signal` to abort the wait; `timeoutS` instead of the
   * first argument.
   * @returns `true` once held, `false` if the timeout passed (the place in the
   * queue is given up).
   * @throws LockError with code `"NOT_ENQUEUED"` if nothing was enqueued.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * await lock.enqueue();
   * const granted = await lock.wait(10);
   * ```
   */
  wait(timeoutS?: number, options?: AcquireOptions): Promise<boolean> {
    return this.#e.wait(timeoutS, options, this);
  }

  /**
   * Release the lock (or slot). Does nothing if nothing is held; gives up a
   * place in the queue or an attempt in progress. Waits for an in-flight
   * renewal first. Behind a slow server it waits as long as the lease is
   * provable (the lease's loss deadline bounds it, not `requestTimeoutMs`).
   *
   * @throws LockLostError if the holding was lost before it could be released,
   * or the release could not be confirmed before the lease's deadline (the
   * server frees it when the lease ends); reported once, and the instance is
   * then free to acquire again.
   * @throws ConnectionError if the connection broke first (which releases on
   * the server).
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * await lock.acquire();
   * await lock.release();
   * ```
   */
  release(): Promise<void> {
    return this.#e.release();
  }

  /**
   * Acquire, run `fn`, release: even if `fn` throws, in which case `fn`'s
   * error is rethrown (not a release error).
   *
   * `fn` receives an `AbortSignal` that aborts if the lock is lost while it
   * runs; if that happens and `fn` still returns normally, `withLock` throws
   * {@link LockLostError}, because the work was not protected to the end.
   * The signal (an `AbortController`, about 4 µs on Node) is made only for a
   * callback that can read it: an arrow function written with no parameters
   * (`async () => {}`) cannot, and is called without one; any other callback
   * gets it (`lock.signal` gives the same one inside `fn`).
   *
   * Concurrent calls on one instance take turns, first come first served
   * within the process (and then in the server's queue with everyone else's):
   * each acquires for its own callback and releases before the next one's
   * turn. `close()` rejects the calls still waiting for their turn. Calls do
   * not nest: a `withLock()` or `hold()` on the same instance inside `fn`
   * waits for the turn `fn` holds, until its timeout.
   *
   * @param fn The critical section.
   * @param options `signal` to stop waiting (for the turn or the lock);
   * `timeoutS` to wait this long in all instead of `acquireTimeoutS`.
   * @returns What `fn` returned.
   * @throws AcquireTimeoutError if not acquired in time.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "my-resource" });
   * const total = await lock.withLock(async (signal) => {
   *   // critical section; check signal.aborted in long loops
   *   return 42;
   * });
   * ```
   */
  withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.#e.withLock(fn, options);
  }

  /**
   * Acquire for a scope: resolves with a {@link HeldLock} that releases when
   * the scope declaring it with `await using` ends, however it ends. Like
   * {@link withLock}, concurrent calls on one instance take turns; the next
   * caller's turn comes when the holding is released. A `HeldLock`
   * garbage-collected unreleased is warned of once.
   *
   * @param options `signal` to stop waiting; `timeoutS` to wait this long in
   * all instead of `acquireTimeoutS`.
   * @returns The holding.
   * @throws AcquireTimeoutError if not acquired in time.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "invoices" });
   * async function bill(): Promise<void> {
   *   await using held = await lock.hold();
   *   // critical section: released when bill() returns or throws
   * }
   * ```
   */
  hold(options?: AcquireOptions): Promise<HeldLock> {
    return this.#e.hold(options);
  }

  /**
   * What the instance is, for logs: key, state, server and, while held, the
   * lease and fence; never the secret. `JSON.stringify(lock)` gives it, and
   * each runtime adapter makes `console.log(lock)` show it.
   *
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * console.log(JSON.stringify(new DistributedLock({ key: "report" })));
   * // {"key":"report","state":"released","server":"127.0.0.1:6388"}
   * ```
   */
  toJSON(): LockSummary {
    let server: string;
    try {
      server = this.server;
    } catch {
      server = "(the sharding strategy fails)";
    }
    const e = this.#e;
    const held = e.held;
    return {
      key: this.key,
      state: e.state,
      server,
      ...(held ? { leaseTtl: e.leaseTtl, fence: e.fence } : {}),
    };
  }

  /**
   * One line for logs: the class, key, server, state and, while held, the
   * fence (the fields of {@link toJSON}); never the token or secret.
   *
   * @returns E.g. `DistributedLock(key "report" on 127.0.0.1:6388, released)`.
   * @example
   * ```ts
   * import { DistributedSemaphore } from "dflockd-client";
   *
   * console.log(`${new DistributedSemaphore({ key: "encoders", limit: 4 })}`);
   * // DistributedSemaphore(key "encoders" limit 4 on 127.0.0.1:6388, released)
   * ```
   */
  toString(): string {
    return describeLock(this.#limit, this.toJSON());
  }

  /**
   * Drop everything now: stop renewing, close the connection (the server then
   * releases what it held) and abandon any attempt in progress. Synchronous
   * and idempotent; the instance can acquire again afterwards.
   *
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * process.on("SIGTERM", () => lock.close());
   * ```
   */
  close(): void {
    this.#e.close();
  }
}

/**
 * A distributed mutual-exclusion lock: at most one holder per key across every
 * client of the server. Waiters are served first come, first served.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "my-resource", leaseTtlS: 20 });
 * await lock.withLock(async () => {
 *   // only one process at a time runs this
 * });
 * ```
 */
export class DistributedLock extends DistributedPrimitive {
  /**
   * Creates the instance; nothing connects until it is used.
   *
   * @param options See {@link LockOptions}; only `key` is required.
   * @throws InvalidArgumentError for any invalid option.
   */
  constructor(options: LockOptions) {
    super("lock", options);
  }
}

/**
 * A distributed counting semaphore: up to `limit` concurrent holders per key.
 * The API mirrors {@link DistributedLock}.
 *
 * @example
 * ```ts
 * import { DistributedSemaphore } from "dflockd-client";
 *
 * const sem = new DistributedSemaphore({ key: "encoders", limit: 4 });
 * await sem.withLock(async () => {
 *   // at most 4 processes run this at once
 * });
 * ```
 */
export class DistributedSemaphore extends DistributedPrimitive {
  /** The semaphore's limit. */
  readonly limit: number;

  /**
   * Creates the instance; nothing connects until it is used.
   *
   * @param options See {@link SemaphoreOptions}; `key` and `limit` are required.
   * @throws InvalidArgumentError for any invalid option.
   */
  constructor(options: SemaphoreOptions) {
    super("semaphore", options, options?.limit);
    this.limit = options.limit;
  }
}
