/**
 * `error_limit_mismatch` told in full: the key, the server, the limit asked
 * for and, where the server's `stats` can tell it, the limit the server has.
 * dflockd keeps locks and semaphores in one table (a lock is limit 1), so a
 * lock and a semaphore of one key mismatch too. `stats` lists a lock's key
 * (held or idle) and a held or waited-for semaphore's key with its limit,
 * but an idle semaphore's key without it.
 *
 * @module
 */

import { brand } from "./brand.ts";
import { abortError } from "./cancel.ts";
import { quote, ServerError } from "./errors.ts";
import { openConnection } from "./open.ts";
import type { Settings, Target } from "./options.ts";
import type { ConnectionPool, PoolUser } from "./pool.ts";
import { encodeStats, parseStatsReply, type Stats } from "./protocol.ts";
import { backgroundTimer } from "./transport.ts";

/** Longest wait for the `stats` that tell the server's limit (connect included). */
const STATS_WAIT_MS = 2000;

/**
 * A semaphore (or lock) was asked for with a limit other than the one the
 * server has for its key: every holder of a key must use the same limit.
 * `code` is `"LIMIT_MISMATCH"`, `status` `"error_limit_mismatch"`.
 *
 * @example
 * ```ts
 * import { DistributedSemaphore, LimitMismatchError } from "dflockd-client";
 *
 * try {
 *   await new DistributedSemaphore({ key: "pool", limit: 3 }).withLock(async () => {});
 * } catch (err) {
 *   if (err instanceof LimitMismatchError) console.error(err.limit, "asked;", err.serverLimit, "on the server");
 * }
 * ```
 */
export class LimitMismatchError extends ServerError {
  /** The key asked for. */
  readonly key: string;
  /** The server's `host:port`, when known. */
  readonly server: string | undefined;
  /** The limit asked for (1 for a lock). */
  readonly limit: number;
  /** The limit the server has for the key (1: it is a lock), or `undefined` when its stats could not tell (or told the limit asked for: the key was re-created meanwhile). */
  readonly serverLimit: number | undefined;

  /**
   * Creates the error.
   *
   * @param key The key asked for.
   * @param limit The limit asked for (1 for a lock).
   * @param server The server's `host:port`, when known.
   * @param serverLimit The limit the server has, when known (one equal to `limit` counts as unknown).
   */
  constructor(key: string, limit: number, server?: string, serverLimit?: number) {
    // The limit asked for, read from stats after the mismatch: the key was re-created meanwhile, so unknown.
    if (serverLimit === limit) serverLimit = undefined;
    const asked = limit === 1 ? "as a lock (limit 1)" : `with limit ${limit}`;
    const has =
      serverLimit === undefined
        ? "with another limit (stats list a held semaphore's limit)"
        : serverLimit === 1
          ? "as a lock (limit 1)"
          : `as a semaphore with limit ${serverLimit}`;
    const where = server === undefined ? "" : `${server}: `;
    super(
      `${where}${quote(key)} was asked for ${asked}, but the server has it ${has} (server replied "error_limit_mismatch"): every holder of a key must use the same limit`,
      "error_limit_mismatch",
      "LIMIT_MISMATCH",
    );
    this.name = "LimitMismatchError";
    this.key = key;
    this.server = server;
    this.limit = limit;
    this.serverLimit = serverLimit;
  }
}

brand(LimitMismatchError, "LimitMismatchError");

/** The limit `stats` shows for `key`: 1 for a lock, a semaphore's limit, or `undefined`. */
export function limitInStats(s: Stats, key: string): number | undefined {
  if (s.locks.some((l) => l.key === key) || s.idle_locks.some((l) => l.key === key)) return 1;
  const limit = s.semaphores.find((m) => m.key === key)?.limit;
  return typeof limit === "number" ? limit : undefined;
}

/** Whether `err` is the server's `error_limit_mismatch`, not yet told in full. */
export function isBareMismatch(err: unknown): err is ServerError {
  return err instanceof ServerError && err.code === "LIMIT_MISMATCH" && !(err instanceof LimitMismatchError);
}

/**
 * `parse`, with a bare `error_limit_mismatch` it throws told in full: the
 * key, the limit asked for and the server (for the low-level functions,
 * which ask no stats on a connection the caller owns).
 */
export function namingMismatch<T>(
  parse: (line: string, command: string) => T,
  key: string,
  limit: number,
  server: string | undefined,
): (line: string, command: string) => T {
  return (line, command) => {
    try {
      return parse(line, command);
    } catch (err) {
      throw isBareMismatch(err) ? new LimitMismatchError(key, limit, server) : err;
    }
  };
}

/** One `stats` fetch in flight for a server, shared by every mismatch explained meanwhile. */
interface Fetch {
  readonly stats: Promise<Stats | undefined>;
  readonly give: AbortController;
  waiters: number;
}

/** The fetches in flight, by pool key (host, port, TLS settings and secret). */
const inFlight = new Map<string, Fetch>();
/** What stops the explanations an instance (its driver) waits for: see {@link stopExplaining}. */
const stoppers = new WeakMap<object, Set<() => void>>();

/** `stats` of `target`, in {@link STATS_WAIT_MS} at most, or `undefined`; ended early by `give`. Never rejects. */
async function readStats(target: Target, give: AbortController): Promise<Stats | undefined> {
  const timer = backgroundTimer(() => give.abort(), STATS_WAIT_MS);
  // Given up: no timer is left behind (the connection's closing follows below).
  give.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  const started = performance.now();
  try {
    const conn = await openConnection(target.open, give.signal);
    try {
      const left = Math.max(1, STATS_WAIT_MS - (performance.now() - started));
      if (give.signal.aborted) return undefined;
      give.signal.addEventListener("abort", () => conn.close(), { once: true });
      return await conn.request(encodeStats(), "stats", parseStatsReply, left);
    } finally {
      conn.close();
    }
  } catch {
    // No stats in time: the error says less, and is still the mismatch.
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The fetch in flight for `target`, or a new one: a burst of mismatches asks the server's stats once. */
function joinFetch(target: Target): Fetch {
  const found = inFlight.get(target.poolKey);
  if (found !== undefined) return found;
  const give = new AbortController();
  const fetch: Fetch = { give, waiters: 0, stats: readStats(target, give) };
  inFlight.set(target.poolKey, fetch);
  void fetch.stats.then(() => {
    if (inFlight.get(target.poolKey) === fetch) inFlight.delete(target.poolKey);
  });
  return fetch;
}

/**
 * Stop the explanations `owner` (an instance's driver) waits for: its
 * `close()` was called. Each settles at once, without the server's limit.
 */
export function stopExplaining(owner: object): void {
  const stops = stoppers.get(owner);
  if (stops === undefined) return;
  stoppers.delete(owner);
  for (const stop of stops) stop();
}

/** Where an instance's `error_limit_mismatch` came from, and what may cut its explanation short. */
export interface MismatchSource {
  /** The instance's settings (key, limit, servers). */
  readonly s: Settings;
  /** The pool key of the server the attempt talked to. */
  readonly poolKey: string;
  /** That server's `host:port`. */
  readonly server: string | undefined;
  /** The attempt was ended (the instance closed) before its reply was read: no stats are asked. */
  readonly ended: boolean;
  /** The caller's signal: aborting rejects with `ABORTED` at once. */
  readonly signal: AbortSignal | undefined;
  /** The instance's pool: closing it (the client's `close()`) settles at once. */
  readonly pool: ConnectionPool;
  /** The instance's driver: {@link stopExplaining} with it settles at once. */
  readonly owner: object;
}

/**
 * The full error for an instance's `error_limit_mismatch`: asks the `stats`
 * of the server the attempt talked to, on a connection of its own, for
 * {@link STATS_WAIT_MS} at most (one fetch per server at a time, shared),
 * and words the error without the server's limit if that fails, or if the
 * instance or its client is closed meanwhile (or was already). A limit
 * equal to the one asked for (the key re-created meanwhile) is not told.
 *
 * @throws LockError `ABORTED` at once when the caller's signal aborts (or had).
 */
export function explainMismatch(m: MismatchSource): Promise<LimitMismatchError> {
  const limit = m.s.limit ?? 1;
  const told = (serverLimit: number | undefined): LimitMismatchError =>
    new LimitMismatchError(m.s.key, limit, m.server, serverLimit);
  const { signal, pool, owner } = m;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const target = m.s.targets.find((t) => t.poolKey === m.poolKey);
  if (target === undefined || m.ended || pool.closed) return Promise.resolve(told(undefined));
  const fetch = joinFetch(target);
  fetch.waiters++;
  const mine = stoppers.get(owner) ?? new Set<() => void>();
  stoppers.set(owner, mine);
  return new Promise<LimitMismatchError>((resolve, reject) => {
    let done = false;
    const user: PoolUser = { close: () => finish(() => resolve(told(undefined))) };
    const onAbort = (): void => finish(() => reject(abortError(signal)));
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener("abort", onAbort);
      pool.exit(user);
      mine.delete(user.close);
      // The last one waiting gives up: the fetch's connection and timer go too.
      if (--fetch.waiters === 0) {
        if (inFlight.get(target.poolKey) === fetch) inFlight.delete(target.poolKey);
        fetch.give.abort();
      }
      settle();
    };
    mine.add(user.close);
    pool.enter(user);
    signal?.addEventListener("abort", onAbort, { once: true });
    fetch.stats.then((stats) => finish(() => resolve(told(stats && limitInStats(stats, m.s.key)))));
  });
}
