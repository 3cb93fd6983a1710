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
import { Keepalive, PING_TIMEOUT_MS, type PingAnswer } from "./keepalive.ts";
import type { Link } from "./link.ts";
import { backgroundTimer } from "./transport.ts";

/** Idle connections kept per server, by default. */
export const DEFAULT_MAX_IDLE = 64;
/** Idle connections closed per second per server, at most, by default; and one a second at least (the gap in ms). */
export const DEFAULT_MAX_CLOSES_PER_SECOND = 100;
const MAX_CLOSE_GAP_MS = 1000;
/** How long one beyond maxIdle stays idle before it may close (ms): one lent again within it is kept. */
const SURPLUS_IDLE_MS = 1000;

/** The idle connections of one server. */
interface IdleList {
  /** Lendable links, and until when each may be lent, in that order (the longest-lived last). */
  readonly links: Link[];
  readonly until: number[];
  /** Links out for a ping, in the order sent (each sent at its connection's `lastSendAt`): lent to no one. */
  readonly out: Link[];
  /** Links to close, in the order found so (idle too long, answered `error`, a ping failed): lent to no one. */
  readonly closing: Link[];
  /** The reaper closes none of these before this time (monotonic ms). */
  closeAt: number;
  /** The server is known not to answer `ping`, or a refusal here is not settled yet. */
  noPing: boolean;
  /** Links here that answered `ping` with `error`, not yet settled. */
  refusals: number;
}

/** The idle connections of one pool, per server (pool key). */
export class IdleConnections {
  readonly #lists = new Map<string, IdleList>();
  readonly #maxIdle: number;
  readonly #minGapMs: number;
  readonly #idleMs: number;
  readonly #keepalive = new Keepalive((link, answer) => this.#pinged(link, answer));
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

  /** Lendable idle connections, over all servers. */
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
      // Lent after a refusal: settled in put() if it comes back (used, so open), else forgotten.
      if (link.pingRefused) this.#refusalSettled(list, link, link.conn.closed ? "closed" : "lent");
      // One fewer kept: the oldest beyond maxIdle, if any, is now kept, and due at its own time.
      if (links.length + list.out.length >= this.#maxIdle && links.length > 0) this.#arm(list, t);
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
    link.spanMs = until - link.conn.lastSendAt;
    link.graceMs = graceMs;
    if (link.pingRefused) this.#keepalive.learnNoPing(link.poolKey);
    link.pingRefused = false;
    this.#keep(this.#list(link.poolKey), link, until, t);
  }

  /** Close every idle connection now, and the reaper's timer. */
  closeAll(): void {
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
    this.#sweepAt = Number.POSITIVE_INFINITY;
    const lists = [...this.#lists.values()];
    this.#lists.clear();
    for (const list of lists) for (const q of [list.links, list.out, list.closing]) for (const l of q) l.conn.close();
  }

  #list(key: string): IdleList {
    let list = this.#lists.get(key);
    if (list === undefined) {
      list = {
        links: [],
        until: [],
        out: [],
        closing: [],
        closeAt: 0,
        noPing: this.#keepalive.knownNoPing(key),
        refusals: 0,
      };
      this.#lists.set(key, list);
    }
    return list;
  }

  #keep(list: IdleList, link: Link, until: number, t: number): void {
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
    this.#arm(list, t);
  }

  #arm(list: IdleList, t: number): void {
    const due = this.#due(list, t);
    if (due < this.#sweepAt) this.#armSweep(due, t);
  }

  /** A ping of `link` was answered: lendable again for its span (so is an `error`: the server read the line), or to close. */
  #pinged(link: Link, answer: PingAnswer): void {
    const list = this.#lists.get(link.poolKey);
    const i = list === undefined ? -1 : list.out.indexOf(link);
    // Not out any more: closed with the others, or its answer came too late and it waits to close.
    if (list === undefined || i === -1) return;
    list.out.splice(i, 1);
    const t = performance.now();
    if (link.conn.closed || answer === "failed") {
      if (!link.conn.closed) list.closing.push(link);
      this.#arm(list, t);
      return;
    }
    // Refused: no more pings here for now, but learnt for good only once this link is still open a span later
    // (a read timeout's cut also writes `error`, then closes).
    if (answer === "refused") {
      list.noPing = true;
      list.refusals++;
    }
    link.pingRefused = answer === "refused";
    this.#keep(list, link, link.conn.lastSendAt + link.spanMs, t);
  }

  #armSweep(at: number, t: number): void {
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweepAt = at;
    this.#sweep = backgroundTimer(() => {
      this.#sweep = undefined;
      this.#sweepAt = Number.POSITIVE_INFINITY;
      const now = performance.now();
      const next = this.#reap(now);
      if (next !== Number.POSITIVE_INFINITY) this.#armSweep(next, now);
    }, at - t);
  }

  /**
   * The reaper at `t`: a ping unanswered too long, and every link whose time
   * is up that is not to be kept, go to be closed; every other link within
   * maxIdle whose time is up is pinged (pings cost the server nothing, unlike
   * closes); then one link closes, if a close is due. Returns when it is next
   * due.
   */
  #reap(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const [key, list] of this.#lists) {
      const { links, until, out, closing } = list;
      while (out.length > 0 && (out[0] as Link).conn.lastSendAt + PING_TIMEOUT_MS <= t)
        closing.push(out.shift() as Link);
      let live = 0;
      for (let i = 0; i < links.length; i++) {
        const link = links[i] as Link;
        if (link.pingRefused && (link.conn.closed || (until[i] as number) <= t))
          this.#refusalSettled(list, link, link.conn.closed ? "closed" : "open");
        if (link.conn.closed) continue;
        links[live] = links[i] as Link;
        until[live++] = until[i] as number;
      }
      links.length = live;
      until.length = live;
      const n = live;
      const firstKept = n + out.length - this.#maxIdle;
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const link = links[i] as Link;
        const u = until[i] as number;
        if (u <= t && i >= firstKept) {
          if (this.#pingable(list, link, u, t)) {
            out.push(link);
            this.#keepalive.send(link);
          } else closing.push(link);
          continue;
        }
        links[kept] = link;
        until[kept++] = u;
      }
      links.length = kept;
      until.length = kept;
      if (list.closeAt <= t) this.#closeOne(list, t);
      if (links.length === 0 && out.length === 0 && closing.length === 0) {
        // Kept while its last close is recent, so the next close still waits its turn; a reap after that forgets it
        // (one small object per server at most, no timer armed for it).
        if (list.closeAt <= t) this.#lists.delete(key);
        continue;
      }
      const due = this.#due(list, t);
      if (due < next) next = due;
    }
    return next;
  }

  /** Close the first link waiting to close, else the oldest beyond maxIdle if its close is due; then space the next. */
  #closeOne(list: IdleList, t: number): void {
    const { closing, links } = list;
    while (closing.length > 0 && (closing[0] as Link).conn.closed) closing.shift();
    let link = closing.shift();
    if (link === undefined && this.#surplusAt(list) <= t) {
      link = links.shift();
      list.until.shift();
    }
    if (link === undefined) return;
    if (link.pingRefused) this.#refusalSettled(list, link, "open");
    link.conn.close();
    list.closeAt = t + this.#gap(list, t);
  }

  /**
   * A link that answered `ping` with `error` is reached again: still open, the
   * server has no `ping` (learnt for good); closed meanwhile, it was a cut, and
   * the server may ping after all, unless another link has shown otherwise.
   */
  #refusalSettled(list: IdleList, link: Link, how: "open" | "closed" | "lent"): void {
    if (how === "open") this.#keepalive.learnNoPing(link.poolKey);
    // Lent: learnt in put() if it comes back (it was used, so open); out of this list either way.
    link.pingRefused = how === "lent";
    list.refusals--;
    list.noPing = this.#keepalive.knownNoPing(link.poolKey) || list.refusals > 0;
  }

  /**
   * Whether `link` (lendable until `u`) is to be pinged at `t`, its time being
   * up: within its idle time, on a server not known to lack `ping`, not
   * answered `error` last time, and not so late that the server may have cut
   * it (say after a stalled event loop).
   */
  #pingable(list: IdleList, link: Link, u: number, t: number): boolean {
    return !list.noPing && !link.pingRefused && u - link.idleSince < this.#idleMs && t <= u + link.graceMs;
  }

  /** When the oldest link beyond maxIdle closes: once idle a while, or its time up; never if there is none. */
  #surplusAt(list: IdleList): number {
    const first = list.links[0];
    if (first === undefined || list.links.length + list.out.length <= this.#maxIdle) return Number.POSITIVE_INFINITY;
    return Math.min(list.until[0] as number, first.conn.lastSendAt + SURPLUS_IDLE_MS);
  }

  /**
   * When the reaper next has work for `list`: the time of the first link
   * within maxIdle (pinged or set to close then), an unanswered ping's
   * time-out, or the next close (not before `closeAt`).
   */
  #due(list: IdleList, t: number): number {
    const { links, until, out, closing } = list;
    const k = Math.max(0, links.length + out.length - this.#maxIdle);
    let due = k < links.length ? (until[k] as number) : Number.POSITIVE_INFINITY;
    // The next one beyond maxIdle is kept if one kept goes (lent, or cut): look again at its time.
    if (k > 0 && k <= links.length && (until[k - 1] as number) > t) due = Math.min(due, until[k - 1] as number);
    if (out.length > 0) due = Math.min(due, (out[0] as Link).conn.lastSendAt + PING_TIMEOUT_MS);
    const close = closing.length > 0 ? list.closeAt : Math.max(list.closeAt, this.#surplusAt(list));
    return Math.min(due, close);
  }

  /** The wait before the next close: the oldest one's time left shared among the surplus, within limits. */
  #gap(list: IdleList, t: number): number {
    const surplus = list.links.length + list.out.length - this.#maxIdle;
    if (surplus <= 0 || list.links.length === 0) return this.#minGapMs;
    const left = (list.until[0] as number) - t;
    return Math.max(this.#minGapMs, Math.min(MAX_CLOSE_GAP_MS, left / surplus));
  }
}
