/**
 * The idle connections of a pool: lent again while the server's read timeout
 * cannot have cut them; up to `maxIdle` per server kept open past it with
 * `ping` (keepalive.ts) for as long as `idleTimeoutMs` allows, where the
 * server answers it; the rest closed by a reaper, never in a burst (dflockd
 * scans every key on each disconnect): one at a time per server, at most
 * `maxClosesPerSecond`, those beyond `maxIdle` spaced to be gone before the
 * server would cut them (docs/connections.md).
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
  /** Set by {@link shutDown}: a ping's link coming back is closed. */
  #shut = false;

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

  /** Keep `link`, idle since `t`, lendable until `until`. */
  put(link: Link, until: number, t: number): void {
    link.idleSince = t;
    this.#keep(link, until);
  }

  /** Close every idle connection now, and the reaper's timer. With `shutDown`, for good. */
  closeAll(shutDown = false): void {
    if (shutDown) this.#shut = true;
    this.#keepalive.closeAll();
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
    this.#sweepAt = Number.POSITIVE_INFINITY;
    for (const list of this.#lists.values()) for (const link of list.links) link.conn.close();
    this.#lists.clear();
  }

  #keep(link: Link, until: number): void {
    let list = this.#lists.get(link.poolKey);
    if (list === undefined) {
      list = { key: link.poolKey, links: [], until: [], closeAt: 0 };
      this.#lists.set(link.poolKey, list);
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
    const due = this.#due(list);
    if (due < this.#sweepAt) this.#armSweep(due);
  }

  /** A pinged `link` is back, lendable until `until`; or it closed (`undefined`), and its server's others may go on. */
  #pinged(link: Link, until: number | undefined): void {
    if (until !== undefined) {
      if (this.#shut) link.conn.close();
      else this.#keep(link, until);
      return;
    }
    const list = this.#lists.get(link.poolKey);
    if (list === undefined) return;
    // That was a close: the next one waits its turn.
    list.closeAt = Math.max(list.closeAt, performance.now() + this.#minGapMs);
    const due = this.#due(list);
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
   * The reaper at `t`: forget closed links; ping each server's links whose
   * time is up, where they are to be kept; close its oldest past its time or
   * beyond maxIdle, if due. Returns when it is next due.
   */
  #reap(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const [key, list] of this.#lists) {
      const { links, until } = list;
      let kept = 0;
      for (let i = 0; i < links.length; i++) {
        const link = links[i] as Link;
        if (link.conn.closed) continue;
        links[kept] = link;
        until[kept++] = until[i] as number;
      }
      links.length = kept;
      until.length = kept;
      // Pinged all at once, as a ping costs the server nothing (unlike a close).
      while (links.length > 0 && (until[0] as number) <= t && this.#fate(list) === "ping") {
        const link = links.shift() as Link;
        this.#keepalive.send(link, until.shift() as number);
      }
      if (links.length > 0 && this.#due(list) <= t) {
        (links.shift() as Link).conn.close();
        until.shift();
        list.closeAt = t + this.#gap(list, t);
      }
      if (links.length === 0) {
        this.#lists.delete(key);
        continue;
      }
      const due = this.#due(list);
      if (due < next) next = due;
    }
    return next;
  }

  /**
   * What becomes of the oldest link of `list` when its time is up: pinged
   * (within maxIdle, idle for less than idleTimeoutMs, on a server that may
   * answer), nothing until a first ping's answer tells, or closed.
   */
  #fate(list: IdleList): "ping" | "wait" | "close" {
    const first = list.links[0] as Link;
    if (list.links.length > this.#maxIdle || (list.until[0] as number) - first.idleSince >= this.#idleMs)
      return "close";
    const ping = this.#keepalive.status(list.key);
    return ping === "no" ? "close" : ping === "asking" ? "wait" : "ping";
  }

  /** When the oldest link of `list` is pinged or closed: its time up, or beyond maxIdle idle a while; not before `closeAt`. */
  #due(list: IdleList): number {
    const first = list.links[0];
    if (first === undefined) return Number.POSITIVE_INFINITY;
    const expires = list.until[0] as number;
    const fate = this.#fate(list);
    if (fate !== "close") return fate === "ping" ? expires : Number.POSITIVE_INFINITY;
    const surplus = list.links.length > this.#maxIdle ? first.conn.lastSendAt + SURPLUS_IDLE_MS : expires;
    return Math.max(list.closeAt, Math.min(expires, surplus));
  }

  /** The wait before the next close: the oldest one's time left shared among the surplus, within limits. */
  #gap(list: IdleList, t: number): number {
    const surplus = list.links.length - this.#maxIdle;
    if (surplus <= 0) return this.#minGapMs;
    const left = (list.until[0] as number) - t;
    return Math.max(this.#minGapMs, Math.min(MAX_CLOSE_GAP_MS, left / surplus));
  }
}
