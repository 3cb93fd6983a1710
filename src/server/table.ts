/**
 * The lock table of the dflockd-compatible server: keys, their holders and
 * FIFO queues, leases and their expiry, limits, and each key's last activity
 * (for `idle_s` and garbage collection). No I/O: sessions (session.ts) call in
 * with a parsed request and get a reply line, or a waiter to park.
 *
 * Written from the protocol summary and from what a real dflockd v1.10.0 was
 * observed to answer; the differential test (test/differential) holds it to a
 * real server whenever one is found.
 *
 * @module
 */
import type { ServerConfig } from "./config.ts";
import { FencedTokens, randomToken } from "./tokens.ts";
import { goJsonString } from "./wire.ts";

/** One connection as the table sees it. */
export interface Owner {
  readonly id: number;
  /** Keys this connection enqueued with `e`/`se` and has not yet waited for. */
  readonly enqueued: Map<string, Waiter>;
}

/**
 * A lease length as a request gave it: milliseconds it lasts (dflockd turns
 * seconds into int64 nanoseconds, which can wrap, so this may be tiny or
 * negative) and the seconds its grant reply names.
 */
export interface Lease {
  readonly ms: number;
  readonly replyS: number;
}

/** A lease on one slot of a key. */
export interface Holder {
  readonly owner: Owner;
  readonly token: string;
  /** The seconds its grant reply names. */
  ttlS: number;
  expiresAt: number;
  fence: number;
}

/** A connection queued for a key, blocked in `l`/`w` or enqueued with `e`. */
export interface Waiter {
  readonly owner: Owner;
  readonly lease: Lease;
  /** The key it waits for. */
  readonly entry: Entry | undefined;
  /** Set while the connection is blocked in `l`/`sl`/`w`/`sw`. */
  wake: ((h: Holder) => void) | undefined;
  /** The grant that reached an enqueued waiter before it called `w`. */
  granted: Holder | undefined;
  /** Still in the key's queue. */
  queued: boolean;
  /** Its grant was swept before `w` collected it (see LockTable's #forget). */
  lapsed?: "expired" | "stale";
}

/**
 * A key. Locks and semaphores share one table: `l` is `sl` with limit 1, and
 * `stats` lists a key of limit 1 as a lock, any other as a semaphore. From
 * v1.14 a lock's key and a semaphore's are kept apart (see {@link slotOf}).
 */
export interface Entry {
  readonly key: string;
  /** The limit, for counting (a limit past 2^53 is as good as unlimited). */
  readonly limit: number;
  /** The limit exactly as dflockd holds it (an int64, in decimal): keys match on this. */
  readonly limitText: string;
  readonly holders: Holder[];
  readonly waiters: Waiter[];
  /** When a request last touched the key, as dflockd counts it (for `idle_s` and garbage collection). */
  lastActivity: number;
}

/** A semaphore's limit: the exact value, and a number to count with. */
export interface Limit {
  readonly n: number;
  readonly text: string;
}

/** A lock's limit. */
export const LOCK_LIMIT: Limit = { n: 1, text: "1" };

/** What `acquire` decided: a reply now, or a waiter to park. */
export type Acquired = { readonly reply: string } | { readonly waiter: Waiter } | { readonly holder: Holder };

/**
 * The table's key for `key` of a lock or a semaphore: itself where both
 * share one namespace (v1.10.0), else marked by a first character no byte
 * string has (so the two never meet, and stats show the key unmarked).
 */
export function slotOf(key: string, sem: boolean, namespaces: boolean): string {
  return namespaces ? (sem ? "\u0101" : "\u0100") + key : key;
}

/** The key a table key stands for. */
function shown(slot: string): string {
  return slot.charCodeAt(0) > 0xff ? slot.slice(1) : slot;
}

/** The keys of one double, with every rule that decides a reply. */
export class LockTable {
  readonly #cfg: ServerConfig;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #fence = 0;
  /** v2.1's tokens, which carry a fence; undefined for random ones. */
  readonly #fenced: FencedTokens | undefined;

  constructor(cfg: ServerConfig, now: () => number = () => performance.now()) {
    this.#cfg = cfg;
    this.#now = now;
    this.#fenced = cfg.tokenFence ? new FencedTokens() : undefined;
  }

  /** The table's clock, in milliseconds. */
  now(): number {
    return this.#now();
  }

  /** A grant's reply fields after the status: `<token> <ttl>` and the fence where configured. */
  grantFields(h: Holder): string {
    return this.#cfg.fence ? `${h.token} ${h.ttlS} ${h.fence}` : `${h.token} ${h.ttlS}`;
  }

  /**
   * Take a slot if one is free and nobody is queued; else queue (`mayQueue`)
   * or report that the key is taken (`null` reply from the caller's view).
   */
  acquire(
    owner: Owner,
    key: string,
    limit: Limit,
    lease: Lease,
    mayQueue: boolean,
  ): Acquired | { readonly busy: true } {
    let entry = this.#entries.get(key);
    if (entry !== undefined && entry.limitText !== limit.text) {
      return { reply: "error_limit_mismatch" };
    }
    if (entry === undefined) {
      if (this.#entries.size >= this.#cfg.maxLocks) return { reply: "error_max_locks" };
      entry = { key, limit: limit.n, limitText: limit.text, holders: [], waiters: [], lastActivity: 0 };
      this.#entries.set(key, entry);
    }
    entry.lastActivity = this.#now();
    this.#expire(entry);
    if (entry.waiters.length === 0 && entry.holders.length < entry.limit) {
      return { holder: this.#grant(entry, owner, lease) };
    }
    // A full queue refuses even a try-lock.
    if (this.#cfg.maxWaiters > 0 && entry.waiters.length >= this.#cfg.maxWaiters) {
      return { reply: "error_max_waiters" };
    }
    if (!mayQueue) return { busy: true };
    const waiter: Waiter = { owner, lease, entry, wake: undefined, granted: undefined, queued: true };
    entry.waiters.push(waiter);
    return { waiter };
  }

  /** Take a waiter out of its key's queue (timeout, shutdown); counts as activity on the key. */
  dequeue(waiter: Waiter): void {
    const entry = waiter.entry;
    if (entry === undefined) return;
    entry.lastActivity = this.#now();
    if (!waiter.queued) return;
    waiter.queued = false;
    const i = entry.waiters.indexOf(waiter);
    if (i !== -1) entry.waiters.splice(i, 1);
    this.#settle(entry);
  }

  /** A request touched `key` (a blocked request ended, a grant was collected): dflockd counts it as activity. */
  touch(key: string): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) entry.lastActivity = this.#now();
  }

  /**
   * Extend `token`'s lease on `key`. A lease that ran out but was not yet
   * swept is removed here and reported as `"expired"`.
   */
  renew(key: string, token: string, leaseMs: number): Holder | "expired" | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    // Even a renewal that fails keeps the key alive.
    entry.lastActivity = this.#now();
    const h = entry.holders.find((x) => x.token === token);
    if (h === undefined) return undefined;
    if (h.expiresAt <= this.#now()) {
      this.release(key, token);
      return "expired";
    }
    h.expiresAt = this.#now() + leaseMs;
    return h;
  }

  /**
   * Release `token`'s slot on `key`; false if it holds none. A lease that ran
   * out but was not yet swept still releases.
   */
  release(key: string, token: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    // Even a release that fails keeps the key alive.
    entry.lastActivity = this.#now();
    const i = entry.holders.findIndex((h) => h.token === token);
    if (i === -1) return false;
    this.#forget(entry, entry.holders.splice(i, 1)[0] as Holder, false);
    this.#settle(entry);
    return true;
  }

  /**
   * A connection has closed. With auto-release (dflockd's default) everything
   * it held or waited for goes. Without, v1.10.0 cleans up nothing: its leases
   * run out, and an `e` still queued is granted (to nobody) when its turn
   * comes; v1.15+ (`dropWaiters`) still takes it out of every queue.
   */
  dropOwner(owner: Owner, autoRelease: boolean): void {
    // v1.15+: what it waited for goes whatever auto-release says; that only decides what it held.
    if (!autoRelease && !this.#cfg.dropWaiters) return;
    for (const entry of this.#entries.values()) {
      let waited = false;
      for (let i = entry.waiters.length - 1; i >= 0; i--) {
        const w = entry.waiters[i] as Waiter;
        if (w.owner === owner) {
          w.queued = false;
          entry.waiters.splice(i, 1);
          waited = true;
        }
      }
      let held = false;
      for (let i = entry.holders.length - 1; autoRelease && i >= 0; i--) {
        if ((entry.holders[i] as Holder).owner === owner) {
          entry.holders.splice(i, 1);
          held = true;
        }
      }
      if (held) entry.lastActivity = this.#now();
      if (held || waited) this.#settle(entry);
    }
    owner.enqueued.clear();
  }

  /** The periodic lease sweep. */
  sweep(): void {
    for (const entry of this.#entries.values()) this.#expire(entry);
  }

  /** The periodic garbage collection of idle keys. */
  collect(): void {
    const now = this.#now();
    for (const [key, e] of this.#entries) {
      const idle = now - e.lastActivity > this.#cfg.gcMaxIdleS * 1000;
      if (idle && e.holders.length === 0 && e.waiters.length === 0) this.#entries.delete(key);
    }
  }

  /** The `stats` JSON body, written field by field as the server orders them. */
  stats(connections: number): string {
    const now = this.#now();
    const locks: string[] = [];
    const sems: string[] = [];
    const idleLocks: string[] = [];
    const idleSems: string[] = [];
    // No expiry here: a lapsed, unswept lease shows with 0 s left.
    for (const e of this.#entries.values()) {
      const key = goJsonString(shown(e.key));
      const lock = e.limitText === "1";
      if (e.holders.length === 0 && e.waiters.length === 0) {
        (lock ? idleLocks : idleSems).push(`{"key":${key},"idle_s":${(now - e.lastActivity) / 1000}}`);
      } else if (lock) {
        // A key with waiters and no holder (for a moment) shows with owner 0, as on the server.
        const h = e.holders[0];
        const left = h === undefined ? 0 : Math.max(0, h.expiresAt - now) / 1000;
        // Go leaves a zero fence out (omitempty): a key with waiters and no holder has none.
        const fence = this.#cfg.fence && h !== undefined ? `,"fence":${h.fence}` : "";
        locks.push(
          `{"key":${key},"owner_conn_id":${h?.owner.id ?? 0},"lease_expires_in_s":${left},"waiters":${e.waiters.length}${fence}}`,
        );
      } else {
        sems.push(`{"key":${key},"limit":${e.limitText},"holders":${e.holders.length},"waiters":${e.waiters.length}}`);
      }
    }
    const list = (rows: string[]): string => `[${rows.join(",")}]`;
    const extra = this.#cfg.fence ? `,"rw_locks":[]` : "";
    const tail = this.#cfg.fence
      ? `,"counters":[],"kv_entries":[],"lists":[],"signal_channels":null,"watch_channels":null,"barriers":[]`
      : this.#cfg.signalChannels
        ? `,"signal_channels":[]`
        : "";
    return (
      `{"connections":${connections},"locks":${list(locks)},"semaphores":${list(sems)}${extra},` +
      `"idle_locks":${list(idleLocks)},"idle_semaphores":${list(idleSems)}${tail}}`
    );
  }

  /**
   * A grant that an `e` has not yet collected with `w` is gone. Released, the
   * `w` finds nothing. Swept after its lease ran out: the fence build says
   * `error_lease_expired`; v1.10.0 finds nothing if `e` took the key at once,
   * and hands out the dead token if the grant came from the queue; v1.16+
   * (`forgetSwept`) finds nothing either way.
   */
  #forget(entry: Entry, h: Holder, expired: boolean): void {
    const w = h.owner.enqueued.get(entry.key);
    if (w?.granted !== h) return;
    if (expired && this.#cfg.leaseExpired) w.lapsed = "expired";
    else if (expired && w.entry !== undefined && !this.#cfg.forgetSwept) w.lapsed = "stale";
    else h.owner.enqueued.delete(entry.key);
  }

  #grant(entry: Entry, owner: Owner, lease: Lease): Holder {
    const now = this.#now();
    const token = this.#fenced?.next() ?? randomToken();
    const h: Holder = { owner, token, ttlS: lease.replyS, expiresAt: now + lease.ms, fence: ++this.#fence };
    entry.holders.push(h);
    entry.lastActivity = now;
    return h;
  }

  /** Drop expired leases of `entry`, then hand free slots to the queue. */
  #expire(entry: Entry): void {
    const now = this.#now();
    let expired = false;
    for (let i = entry.holders.length - 1; i >= 0; i--) {
      if ((entry.holders[i] as Holder).expiresAt <= now) {
        this.#forget(entry, entry.holders.splice(i, 1)[0] as Holder, true);
        expired = true;
      }
    }
    if (expired) {
      entry.lastActivity = now;
      this.#settle(entry);
    }
  }

  /** Grant free slots to waiters in FIFO order. */
  #settle(entry: Entry): void {
    while (entry.holders.length < entry.limit && entry.waiters.length > 0) {
      const w = entry.waiters.shift() as Waiter;
      w.queued = false;
      const h = this.#grant(entry, w.owner, w.lease);
      if (w.wake !== undefined) w.wake(h);
      else w.granted = h;
    }
  }
}
