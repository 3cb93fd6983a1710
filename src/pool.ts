/**
 * Connections kept open between holdings. dflockd ties what is held to the
 * connection that asked, so a connection is lent to one attempt or holding
 * at a time; when that ends cleanly (the release was answered `ok`, or an
 * acquire timed out with nothing held) it comes back here, and the next
 * acquire on the same server (same host, port, TLS settings and secret)
 * takes it instead of connecting, TLS handshaking and authenticating again.
 *
 * An idle connection is only lent while the server's read timeout cannot
 * have cut it: until the last request sent on it plus the read timeout, less
 * a guard. A sweep closes the rest. Idle connections never keep the process
 * alive.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { LockError } from "./errors.ts";
import { backgroundTimer } from "./transport.ts";

/** Idle connections kept per server, by default. */
export const DEFAULT_MAX_IDLE = 64;

/** The part of an instance a pool can close when its client closes. */
export interface PoolUser {
  close(): void;
}

/** Idle connections of one server, most recently used last. */
interface Stack {
  readonly conns: Connection[];
  /** Until when each one may be lent (same index). */
  readonly until: number[];
}

/**
 * How long before the server's read timeout an idle connection stops being
 * lent: its next request must reach the server before the server gives up.
 */
export function idleGuardMs(readTimeoutMs: number): number {
  return Math.min(Math.max(1000, readTimeoutMs / 10), readTimeoutMs / 2);
}

/** A set of idle connections per server, and the attempts and holdings using them. */
export class ConnectionPool {
  readonly #stacks = new Map<string, Stack>();
  readonly #maxIdle: number;
  /** Instances with an attempt or holding, when the pool's owner may close them all. */
  readonly #users: Set<PoolUser> | undefined;
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #sweepAt = Number.POSITIVE_INFINITY;
  #closed = false;

  /**
   * @param maxIdle Idle connections kept per server.
   * @param trackUsers Remember the instances using it, so {@link close} can close them.
   */
  constructor(maxIdle: number = DEFAULT_MAX_IDLE, trackUsers = false) {
    this.#maxIdle = maxIdle;
    this.#users = trackUsers ? new Set() : undefined;
  }

  /** `true` once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Idle connections held, over all servers. */
  get idle(): number {
    let n = 0;
    for (const s of this.#stacks.values()) n += s.conns.length;
    return n;
  }

  /**
   * Lend an idle connection to `key`'s server, or `undefined` if none can be
   * trusted to be open. Throws if the pool is closed.
   */
  take(key: string): Connection | undefined {
    if (this.#closed) throw new LockError("the client was closed", "ABORTED");
    const stack = this.#stacks.get(key);
    if (stack === undefined) return undefined;
    const t = performance.now();
    for (;;) {
      const conn = stack.conns.pop();
      const until = stack.until.pop() as number;
      if (conn === undefined) return undefined;
      if (!conn.closed && t < until && conn.pending === 0) return conn;
      conn.close();
    }
  }

  /**
   * Take back a connection whose user has finished with it cleanly. It is
   * kept while the server's read timeout (`readTimeoutMs`) surely has not
   * passed since its last request, and closed when it has.
   */
  put(key: string, conn: Connection, readTimeoutMs: number): void {
    conn.bindOwner(undefined);
    const until = conn.lastSendAt + readTimeoutMs - idleGuardMs(readTimeoutMs);
    if (this.#closed || conn.closed || conn.pending !== 0 || this.#maxIdle === 0 || until <= performance.now()) {
      conn.close();
      return;
    }
    let stack = this.#stacks.get(key);
    if (stack === undefined) {
      stack = { conns: [], until: [] };
      this.#stacks.set(key, stack);
    }
    if (stack.conns.length >= this.#maxIdle) {
      // Keep the most recently used ones: the oldest expire first.
      (stack.conns.shift() as Connection).close();
      stack.until.shift();
    }
    stack.conns.push(conn);
    stack.until.push(until);
    if (until < this.#sweepAt) this.#armSweep(until);
  }

  /** Close the idle connections now (and the sweep timer); the pool stays usable. */
  closeIdle(): void {
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweep = undefined;
    this.#sweepAt = Number.POSITIVE_INFINITY;
    this.#closeIdle(Number.POSITIVE_INFINITY);
  }

  /** Count `user` as using the pool (only pools that may be closed keep count). */
  enter(user: PoolUser): void {
    this.#users?.add(user);
  }

  /** `user` no longer holds or attempts anything. */
  leave(user: PoolUser): void {
    this.#users?.delete(user);
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
    for (const u of users) u.close();
    this.closeIdle();
  }

  #armSweep(at: number): void {
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweepAt = at;
    this.#sweep = backgroundTimer(() => {
      this.#sweep = undefined;
      this.#sweepAt = Number.POSITIVE_INFINITY;
      const next = this.#closeIdle(performance.now());
      if (next !== Number.POSITIVE_INFINITY) this.#armSweep(next);
    }, at - performance.now());
  }

  /** Close idle connections expired at `t` (or closed by the server); returns the next expiry. */
  #closeIdle(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const [key, stack] of this.#stacks) {
      const { conns, until } = stack;
      let kept = 0;
      for (let i = 0; i < conns.length; i++) {
        const conn = conns[i] as Connection;
        const u = until[i] as number;
        if (conn.closed || u <= t) {
          conn.close();
          continue;
        }
        conns[kept] = conn;
        until[kept++] = u;
        if (u < next) next = u;
      }
      conns.length = kept;
      until.length = kept;
      if (kept === 0) this.#stacks.delete(key);
    }
    return next;
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
 * later acquires work as before (they connect afresh).
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
