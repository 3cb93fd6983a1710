/**
 * Hooks: a lock tells what happens to it (waiting, acquired, renewed,
 * released, lost, abandoned) to callbacks the user wires to logs or metrics. Nothing is
 * built for a hook that is not set, and a hook that throws is logged, never
 * thrown into the lock's work.
 *
 * @module
 */
import { InvalidArgumentError, type LockLostError } from "./errors.ts";
import type { Grant } from "./protocol.ts";
import { checkKnownKeys, describeValue } from "./validate.ts";

/**
 * What every {@link LockHooks} event carries.
 *
 * @example
 * ```ts
 * import type { LockEvent } from "dflockd-client";
 *
 * const log = (e: LockEvent): void => console.log(`${e.key} @ ${e.server}`);
 * ```
 */
export interface LockEvent {
  /** The lock's key. */
  readonly key: string;
  /**
   * `host:port` of the server the key goes to: the one that granted the
   * holding (or holds the queue place), which after a cluster redirect is
   * the leader, not the server the sharding picked.
   */
  readonly server: string;
}

/**
 * A `waiting` event: why the instance waits.
 *
 * @example
 * ```ts
 * import type { WaitingEvent } from "dflockd-client";
 *
 * const onWaiting = (e: WaitingEvent): void => console.log(e.key, "waits:", e.reason);
 * ```
 */
export interface WaitingEvent extends LockEvent {
  /** `"queued"`: in the server's queue (`enqueue()` answered queued); `"turn"`: behind this instance's earlier `withLock()`/`hold()` callers. */
  readonly reason: "queued" | "turn";
}

/**
 * An `acquired` or `renewed` event: the holding as it now stands.
 *
 * @example
 * ```ts
 * import type { HeldEvent } from "dflockd-client";
 *
 * const onAcquired = (e: HeldEvent): void => console.log(e.key, "held for", e.leaseTtl, "s, fence", e.fence);
 * ```
 */
export interface HeldEvent extends LockEvent {
  /** The server's token for the holding. */
  readonly token: string;
  /** The lease TTL (seconds) now applied. */
  readonly leaseTtl: number;
  /** The fencing token, when the server sends one. */
  readonly fence: string | undefined;
}

/**
 * A `lost` event.
 *
 * @example
 * ```ts
 * import type { LostEvent } from "dflockd-client";
 *
 * const onLost = (e: LostEvent): void => console.error(e.key, "lost:", e.error.message);
 * ```
 */
export interface LostEvent extends LockEvent {
  /** Why, as `onLost` and `release()` report it. */
  readonly error: LockLostError;
}

/**
 * An `abandoned` event: the object kept for a holding was garbage-collected
 * while it held (never released), noticed from the holding's first renewal
 * on. Told once per holding, with a `console.warn`; the holding is renewed
 * on until `maxHoldS`, or the process exits.
 *
 * @example
 * ```ts
 * import type { AbandonedEvent } from "dflockd-client";
 *
 * const onAbandoned = (e: AbandonedEvent): void => console.error(`${e.object} for ${e.key} was never released`);
 * ```
 */
export interface AbandonedEvent extends LockEvent {
  /** What was collected: the instance of an `acquire()` (or `enqueue()`/`wait()`), or the `HeldLock` of a `hold()`. */
  readonly object: "DistributedLock" | "DistributedSemaphore" | "HeldLock";
  /** The holding's `maxHoldS`, when set: it ends then; `undefined`: renewed until the process exits. */
  readonly maxHoldS: number | undefined;
}

/**
 * Callbacks told what happens to a lock or semaphore, for logs and metrics;
 * set any of them with the `hooks` option. They are called after the fact
 * and not awaited; one that throws or rejects is logged with `console.error`
 * and changes nothing. An object with methods (a class instance) works too.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({
 *   key: "report",
 *   hooks: {
 *     acquired: (e) => console.log("acquired", e.key, "on", e.server),
 *     released: (e) => console.log("released", e.key),
 *     lost: (e) => console.error("lost", e.key, e.error.message),
 *   },
 * });
 * ```
 */
export interface LockHooks {
  /** The instance waits: queued on the server, or for its turn among this instance's callers. */
  waiting?: ((event: WaitingEvent) => unknown) | undefined;
  /** The lock (or slot) is held: by `acquire()`, `enqueue()`, `wait()`, `withLock()` or `hold()`. */
  acquired?: ((event: HeldEvent) => unknown) | undefined;
  /** A renewal was confirmed. */
  renewed?: ((event: HeldEvent) => unknown) | undefined;
  /**
   * A holding ended by `release()` (also at the end of `withLock()` and
   * `hold()` scopes) or `close()`. Not told for a release a cluster follower
   * answered `error_not_leader`: nothing was released (the lease runs out on
   * the leader) and `release()` rejects with the `NotLeaderError`.
   */
  released?: ((event: LockEvent) => unknown) | undefined;
  /** A holding was lost, or found lost by `release()`. */
  lost?: ((event: LostEvent) => unknown) | undefined;
  /** The object kept for a holding was garbage-collected while it held: see {@link AbandonedEvent}. */
  abandoned?: ((event: AbandonedEvent) => unknown) | undefined;
}

/** The holding `grant` of `key` on `server`, as `acquired` and `renewed` hooks see it. */
export function heldEvent(key: string, server: string, grant: Grant): HeldEvent {
  return { key, server, token: grant.token, leaseTtl: grant.lease, fence: grant.fence };
}

/** The keys of {@link LockHooks}. */
export const HOOK_NAMES: ReadonlySet<string> = new Set([
  "waiting",
  "acquired",
  "renewed",
  "released",
  "lost",
  "abandoned",
]);

/**
 * Call `hook` with the event `make()` builds. A throw, or a promise it
 * returns that rejects, is logged. Call sites check `hook` first, so nothing
 * is built for none.
 */
export function fire<E>(name: string, hook: ((event: E) => unknown) | undefined, make: () => E): void {
  if (hook === undefined) return;
  const report = (err: unknown): void => console.error(`dflockd-client: the ${name} hook failed:`, err);
  try {
    const result: unknown = hook(make());
    if (typeof (result as PromiseLike<unknown> | null)?.then === "function") {
      (result as PromiseLike<unknown>).then(undefined, report);
    }
  } catch (err) {
    report(err);
  }
}

/** Check the `hooks` option: an object of functions, each one of {@link LockHooks}' names. */
export function checkHooks(hooks: unknown): LockHooks | undefined {
  if (hooks === undefined) return undefined;
  if (typeof hooks !== "object" || hooks === null) {
    throw new InvalidArgumentError(`hooks must be an object of functions, got ${describeValue(hooks)}`);
  }
  // A plain object's other keys are typos; a class instance may hold state of its own.
  const proto: unknown = Object.getPrototypeOf(hooks);
  if (proto === Object.prototype || proto === null) checkKnownKeys("hooks", hooks, HOOK_NAMES);
  const out: Record<string, unknown> = {};
  for (const name of HOOK_NAMES) {
    const fn: unknown = (hooks as Record<string, unknown>)[name];
    if (fn === undefined) continue;
    if (typeof fn !== "function") {
      throw new InvalidArgumentError(`hooks.${name} must be a function, got ${describeValue(fn)}`);
    }
    out[name] = fn.bind(hooks);
  }
  return out as LockHooks;
}
