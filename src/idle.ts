/**
 * The idle connections of a pool: lent again while the server's read timeout
 * cannot have cut them; up to `maxIdle` per server kept open past it with
 * `ping` (keepalive.ts) until idle for `idleTimeoutMs`, where the server
 * answers it; the rest closed by a reaper, never in a burst (dflockd scans
 * every key on each disconnect): the oldest first, one at a time per server,
 * at most `maxClosesPerSecond`, those beyond `maxIdle` spaced to be gone
 * before the server would cut them (docs/connections.md).
 *
 * @module
 */
import { Keepalive } from "./keepalive.ts";
import type { Link } from "./link.ts";
import { backgroundTimer } from "./transport.ts";

/** Idle connections kept per server, by default. */
export const DEFAULT_MAX_IDLE = 64;
/** Idle connections closed per second per server, at most, by default; and one a second at least (the gap in ms). */
export const DEFAULT_MAX_CLOSES_PER_SECOND = 100;
const MAX_CLOSE_GAP_MS = 1000;
/** How long one beyond maxIdle stays idle before it may close (ms): in a busy pool, idle is only between uses. */
const SURPLUS_IDLE_MS = 1000;

/** The idle links of one server, and until when each may be lent, in that order (the longest-lived last). */
interface IdleList {
  readonly key: string;
  readonly links: Link[];
  readonly until: number[];
  /** The reaper closes none of these before this time (monotonic ms). */
  closeAt: number;
  /** The server is known not to answer `ping`. */
  noPing: boolean;
}

/** The idle connections of one pool, per server (pool key). */
export class IdleConnections {
  readonly #lists = new Map<string, IdleList>();
  readonly #maxIdle: number;
  readonly #minGapMs: number;
  readonly #idleMs: number;
  readonly #keepalive = new Keepalive((link, until) => this.#pinged(link, until));
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #sweepAt = Number.POSITIVE_INFINITY;

  /**
   * @param maxIdle Idle connections kept per server past a burst, and kept open with `ping`.
   * @param maxClosesPerSecond Idle connections closed per second per server, at most.
   * @param idleTimeoutMs How long a connection may stay idle, kept open with `ping`.
   */
  constructor(maxIdle: number, maxClosesPerSecond: number, idleTimeoutMs: number) {
    this.#maxIdle = maxIdle;
    this.#minGapMs = 1000 / maxClosesPerSecond;
    this.#idleMs = idleTimeoutMs;
  }

  /** Idle connections held, over all servers (those waiting for a ping's answer not counted). */
  get count(): number {
    let n = 0;
    for (const list of this.#lists.values()) n += list.links.length;
    return n;
  }

  /**
   * The most recently used idle link of server `poolKey` still lendable at
   * `t` (monotonic ms), taken out; one past its time, and all older, are left
   * to the reaper (never a burst of closes).
   */
  take(poolKey: string, t: number): Link | undefined {
    const list = this.#lists.get(poolKey);
    if (list === undefined) return undefined;
    const { links, until } = list;
    while (links.length > 0 && t < (until[until.length - 1] as number)) {
      const link = links.pop() as Link;
      until.pop();
      if (!link.conn.closed && link.conn.pending === 0) return link;
      link.conn.close();
    }
    return undefined;
  }

  /**
   * Keep `link`, idle since `t`, lendable until `until`; a `ping` may still
   * go `graceMs` after that (the server cannot have cut it before).
   */
  put(link: Link, until: number, t: number, graceMs: number): void {
    link.idleSince = t;
    link.graceMs = graceMs;
    link.pingRefused = false;
    this.#keep(link, until, t);
  }

  /** Close every idle connection now, and the reaper's timer. */
  closeAll(): void {
    this.#keepalive.closeAll();
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
    this.#sweepAt = Number.POSITIVE_INFINITY;
    for (const list of this.#lists.values()) for (const link of list.links) link.conn.close();
    this.#lists.clear();
  }

  #keep(link: Link, until: number, t: number): void {
    let list = this.#lists.get(link.poolKey);
    if (list === undefined) {
      const key = link.poolKey;
      list = { key, links: [], until: [], closeAt: 0, noPing: this.#keepalive.knownNoPing(key) };
      this.#lists.set(key, list);
    }
    // In order of `until` (nearly always the order they empty in): lent from the end, closed from the front.
    const { links, until: untils } = list;
    let i = untils.length;
    while (i > 0 && (untils[i - 1] as number) > until) i--;
    if (i === untils.length) {
      links.push(link);
      untils.push(until);
    } else {
      links.splice(i, 0, link);
      untils.splice(i, 0, until);
    }
    const due = this.#due(list, t);
    if (due < this.#sweepAt) this.#armSweep(due);
  }

  /** A pinged `link` is back, lendable until `until`; or it closed (`undefined`), and the next close waits its turn. */
  #pinged(link: Link, until: number | undefined): void {
    const t = performance.now();
    if (until !== undefined) {
      if (link.pingRefused) this.#keepalive.learnNoPing(link.poolKey);
      const list = this.#lists.get(link.poolKey);
      if (list !== undefined && link.pingRefused) list.noPing = true;
      this.#keep(link, until, t);
      return;
    }
    const list = this.#lists.get(link.poolKey);
    if (list === undefined) return;
    list.closeAt = Math.max(list.closeAt, t + this.#minGapMs);
    const due = this.#due(list, t);
    if (due < this.#sweepAt) this.#armSweep(due);
  }

  #armSweep(at: number): void {
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweepAt = at;
    this.#sweep = backgroundTimer(() => {
      this.#sweep = undefined;
      this.#sweepAt = Number.POSITIVE_INFINITY;
      const next = this.#reap(performance.now());
      if (next !== Number.POSITIVE_INFINITY) this.#armSweep(next);
    }, at - performance.now());
  }

  /**
   * The reaper at `t`: forget closed links; ping every link whose time is up
   * and that is to be kept, wherever it is among them (pings cost the server
   * nothing, unlike closes); close the oldest, if its close is due. Returns
   * when it is next due.
   */
  #reap(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const [key, list] of this.#lists) {
      const { links, until } = list;
      const n = links.length;
      const firstKept = n - this.#maxIdle;
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const link = links[i] as Link;
        const u = until[i] as number;
        if (link.conn.closed) continue;
        if (u <= t && i >= firstKept && this.#pingable(list, link, u, t)) {
          this.#keepalive.send(link, u);
          continue;
        }
        links[kept] = link;
        until[kept++] = u;
      }
      links.length = kept;
      until.length = kept;
      if (kept > 0 && this.#closeTime(list) <= t) {
        (links.shift() as Link).conn.close();
        until.shift();
        list.closeAt = t + this.#gap(list, t);
      }
      if (links.length === 0) {
        this.#lists.delete(key);
        continue;
      }
      const due = this.#due(list, t);
      if (due < next) next = due;
    }
    return next;
  }

  /**
   * Whether `link` (of `list`, lendable until `u`) is to be pinged at `t`
   * when its time is up: within its idle time, on a server not known to lack
   * `ping`, not answered `error` last time, and not so late that the server
   * may have cut it (say after a stalled event loop).
   */
  #pingable(list: IdleList, link: Link, u: number, t: number): boolean {
    return !list.noPing && !link.pingRefused && u - link.idleSince < this.#idleMs && t <= u + link.graceMs;
  }

  /**
   * When the next link within maxIdle is to be pinged, or the oldest closed,
   * whichever comes first. The first within maxIdle is nearly always the one
   * to ping: only links about to close (idle too long, answered `error`) are
   * passed over, at most maxIdle of them.
   */
  #due(list: IdleList, t: number): number {
    const { links, until } = list;
    let ping = Number.POSITIVE_INFINITY;
    if (!list.noPing) {
      for (let i = Math.max(0, links.length - this.#maxIdle); i < links.length; i++) {
        if (!this.#pingable(list, links[i] as Link, until[i] as number, t)) continue;
        ping = until[i] as number;
        break;
      }
    }
    return Math.min(ping, this.#closeTime(list, t));
  }

  /**
   * When the oldest link closes: beyond maxIdle, once idle a while or its time
   * up; else when its time is up, unless a ping is to keep it (`t`: when that
   * is judged; the reaper's own time by default, a kept one having been pinged
   * by then); never before `closeAt`.
   */
  #closeTime(list: IdleList, t?: number): number {
    const first = list.links[0];
    if (first === undefined) return Number.POSITIVE_INFINITY;
    const expires = list.until[0] as number;
    const surplus = list.links.length > this.#maxIdle;
    if (!surplus && t !== undefined && this.#pingable(list, first, expires, t)) return Number.POSITIVE_INFINITY;
    return Math.max(list.closeAt, surplus ? Math.min(expires, first.conn.lastSendAt + SURPLUS_IDLE_MS) : expires);
  }

  /** The wait before the next close: the oldest one's time left shared among the surplus, within limits. */
  #gap(list: IdleList, t: number): number {
    const surplus = list.links.length - this.#maxIdle;
    if (surplus <= 0) return this.#minGapMs;
    const left = (list.until[0] as number) - t;
    return Math.max(this.#minGapMs, Math.min(MAX_CLOSE_GAP_MS, left / surplus));
  }
}
