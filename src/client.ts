/**
 * A client object: servers, TLS, auth and lock defaults given once, and one
 * pool of connections shared by every lock and semaphore it makes.
 *
 * @module
 */
import {
  CLIENT_KEYS,
  CLIENT_LOCK_KEYS,
  type ClientBase,
  clientPool,
  instanceOptions,
  readOnce,
} from "./client-options.ts";
import { describeClient } from "./describe.ts";
import { InvalidArgumentError, LockError } from "./errors.ts";
import type { HeldLocks } from "./held-locks.ts";
import type { Link, LinkUser } from "./link.ts";
import { holdAll, type LockSpec, type MultiHost, type MultiLockOptions, withLocks } from "./multi.ts";
import { openConnection } from "./open.ts";
import { type LockOptions, pickServer, readSettings, type Target } from "./options.ts";
import { DistributedLock, DistributedSemaphore } from "./primitive.ts";
import { encodeStats, parseStatsReply, type Stats } from "./protocol.ts";
import { checkKnownKeys } from "./validate.ts";

/**
 * Options of a {@link DflockdClient}: where the servers are, how to reach
 * them, and defaults for the locks and semaphores it makes. Every field is
 * the {@link LockOptions} field of the same name.
 *
 * @example
 * ```ts
 * import { DflockdClient, type ClientOptions } from "dflockd-client";
 *
 * const options: ClientOptions = { servers: [["10.0.0.5", 6388]], leaseTtlS: 30, maxIdlePerServer: 16 };
 * const client = new DflockdClient(options);
 * ```
 */
export interface ClientOptions extends Omit<LockOptions, "key"> {
  /**
   * Idle connections kept open per server for the next lock to use (default
   * 64), until the server's read timeout nears. After a burst of releases
   * more are kept for a while, and closed gradually (see
   * `maxIdleClosesPerSecond`). `0` keeps none: each connection closes as it
   * empties, and every acquire connects afresh.
   */
  maxIdlePerServer?: number | undefined;
  /**
   * The most idle connections closed per second per server (default 100).
   * dflockd scans every key it knows on each disconnect, so a burst of them
   * stalls the server: the client closes idle connections one at a time,
   * spaced to be gone before the server's read timeout would cut them, and
   * never faster than this.
   */
  maxIdleClosesPerSecond?: number | undefined;
  /**
   * How long a pooled connection is kept open with `ping` once idle, in
   * whole seconds (default 60, at most 3600, or `Infinity`). An idle
   * connection is lent while the server's read timeout (`serverReadTimeoutS`)
   * cannot have cut it; then, where the server answers `ping` (dflockd v1.14
   * and later), a ping keeps it for another such span, until it has been idle
   * this long; then it closes. An older server answers the first pings
   * `error`: those connections close a span later, and later ones of that
   * server close as the read timeout nears, unpinged. `0`: never pinged.
   */
  idleTimeoutS?: number | undefined;
}

/**
 * Per-lock settings given to {@link DflockdClient.lock}: everything but where
 * and how to connect, which belongs to the client.
 *
 * @example
 * ```ts
 * import { DflockdClient, type ClientLockOptions } from "dflockd-client";
 *
 * const client = new DflockdClient();
 * const opts: ClientLockOptions = { acquireTimeoutS: 2, leaseTtlS: 10 };
 * const lock = client.lock("nightly-report", opts);
 * ```
 */
export type ClientLockOptions = Pick<
  LockOptions,
  | "acquireTimeoutS"
  | "leaseTtlS"
  | "renewRatio"
  | "requestTimeoutMs"
  | "safetyMarginMs"
  | "maxHoldS"
  | "onLost"
  | "hooks"
>;

/**
 * One server's answer to {@link DflockdClient.stats}: its statistics, or why
 * they could not be fetched.
 *
 * @example
 * ```ts
 * import { DflockdClient, type ServerStats } from "dflockd-client";
 *
 * const all: ServerStats[] = await new DflockdClient().stats();
 * for (const s of all) console.log(`${s.host}:${s.port}`, s.ok ? s.stats.connections : s.error.message);
 * ```
 */
export type ServerStats =
  | { readonly host: string; readonly port: number; readonly ok: true; readonly stats: Stats }
  | { readonly host: string; readonly port: number; readonly ok: false; readonly error: LockError };

/** The identity and user a stats request borrows a connection under. */
const STATS = "\u0001stats";
const NOBODY: LinkUser = { linkClosed: () => {} };

/**
 * A dflockd client: configured once with servers, TLS, auth and defaults; it
 * makes locks and semaphores that share its connections, asks every server
 * for stats, and closes everything at once.
 *
 * Each lock or semaphore still holds through a connection of its own while it
 * holds (dflockd ties a holding to the connection); what the client shares is
 * the idle ones, so that an acquire after a release connects, handshakes and
 * authenticates only when no idle connection is at hand.
 *
 * @example
 * ```ts
 * import { DflockdClient } from "dflockd-client";
 *
 * const client = new DflockdClient({ servers: [["127.0.0.1", 6388]], leaseTtlS: 30 });
 * const lock = client.lock("invoices");
 * await lock.withLock(async () => {
 *   // critical section
 * });
 * client.close();
 * ```
 */
export class DflockdClient {
  /** Its options (checked, and as given), and its pool: what its instances are made from. */
  readonly #base: ClientBase;
  readonly #multi: MultiHost;

  /**
   * Checks the options; nothing connects until a lock is used. They are
   * read now, once: changing them afterwards (a `hooks` or `tls` object
   * included) changes none of the client's locks.
   * @param options See {@link ClientOptions}; all optional.
   * @throws InvalidArgumentError for any invalid option.
   */
  constructor(options: ClientOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("DflockdClient options must be an object");
    }
    checkKnownKeys("DflockdClient options", options, CLIENT_KEYS);
    const { maxIdlePerServer, maxIdleClosesPerSecond, idleTimeoutS, ...rest } = options;
    // Check everything now, with a placeholder key.
    const settings = readSettings("lock", { ...rest, key: "-" });
    this.#base = {
      options: readOnce(rest, settings),
      settings,
      pool: clientPool(maxIdlePerServer, maxIdleClosesPerSecond, idleTimeoutS),
    };
    this.#multi = {
      acquireTimeoutS: settings.acquireTimeoutS,
      lockOptionKeys: CLIENT_LOCK_KEYS,
      serverIndex: (key) => settings.targets.indexOf(pickServer({ ...settings, key })),
      make: (key, limit, opts) => (limit === undefined ? this.lock(key, opts) : this.semaphore(key, limit, opts)),
    };
  }

  /** `true` once {@link close} was called. */
  get closed(): boolean {
    return this.#base.pool.closed;
  }

  /** The servers, as `[host, port]` pairs, in sharding order. */
  get servers(): ReadonlyArray<readonly [string, number]> {
    return this.#base.settings.targets.map((t) => [t.open.host, t.open.port] as const);
  }

  /**
   * One line for logs: the servers, in sharding order, and whether the
   * client is open or closed; never the secret.
   *
   * @returns E.g. `DflockdClient(servers 10.0.0.5:6388 10.0.0.6:6388, open)`.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * console.log(`${new DflockdClient({ servers: ["10.0.0.5:6388", "10.0.0.6:6388"] })}`);
   * ```
   */
  toString(): string {
    return describeClient(this.#base.settings.targets, this.closed);
  }

  /**
   * A lock on `key` with the client's servers, TLS, auth and defaults
   * (overridden by `options`), sharing the client's connections.
   *
   * @param key The lock's name (see the README's "Keys").
   * @param options Per-lock settings.
   * @returns A new, unheld {@link DistributedLock}.
   * @throws InvalidArgumentError for a bad key or option; LockError `ABORTED` once the client is closed.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient();
   * const lock = client.lock("k", { acquireTimeoutS: 5 });
   * if (await lock.acquire()) await lock.release();
   * ```
   */
  lock(key: string, options?: ClientLockOptions): DistributedLock {
    return new DistributedLock(instanceOptions(this.#base, key, options));
  }

  /**
   * A semaphore on `key` allowing `limit` holders, with the client's settings
   * (overridden by `options`), sharing the client's connections.
   *
   * @param key The semaphore's name.
   * @param limit How many may hold it at once (every holder must agree).
   * @param options Per-semaphore settings.
   * @returns A new, unheld {@link DistributedSemaphore}.
   * @throws InvalidArgumentError for a bad key, limit or option.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient();
   * const slot = client.semaphore("encoders", 4);
   * await slot.withLock(async () => {});
   * ```
   */
  semaphore(key: string, limit: number, options?: ClientLockOptions): DistributedSemaphore {
    return new DistributedSemaphore(instanceOptions(this.#base, key, options, limit));
  }

  /**
   * Hold several keys at once (locks, and semaphore slots as `{ key, limit }`):
   * every key or none, within one `timeoutS` for all of them. Keys are taken
   * one after the other in one canonical order, by server (the index in
   * `servers` of the server each goes to) and then by key (code-unit order),
   * so that callers whose sets overlap never deadlock. If a key cannot be had
   * in time (or the signal aborts, or a request fails), the keys already taken
   * are released, last first, before the call rejects. A key may appear once.
   *
   * @param keys The keys: a string for a lock, `{ key, limit }` for a semaphore slot.
   * @param options `timeoutS`, `signal`, and per-lock settings for every key.
   * @returns The holding of every key: release it, or declare it with `await using`.
   * @throws InvalidArgumentError before anything is sent: no keys, a key given twice, a bad key, limit or option.
   * @throws AcquireTimeoutError naming the key not had in time (the others were released).
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient();
   * await using held = await client.holdAll(["account:7", "account:3", { key: "transfers", limit: 8 }]);
   * held.assertHeld();
   * ```
   */
  holdAll(keys: ReadonlyArray<LockSpec>, options?: MultiLockOptions): Promise<HeldLocks> {
    return holdAll(this.#multi, keys, options);
  }

  /**
   * Hold several keys at once as {@link holdAll} does, run `fn`, release them
   * in reverse, even if `fn` throws (its error is then the one rethrown).
   * `fn` gets one `AbortSignal`, aborted with the `LockLostError` of any key
   * that is lost while it runs (the other keys stay held until `fn` ends); if
   * `fn` then returns normally, `withLocks` rejects with that `LockLostError`.
   *
   * @param keys The keys: a string for a lock, `{ key, limit }` for a semaphore slot.
   * @param fn The critical section.
   * @param options `timeoutS`, `signal`, and per-lock settings for every key.
   * @returns What `fn` returned.
   * @throws As {@link holdAll}; LockLostError if a key was lost while `fn` ran.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient();
   * await client.withLocks(["account:7", "account:3"], async (signal) => {
   *   // move money between the two accounts; stop if signal aborts
   * }, { timeoutS: 5 });
   * ```
   */
  withLocks<T>(
    keys: ReadonlyArray<LockSpec>,
    fn: (signal: AbortSignal) => T | Promise<T>,
    options?: MultiLockOptions,
  ): Promise<T> {
    return withLocks(this.#multi, keys, fn, options);
  }

  /**
   * Every server's statistics, in the order of `servers`, each fetched on one
   * of the client's idle connections when there is one. A server that cannot
   * answer is reported in its entry; the call itself does not reject.
   *
   * @returns One {@link ServerStats} per server.
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient({ servers: [["10.0.0.5", 6388], ["10.0.0.6", 6388]] });
   * for (const s of await client.stats()) console.log(s.host, s.port, s.ok && s.stats.locks.length);
   * ```
   */
  stats(): Promise<ServerStats[]> {
    return Promise.all(this.#base.settings.targets.map((t) => this.#statsOf(t)));
  }

  /**
   * Close everything: every lock and semaphore of this client that holds or
   * is acquiring ends as if its own `close()` had been called (the server
   * releases what they held), idle connections close, and later acquires
   * fail with a `LockError` whose code is `"ABORTED"`. Synchronous and idempotent.
   *
   * @example
   * ```ts
   * import { DflockdClient } from "dflockd-client";
   *
   * const client = new DflockdClient();
   * process.on("SIGTERM", () => client.close());
   * ```
   */
  close(): void {
    this.#base.pool.close();
  }

  async #statsOf(t: Target): Promise<ServerStats> {
    const { host, port } = t.open;
    const { pool, settings } = this.#base;
    let link: Link | undefined;
    try {
      link = pool.lend(t.poolKey, STATS, NOBODY, false);
      link ??= pool.attach(await openConnection(t.open), t.poolKey, STATS, NOBODY);
      const stats = await link.conn.request(encodeStats(), "stats", parseStatsReply, settings.requestTimeoutMs);
      pool.leave(link, STATS, true, settings.readTimeoutMs);
      return { host, port, ok: true, stats };
    } catch (err) {
      if (link !== undefined) pool.leave(link, STATS, false, settings.readTimeoutMs);
      const error = err instanceof LockError ? err : new LockError(String(err), "CONNECTION", { cause: err });
      return { host, port, ok: false, error };
    }
  }
}
