/**
 * Connections kept open and shared. dflockd ties what is held to the
 * connection that asked for it, and answers a connection's requests in
 * order, so a request that blocks (`l`/`sl` with a timeout, `w`/`sw`, and
 * the queue place an `e`/`se` leaves) must have its connection to itself.
 * Everything else may share one:
 *
 * - An attempt takes an idle connection to itself (or opens one), and sends
 *   its blocking request there.
 * - Once that connection holds something, it is *shared*: other instances
 *   may place holdings on it with requests that cannot block (`l key 0`),
 *   and their renewals and releases go there too. Never two holdings of the
 *   same key, and never a blocking request while anything is held on it.
 *   Once a server has {@link ConnectionPool.shareAfter} connections, an
 *   attempt that may share joins a shared one before it takes an idle one.
 * - When the last holding leaves cleanly, the connection is *idle* (idle.ts):
 *   lent again while the server's read timeout cannot have cut it (the last
 *   request sent on it, plus the read timeout, less a guard), kept open past
 *   it with `ping` where the server answers it, closed never in a burst.
 *
 * Pooled per server: host, port, TLS settings and secret. Nothing here keeps
 * the process alive.
 *
 * @module
 */
import { alarmClock } from "./alarms.ts";
import type { Connection } from "./connection.ts";
import { InvalidArgumentError, LockError } from "./errors.ts";
import { DEFAULT_MAX_CLOSES_PER_SECOND, DEFAULT_MAX_IDLE, IdleConnections } from "./idle.ts";
import { DEFAULT_IDLE_TIMEOUT_MS } from "./keepalive.ts";
import { Link, type LinkUser } from "./link.ts";
import { checkWaitSeconds, describeValue } from "./validate.ts";

export { DEFAULT_MAX_CLOSES_PER_SECOND, DEFAULT_MAX_IDLE } from "./idle.ts";
/** Holdings placed on one shared connection, at most: bounds what one lost connection takes with it. */
export const MAX_SHARED = 64;
/**
 * Connections opened to a server before holdings start to share them: below
 * this, each attempt gets a connection of its own, so that a few holdings
 * keep apart what a broken connection takes with it. Beyond it, sharing is
 * also the faster: the server reads many requests per connection, and the
 * client many replies per read (against dflockd v1.10.0 at 10 and 50
 * workers, 1.2 to 1.8 times the operations a second of 64, on Node, Bun and
 * Deno).
 */
export const DEFAULT_SHARE_AFTER = 8;

/** The part of an instance a pool can close when its client closes. */
export interface PoolUser {
  close(): void;
}

/** The shared connections of one server. */
interface Server {
  /** Links with holdings that others may join. */
  readonly shared: Link[];
  /** Connections open to this server, in any state. */
  open: number;
}

/**
 * How long before the server's read timeout an idle connection stops being
 * lent: its next request must reach the server before the server gives up.
 */
export function idleGuardMs(readTimeoutMs: number): number {
  return Math.min(Math.max(1000, readTimeoutMs / 10), readTimeoutMs / 2);
}

/** The connections of every server an instance has used, and the instances using them. */
export class ConnectionPool {
  readonly #servers = new Map<string, Server>();
  readonly #idle: IdleConnections;
  readonly #maxIdle: number;
  /** Instances with an attempt or holding, when the pool's owner may close them all. */
  readonly #users: Set<PoolUser> | undefined;
  /** Links waiting for replies to tries their callers gave up, and how many. */
  readonly #orphans = new Map<Link, number>();
  #closed = false;
  /** While close() ends its users: connections they leave broken, closed only once every user has ended (I3). */
  #deferred: Array<readonly [Connection, LockError | undefined]> | undefined;
  /** @internal What {@link shareAfter} starts at in new pools; tests set it to 0 to share at once. */
  static defaultShareAfter: number = DEFAULT_SHARE_AFTER;
  /** @internal Connections a server gets before holdings share them (see {@link DEFAULT_SHARE_AFTER}). */
  shareAfter: number = ConnectionPool.defaultShareAfter;

  /**
   * @param maxIdle Idle connections kept per server until the server's read
   * timeout nears; more are kept after a burst of releases, and closed
   * gradually. `0` closes each connection as it empties.
   * @param trackUsers Remember the instances using it, so {@link close} can close them.
   * @param maxClosesPerSecond Idle connections the reaper closes per second per server, at most.
   * @param idleTimeoutMs How long a connection may stay idle, kept open with `ping` past the server's read timeout.
   */
  constructor(
    maxIdle: number = DEFAULT_MAX_IDLE,
    trackUsers = false,
    maxClosesPerSecond: number = DEFAULT_MAX_CLOSES_PER_SECOND,
    idleTimeoutMs: number = DEFAULT_IDLE_TIMEOUT_MS,
  ) {
    this.#maxIdle = maxIdle;
    this.#idle = new IdleConnections(maxIdle, maxClosesPerSecond, idleTimeoutMs);
    this.#users = trackUsers ? new Set() : undefined;
  }

  /** `true` once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Idle connections lendable now, over all servers (not those out for a ping, nor those waiting to close). */
  get idle(): number {
    return this.#idle.count;
  }

  /** Shared connections (with holdings others may join), over all servers. */
  get shared(): number {
    let n = 0;
    for (const s of this.#servers.values()) n += s.shared.length;
    return n;
  }

  /**
   * Lend a connection to `user` for lock `id` on server `poolKey`. If `share`
   * and the server has {@link shareAfter} connections open: a shared one
   * without `id`, with room (not exclusive: only requests that cannot block
   * may go there). Else an idle one, to itself (`exclusive`); else
   * `undefined`, and the caller opens one and {@link attach}es it.
   *
   * Shared before idle: after a burst (say 1,000 first acquisitions at once,
   * each opening a connection), lending idle ones first would keep every one
   * in use, and the server would go on serving one connection per holding;
   * joining those that hold lets the surplus idle, for the reaper to close.
   * @throws LockError `ABORTED` once the pool is closed.
   */
  lend(poolKey: string, id: string, user: LinkUser, share: boolean): Link | undefined {
    if (this.#closed) throw new LockError("the client was closed", "ABORTED");
    const server = this.#servers.get(poolKey);
    if (server === undefined) return undefined;
    if (share && server.open >= this.shareAfter) {
      const shared = server.shared;
      for (let i = shared.length - 1; i >= 0; i--) {
        const link = shared[i] as Link;
        if (link.exclusive || link.conn.closed || link.users.size >= MAX_SHARED || link.users.has(id)) continue;
        link.users.set(id, user);
        return link;
      }
    }
    const idle = this.#idle.take(poolKey, performance.now());
    if (idle === undefined) return undefined;
    idle.exclusive = true;
    idle.users.set(id, user);
    return idle;
  }

  /** A link for a connection `user` just opened for lock `id`, to itself. */
  attach(conn: Connection, poolKey: string, id: string, user: LinkUser): Link {
    const server = this.#server(poolKey);
    server.open++;
    const link = new Link(conn, poolKey, () => {
      if (--server.open === 0) this.#servers.delete(poolKey);
    });
    link.users.set(id, user);
    return link;
  }

  /** Lock `id`'s attempt holds now: its connection may be shared (unless `id` has left it meanwhile). */
  share(link: Link, id: string): void {
    if (!link.users.has(id)) return;
    link.exclusive = false;
    if (link.slot !== -1 || link.conn.closed || this.#closed) return;
    const shared = this.#server(link.poolKey).shared;
    link.slot = shared.length;
    shared.push(link);
  }

  /**
   * Lock `id` no longer uses `link`. `clean`: the connection is in a known
   * state (what was held was released, an acquire was refused); otherwise it
   * is closed, and everyone else on it learns that. A clean connection with
   * nobody left on it becomes idle, kept while `readTimeoutMs` allows.
   */
  leave(link: Link, id: string, clean: boolean, readTimeoutMs: number, reason?: LockError): void {
    link.users.delete(id);
    if (!clean) {
      this.#unlist(link);
      if (this.#deferred !== undefined) this.#deferred.push([link.conn, reason]);
      else link.conn.close(reason);
      return;
    }
    link.exclusive = false;
    if (link.users.size > 0) return;
    this.#unlist(link);
    const conn = link.conn;
    const guard = idleGuardMs(readTimeoutMs);
    const until = conn.lastSendAt + readTimeoutMs - guard;
    const t = performance.now();
    if (this.#closed || conn.closed || conn.pending !== 0 || this.#maxIdle === 0 || until <= t) {
      conn.close();
      return;
    }
    this.#idle.put(link, until, t, guard / 2);
  }
  /** `link` waits for the reply to a try its caller gave up: {@link close} closes it, as no user reaches it. */
  orphan(link: Link): void {
    if (this.#deferred !== undefined) this.#deferred.push([link.conn, undefined]);
    else if (this.#closed) link.conn.close();
    else this.#orphans.set(link, (this.#orphans.get(link) ?? 0) + 1);
  }
  /** One reply `link` waited for came (see {@link orphan}). */
  adopt(link: Link): void {
    const n = (this.#orphans.get(link) ?? 1) - 1;
    if (n > 0) this.#orphans.set(link, n);
    else this.#orphans.delete(link);
  }

  /** `link` is about to be closed, or too slow for tries: lend it to no one meanwhile. */
  retire(link: Link): void {
    this.#unlist(link);
  }

  /** Count `user` as using the pool (only pools that may be closed keep count). */
  enter(user: PoolUser): void {
    this.#users?.add(user);
  }

  /** `user` no longer holds or attempts anything. */
  exit(user: PoolUser): void {
    this.#users?.delete(user);
  }

  /** Close the idle connections now (and the reaper's timer, and the alarm clock's if it only lapses); the pool stays usable. */
  closeIdle(): void {
    this.#idle.closeAll();
    alarmClock.clearIfIdle();
  }

  /**
   * Close every idle connection, and every instance still using the pool
   * (their holdings end, their attempts fail with `ABORTED`). Later
   * attempts fail at once. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const users = this.#users === undefined ? [] : [...this.#users];
    this.#users?.clear();
    // Every user ends its holding first, so none sees its connection close under it as a loss.
    const deferred: Array<readonly [Connection, LockError | undefined]> = [];
    this.#deferred = deferred;
    try {
      for (const u of users) u.close();
    } finally {
      this.#deferred = undefined;
      for (const [conn, reason] of deferred) conn.close(reason);
      for (const link of this.#orphans.keys()) link.conn.close();
      this.#orphans.clear();
    }
    this.closeIdle();
  }

  #server(poolKey: string): Server {
    let server = this.#servers.get(poolKey);
    if (server === undefined) {
      server = { shared: [], open: 0 };
      this.#servers.set(poolKey, server);
    }
    return server;
  }

  #unlist(link: Link): void {
    const i = link.slot;
    if (i === -1) return;
    link.slot = -1;
    const shared = this.#servers.get(link.poolKey)?.shared;
    if (shared === undefined) return;
    const last = shared.pop() as Link;
    if (last !== link) {
      shared[i] = last;
      last.slot = i;
    }
  }
}

/**
 * A client's own pool, from its options (`undefined`: the default).
 * @throws InvalidArgumentError for a bad value.
 */
export function clientPool(
  maxIdlePerServer: unknown,
  maxIdleClosesPerSecond: unknown,
  idleTimeoutS: unknown,
): ConnectionPool {
  const maxIdle = maxIdlePerServer ?? DEFAULT_MAX_IDLE;
  if (typeof maxIdle !== "number" || !Number.isInteger(maxIdle) || maxIdle < 0) {
    throw new InvalidArgumentError(`maxIdlePerServer must be a whole number >= 0, got ${describeValue(maxIdle)}`);
  }
  const closeRate = maxIdleClosesPerSecond ?? DEFAULT_MAX_CLOSES_PER_SECOND;
  if (typeof closeRate !== "number" || Number.isNaN(closeRate) || closeRate <= 0) {
    throw new InvalidArgumentError(
      `maxIdleClosesPerSecond must be a number > 0 (Infinity: no limit), got ${describeValue(closeRate)}`,
    );
  }
  const idleS = checkWaitSeconds("idleTimeoutS", idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_MS / 1000);
  return new ConnectionPool(maxIdle, true, closeRate, idleS * 1000);
}

/**
 * The option key (not part of the public options) by which a client object
 * hands its pool to the instances it makes.
 */
export const POOL: unique symbol = Symbol("dflockd-client pool");

/** The pool for an instance made with `options`: its client's, or the shared one. */
export function poolOf(options: object): ConnectionPool {
  const pool = (options as { [POOL]?: unknown })[POOL];
  return pool instanceof ConnectionPool ? pool : sharedPool;
}

/** The pool every instance made with `new DistributedLock(...)` or `new DistributedSemaphore(...)` shares. */
export const sharedPool: ConnectionPool = new ConnectionPool();

/**
 * Close the idle connections that locks and semaphores made with
 * `new DistributedLock(...)` / `new DistributedSemaphore(...)` keep for
 * reuse. They never keep a process alive, so this is rarely needed: use it
 * where open sockets are checked for, such as Deno's test sanitizers, or
 * before a fork. Holdings and attempts in progress are not touched, and
 * later acquires work as before (they connect afresh). It also clears the
 * renewal timer left to lapse once nothing is held (see alarms.ts).
 *
 * @example
 * ```ts
 * import { closeIdleConnections, DistributedLock } from "dflockd-client";
 *
 * await new DistributedLock({ key: "k" }).withLock(() => {});
 * closeIdleConnections();
 * ```
 */
export function closeIdleConnections(): void {
  sharedPool.closeIdle();
}
