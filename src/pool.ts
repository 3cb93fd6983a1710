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
 *   attempt that may share joins a shared one before it takes an idle one;
 *   with none to join or take, it waits for a connection being opened for
 *   sharing (sharing-dial.ts), counting those being opened too.
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
import { LockError } from "./errors.ts";
import { DEFAULT_MAX_CLOSES_PER_SECOND, DEFAULT_MAX_IDLE, IdleConnections } from "./idle.ts";
import { DEFAULT_IDLE_TIMEOUT_MS } from "./keepalive.ts";
import { Link, type LinkUser } from "./link.ts";
import { type OpenSettings, openConnection } from "./open.ts";
import { SharedLinks } from "./shared-links.ts";
import { SharingDial } from "./sharing-dial.ts";

export { DEFAULT_MAX_CLOSES_PER_SECOND, DEFAULT_MAX_IDLE } from "./idle.ts";
export { MAX_SHARED } from "./shared-links.ts";
/**
 * Connections opened to a server before holdings start to share them: below
 * this, each attempt gets a connection of its own, so that a few holdings
 * keep apart what a broken connection takes with it. Beyond it, sharing is
 * also the faster: the server reads many requests per connection, and the
 * client many replies per read (against dflockd v1.10.0 at 10 and 50
 * workers, 1.2 to 1.8 times the operations a second of 64, on every runtime).
 */
export const DEFAULT_SHARE_AFTER = 8;

/** The part of an instance a pool can close when its client closes. */
export interface PoolUser {
  close(): void;
}

/** The shared connections of one server. */
interface Server {
  /** Links with holdings that others may join. */
  readonly shared: SharedLinks;
  /** Connections open to this server, in any state. */
  open: number;
  /** Connections being opened to this server: an attempt's own, and those for sharing (`dials`). */
  dialing: number;
  /** Connections being opened for sharing, that attempts may join (sharing-dial.ts). */
  readonly dials: SharingDial[];
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
    for (const s of this.#servers.values()) n += s.shared.size;
    return n;
  }

  /**
   * Lend a connection to `user` for lock `id` on server `poolKey`. If `share`
   * and the server has {@link shareAfter} connections open or opening: a
   * shared one without `id`, with room (not exclusive: only requests that
   * cannot block may go there). Else an idle one, to itself (`exclusive`);
   * else `undefined`, for the caller's {@link sharingDial} or {@link attach}.
   * Shared before idle: lending idle ones first would keep every connection
   * ever opened in use, one per holding; joining those that hold lets the
   * surplus idle, for the reaper to close.
   * @throws LockError `ABORTED` once the pool is closed.
   */
  lend(poolKey: string, id: string, user: LinkUser, share: boolean): Link | undefined {
    if (this.#closed) throw closedError();
    const server = this.#servers.get(poolKey);
    if (server === undefined) return undefined;
    // Connections being opened count, as in sharingDial(): one opened for sharing is joined while own ones open.
    const link = share && server.open + server.dialing >= this.shareAfter ? server.shared.find(id) : undefined;
    if (link !== undefined) {
      link.users.set(id, user);
      server.shared.joined(link, id);
      return link;
    }
    const idle = this.#idle.take(poolKey, performance.now());
    if (idle === undefined) return undefined;
    idle.exclusive = true;
    idle.users.set(id, user);
    return idle;
  }

  /**
   * For an attempt that may share, and was lent nothing: once the server
   * has {@link shareAfter} connections open or opening, a connection being
   * opened for sharing that lock `id` may join at once (sharing-dial.ts),
   * started now if none has room; `undefined` below that, for the caller
   * to open one of its own ({@link dialing}, then {@link attach}). The link
   * it brings is shared (not exclusive), with `id` as a user.
   * @throws LockError `ABORTED` once the pool is closed.
   */
  sharingDial(poolKey: string, open: OpenSettings, id: string): SharingDial | undefined {
    if (this.#closed) throw closedError();
    const found = this.#servers.get(poolKey);
    // The first connection to a server is always an attempt's own; so is one for a key already here (shared, or
    // waited for), where a try could not take a lock and saves nothing for a semaphore's blocking request.
    if (found === undefined || found.open + found.dialing < Math.max(1, this.shareAfter)) return undefined;
    if (found.shared.has(id) || found.dials.some((x) => x.has(id))) return undefined;
    return found.dials.find((x) => x.admits(open.connectTimeoutMs)) ?? this.#dial(poolKey, found, open);
  }

  /** An attempt of its own starts (`+1`) or ends (`-1`) opening a connection to server `poolKey`. */
  dialing(poolKey: string, delta: 1 | -1): void {
    this.#server(poolKey).dialing += delta;
    this.#forget(poolKey);
  }

  /** A link for a connection `user` just opened for lock `id`, to itself (for no one yet: `id` undefined). */
  attach(conn: Connection, poolKey: string, id: string | undefined, user: LinkUser | undefined): Link {
    const server = this.#server(poolKey);
    server.open++;
    const link = new Link(conn, poolKey, () => {
      server.open--;
      this.#forget(poolKey);
    });
    if (id !== undefined) link.users.set(id, user as LinkUser);
    return link;
  }

  /** Lock `id`'s attempt holds now: its connection may be shared (unless `id` has left it meanwhile). */
  share(link: Link, id: string): void {
    if (!link.users.has(id)) return;
    link.exclusive = false;
    if (link.slot !== -1 || link.conn.closed || this.#closed) return;
    this.#list(link);
  }

  /**
   * Lock `id` no longer uses `link`. `clean`: the connection is in a known
   * state (what was held was released, an acquire was refused); otherwise it
   * is closed, and everyone else on it learns that. A clean connection with
   * nobody left on it becomes idle, kept while `readTimeoutMs` allows.
   */
  leave(link: Link, id: string, clean: boolean, readTimeoutMs: number, reason?: LockError): void {
    const shared = this.#listing(link);
    if (link.users.delete(id) && shared?.holds(link)) shared.left(link, id);
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
      server = { shared: new SharedLinks(), open: 0, dialing: 0, dials: [] };
      this.#servers.set(poolKey, server);
    }
    return server;
  }

  /** `link` takes tries from other instances now. */
  #list(link: Link): void {
    this.#server(link.poolKey).shared.list(link);
  }

  /** Sharing dial `dial` to `server` settled: no longer opening, nor joinable. */
  #dialed(poolKey: string, server: Server, dial: SharingDial): void {
    server.dialing--;
    const i = server.dials.indexOf(dial);
    if (i !== -1) server.dials.splice(i, 1);
    this.#forget(poolKey);
  }

  /** Start opening a connection for sharing to `server`. */
  #dial(poolKey: string, server: Server, open: OpenSettings): SharingDial {
    const dial = new SharingDial(open.connectTimeoutMs);
    server.dials.push(dial);
    server.dialing++;
    openConnection(open, dial.signal).then(
      (conn) => {
        this.#dialed(poolKey, server, dial);
        if (this.#closed || dial.size === 0) {
          conn.close();
          dial.fail(closedError());
          return;
        }
        const link = this.attach(conn, poolKey, undefined, undefined);
        link.exclusive = false;
        dial.deliver(link);
        this.#list(link);
      },
      (err: unknown) => {
        this.#dialed(poolKey, server, dial);
        dial.fail(err);
      },
    );
    return dial;
  }

  /** Drop the server's entry once nothing is open or opening to it. */
  #forget(poolKey: string): void {
    const server = this.#servers.get(poolKey);
    if (server !== undefined && server.open === 0 && server.dialing === 0) this.#servers.delete(poolKey);
  }

  #unlist(link: Link): void {
    const shared = this.#listing(link);
    if (shared !== undefined) shared.unlist(link);
    else link.slot = -1;
  }

  /** The shared links of `link`'s server, if `link` is listed (the server's entry may be gone). */
  #listing(link: Link): SharedLinks | undefined {
    return link.slot === -1 ? undefined : this.#servers.get(link.poolKey)?.shared;
  }
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

/**
 * What a closed pool's lend() and sharingDial() throw, a connection opened for sharing gives its joiners, and an
 * attempt meets when its client is closed (attempt.ts).
 */
export function closedError(): LockError {
  return new LockError("the client was closed", "ABORTED");
}
