/**
 * Several keys at once (`client.holdAll()`, `client.withLocks()`), composed
 * of each key's own `hold()`: every key or none, within one timeout, taken in
 * one canonical order (by server, then by key) so that callers with
 * overlapping sets never wait on each other in a cycle, and released in
 * reverse. Nothing of the protocol is here: each key is an ordinary lock or
 * semaphore of the client.
 *
 * @module
 */
import { checkSignal } from "./cancel.ts";
import type { ClientLockOptions } from "./client.ts";
import { AcquireTimeoutError, InvalidArgumentError, quote } from "./errors.ts";
import type { HeldLock } from "./held.ts";
import { HeldLocks, releaseInReverse } from "./held-locks.ts";
import { checkCallOptions } from "./options.ts";
import type { DistributedPrimitive } from "./primitive.ts";
import { backgroundTimer } from "./transport.ts";
import { checkKey, checkKnownKeys, checkLimit, describeValue } from "./validate.ts";

const now: () => number = () => performance.now();

/**
 * One key of {@link DflockdClient.holdAll} and {@link DflockdClient.withLocks}:
 * a string for a lock, or `{ key, limit }` for a slot of a semaphore.
 *
 * @example
 * ```ts
 * import { DflockdClient, type LockSpec } from "dflockd-client";
 *
 * const keys: LockSpec[] = ["invoice:42", { key: "pdf-workers", limit: 4 }];
 * await new DflockdClient().withLocks(keys, async () => {});
 * ```
 */
export type LockSpec = string | { readonly key: string; readonly limit: number };

/**
 * Options of {@link DflockdClient.holdAll} and {@link DflockdClient.withLocks}:
 * one time budget and one signal for every key, and the per-lock settings of
 * {@link ClientLockOptions} (but `acquireTimeoutS`: `timeoutS` replaces it),
 * applied to each key.
 *
 * @example
 * ```ts
 * import { DflockdClient, type MultiLockOptions } from "dflockd-client";
 *
 * const options: MultiLockOptions = { timeoutS: 10, leaseTtlS: 30, signal: AbortSignal.timeout(60_000) };
 * await new DflockdClient().withLocks(["a", "b"], async () => {}, options);
 * ```
 */
export interface MultiLockOptions extends Omit<ClientLockOptions, "acquireTimeoutS"> {
  /**
   * Whole seconds to get every key, all keys together (default: the client's
   * `acquireTimeoutS`). Each key waits for what is left of it. `0` tries each
   * key once; `Infinity` waits without limit.
   */
  timeoutS?: number | undefined;
  /** Stop waiting: the keys already taken are released and the call rejects with code `"ABORTED"`. */
  signal?: AbortSignal | undefined;
}

/** What a client gives the functions here: its defaults, its sharding, and its locks. */
export interface MultiHost {
  /** The client's `acquireTimeoutS`. */
  readonly acquireTimeoutS: number;
  /** The per-lock options the client accepts (`client.lock()`'s). */
  readonly lockOptionKeys: ReadonlySet<string>;
  /** The index in the client's `servers` of the server `key` goes to (checks a custom strategy's answer). */
  serverIndex(key: string): number;
  /** A new lock (`limit` undefined) or semaphore of the client. */
  make(key: string, limit: number | undefined, options: ClientLockOptions): DistributedPrimitive;
}

/** One key to take: its instance, and where it stands in the canonical order. */
interface Step {
  readonly key: string;
  readonly server: number;
  readonly primitive: DistributedPrimitive;
}

/** A checked call: the keys in canonical order, the budget and the caller's signal. */
interface Plan {
  readonly steps: ReadonlyArray<Step>;
  readonly timeoutS: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * `client.holdAll()`: check everything, then take every key in canonical
 * order within one budget; on any failure release what was taken (in
 * reverse) before rejecting.
 */
export async function holdAll(
  host: MultiHost,
  keys: ReadonlyArray<LockSpec>,
  options: MultiLockOptions | undefined,
  what = "holdAll()",
): Promise<HeldLocks> {
  return takeAll(plan(host, what, keys, options));
}

/** `client.withLocks()`: holdAll(), run `fn` with the one signal, release in reverse. */
export async function withLocks<T>(
  host: MultiHost,
  keys: ReadonlyArray<LockSpec>,
  fn: (signal: AbortSignal) => T | Promise<T>,
  options: MultiLockOptions | undefined,
): Promise<T> {
  if (typeof fn !== "function") throw new InvalidArgumentError("withLocks() needs a function");
  const held = await holdAll(host, keys, options, "withLocks()");
  let result: T;
  try {
    result = await fn(held.signal);
  } catch (err) {
    try {
      await held.release();
    } catch {
      // The callback's error is the one that matters.
    }
    throw err;
  }
  await held.release();
  return result;
}

/**
 * Check the keys and options and make every key's instance, sorted in
 * canonical order: by server (its index in `servers`), then by key in
 * code-unit order. Nothing is sent.
 * @throws InvalidArgumentError naming the first problem; the signal's error if it already aborted.
 */
function plan(host: MultiHost, what: string, keys: ReadonlyArray<LockSpec>, options?: MultiLockOptions): Plan {
  const { timeoutS, signal, ...lockOptions } = checkOptions(host, what, options);
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new InvalidArgumentError(`${what} needs a non-empty array of keys, got ${describeValue(keys)}`);
  }
  const seen = new Set<string>();
  const steps: Step[] = [];
  for (let i = 0; i < keys.length; i++) {
    const [key, limit] = readSpec(what, i, keys[i]);
    if (seen.has(key)) {
      throw new InvalidArgumentError(`${what}: ${quote(key)} is given twice (keys[${i}]); each key may appear once`);
    }
    seen.add(key);
    steps.push({ key, server: host.serverIndex(key), primitive: host.make(key, limit, lockOptions) });
  }
  steps.sort((a, b) => a.server - b.server || (a.key < b.key ? -1 : 1));
  checkSignal(signal);
  return { steps, timeoutS: timeoutS ?? host.acquireTimeoutS, signal };
}

/** The options, checked: known keys only, `timeoutS` and `signal` as for `withLock()`. */
function checkOptions(host: MultiHost, what: string, options: MultiLockOptions | undefined): MultiLockOptions {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`${what} options must be an object, got ${describeValue(options)}`);
  }
  if (Object.hasOwn(options, "acquireTimeoutS")) {
    throw new InvalidArgumentError(`${what}: give timeoutS (one budget for every key), not acquireTimeoutS`);
  }
  const known = new Set([...host.lockOptionKeys, "timeoutS", "signal"]);
  known.delete("acquireTimeoutS");
  checkKnownKeys(what, options, known);
  checkCallOptions(what, { signal: options.signal, timeoutS: options.timeoutS });
  return options;
}

/** `keys[i]` as `[key, limit]` (`limit` undefined for a lock). */
function readSpec(what: string, i: number, spec: unknown): [string, number | undefined] {
  const at = `${what}: keys[${i}]`;
  if (typeof spec === "string") return [named(at, () => checkKey(spec)), undefined];
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new InvalidArgumentError(
      `${at} must be a key (a string) or { key, limit } for a semaphore, got ${describeValue(spec)}`,
    );
  }
  checkKnownKeys(at, spec, SPEC_KEYS);
  const { key, limit } = spec as { key: unknown; limit: unknown };
  return [named(at, () => checkKey(key)), named(at, () => checkLimit(limit))];
}
const SPEC_KEYS: ReadonlySet<string> = new Set(["key", "limit"]);

/** Run a check, its message prefixed with which entry it is about. */
function named<T>(at: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${at}: ${err.message}`);
    throw err;
  }
}

/**
 * Take each key in turn, each waiting for what is left of the budget. One
 * controller stops the taking (the caller's signal, the budget's end, or the
 * loss of a key already taken); another is the holding's one signal.
 */
async function takeAll({ steps, timeoutS, signal }: Plan): Promise<HeldLocks> {
  const holding = new AbortController();
  const taking = new AbortController();
  const stop = (): void => taking.abort(signal?.reason);
  signal?.addEventListener("abort", stop, { once: true });
  holding.signal.addEventListener("abort", () => taking.abort(holding.signal.reason), { once: true });
  const held: HeldLock[] = [];
  let current = steps[0] as Step;
  const budgetMs = timeoutS * 1000;
  const startedAt = now();
  // With a budget of 0 each key is tried once: the server's answer ends it, not a timer. Without limit
  // (Infinity) there is no timer either (one would fire after a runtime timer's 2^31 - 1 ms).
  const timer =
    timeoutS > 0 && Number.isFinite(timeoutS)
      ? backgroundTimer(() => taking.abort(new AcquireTimeoutError(current.key, timeoutS)), budgetMs)
      : undefined;
  try {
    for (const step of steps) {
      current = step;
      const leftS = Math.max(0, Math.ceil((budgetMs - (now() - startedAt)) / 1000));
      const h = await step.primitive.hold({ timeoutS: leftS, signal: taking.signal });
      held.push(h);
      if (h.signal.aborted) holding.abort(h.signal.reason);
      else h.signal.addEventListener("abort", () => holding.abort(h.signal.reason), { once: true });
    }
    // A key lost before the last one was granted: not every key is held.
    if (holding.signal.aborted) throw holding.signal.reason;
  } catch (err) {
    try {
      await releaseInReverse(held);
    } catch {
      // Released (or lost, or its connection closed: not held either way); the failure to take is what matters.
    }
    throw err instanceof AcquireTimeoutError ? notInTime(current.key, timeoutS, steps, held) : err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", stop);
  }
  return new HeldLocks(held, holding.signal);
}

/** The error for a key not had within the budget, saying what became of the others. */
function notInTime(
  key: string,
  timeoutS: number,
  steps: ReadonlyArray<Step>,
  held: ReadonlyArray<HeldLock>,
): AcquireTimeoutError {
  const err = new AcquireTimeoutError(key, timeoutS);
  const taken = held.map((h) => quote(h.key, 40)).join(", ");
  err.message +=
    held.length === 0
      ? ` (the first of ${steps.length} keys; none was held)`
      : ` (key ${held.length + 1} of ${steps.length}; the ${held.length} already held were released first: ${taken})`;
  return err;
}
