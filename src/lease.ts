/**
 * The timing of one holding: the lease deadline on the client's monotonic
 * clock, the safety margin, and when to renew. It performs no I/O and reads
 * no clock; callers pass times in. Which phase a lock is in is the machine's
 * (machine.ts).
 *
 * @module
 */
import type { Grant, Renewal } from "./protocol.ts";

/**
 * How long before the lease's deadline a holder is told of a loss, by
 * default: enough to absorb timers that fire late on a busy machine and the
 * drift between the client's and the server's clocks, and never more than
 * half the lease.
 *
 * @param leaseS The TTL the server applied, in seconds.
 * @param configured The `safetyMarginMs` option, if given.
 */
export function safetyMarginMs(leaseS: number, configured: number | undefined): number {
  const half = (leaseS * 1000) / 2;
  if (configured !== undefined) return Math.min(configured, half);
  return Math.min(Math.max(MIN_SAFETY_MARGIN_MS, leaseS * 1000 * SAFETY_MARGIN_FRACTION), half);
}

/** The default margin's floor: timer lateness seen on a loaded 2-core machine, with room to spare. */
export const MIN_SAFETY_MARGIN_MS = 300;
/** The default margin's share of the lease: far above any real clock-rate error. */
export const SAFETY_MARGIN_FRACTION = 0.05;

/**
 * Tracks one holding: state, token, applied TTL, and two times on the
 * client's monotonic clock.
 *
 * **The invariant.** `deadline` is never later than the moment the server
 * lets the lease go, whatever the delay of any message. The server starts (or
 * restarts) a lease when it processes a request, which is after the client
 * sent that request; so every lease is dated from the *send time* of the
 * request that produced it: the `l`/`sl` for a grant (even one that waited in
 * the queue), the `e`/`se` for a two-phase grant (the grant can only follow
 * it), the `n`/`sn` for a renewal. Reply arrival times are never used: a reply
 * may have spent any time in transit.
 *
 * **The margin.** The holder is told of a loss at `lossAt = deadline −
 * margin`, and a renewal not confirmed by then counts as failed, so that a
 * late timer or a slightly fast server clock cannot let another client hold
 * the lock before the holder knows.
 *
 * **Confirmation.** A grant that arrives with less than half of its usable
 * lease left (it waited long in the queue, or its reply was slow) is renewed
 * before it is handed to the caller: {@link LeaseTracker.needsConfirmation}.
 */
export class LeaseTracker {
  #grant: Grant | undefined;
  #start = 0;
  #deadline = 0;
  #margin = 0;
  #configuredMargin: number | undefined;
  #lastSend = 0;
  #rtt = 0;

  /** The grant of the current holding, until {@link clear}. */
  get grant(): Grant | undefined {
    return this.#grant;
  }

  /** Monotonic time (ms) no later than the server's expiry of the lease. */
  get deadline(): number {
    return this.#deadline;
  }

  /** Monotonic time (ms) at which the holding counts as lost unless renewed: `deadline − margin`. */
  get lossAt(): number {
    return this.#deadline - this.#margin;
  }

  /** The safety margin in force, in ms. */
  get marginMs(): number {
    return this.#margin;
  }

  /** Smoothed round-trip time of requests on the holding's connection, in ms. */
  get rttMs(): number {
    return this.#rtt;
  }

  /** Forget the grant (the holding ended). */
  clear(): void {
    this.#grant = undefined;
  }

  /**
   * The server granted `grant`. `startBound` is the send time of the request
   * that can have started the lease (see the invariant); `lastSend` the send
   * time of the request the grant answered (the connection's idle clock runs
   * from there); `marginMs` the `safetyMarginMs` option, if given (see
   * {@link safetyMarginMs}; recomputed whenever the TTL changes).
   */
  granted(grant: Grant, startBound: number, lastSend: number, marginMs: number | undefined): void {
    this.#grant = grant;
    this.#start = startBound;
    this.#deadline = startBound + grant.lease * 1000;
    this.#configuredMargin = marginMs;
    this.#margin = safetyMarginMs(grant.lease, marginMs);
    this.#lastSend = lastSend;
  }

  /** Take a round-trip sample (a connect, a reply), in ms. */
  sampleRtt(ms: number): void {
    const sample = Math.max(0, ms);
    this.#rtt = this.#rtt === 0 ? sample : this.#rtt * 0.8 + sample * 0.2;
  }

  /**
   * Whether a fresh grant has so little of its usable lease left at `now`
   * that it must be confirmed by a renewal before the caller gets it.
   */
  needsConfirmation(now: number): boolean {
    const usable = this.lossAt - this.#start;
    return usable <= 0 || this.lossAt - now < usable / 2;
  }

  /**
   * A renewal asking for `ttl` seconds, sent at `sentAt`, was confirmed at
   * `now`; `renewal.lease` is `undefined` for a bare `ok` (older servers),
   * which confirms the TTL asked for. Some older servers answer with the
   * whole seconds remaining (`ttl - 1` right after renewing) instead of the
   * TTL applied; both mean the lease now runs `ttl` seconds from `sentAt`.
   */
  renewed(renewal: Renewal, sentAt: number, now: number, ttl: number): void {
    const g = this.#grant as Grant;
    // A server that applied more than was asked gets no credit for it.
    const lease = renewal.lease === undefined || renewal.lease === ttl - 1 ? ttl : Math.min(renewal.lease, ttl);
    const fence = renewal.fence ?? g.fence;
    this.#grant = fence === undefined ? { token: g.token, lease } : { token: g.token, lease, fence };
    this.#start = sentAt;
    this.#lastSend = sentAt;
    this.#deadline = sentAt + lease * 1000;
    this.#margin = safetyMarginMs(lease, this.#configuredMargin);
    this.sampleRtt(now - sentAt);
  }

  /**
   * When to send the next renewal (monotonic ms); see {@link renewAt}.
   *
   * @param ratio Fraction of the usable lease after which to renew.
   * @param idleLimitMs The server's read timeout.
   */
  nextRenewalAt(ratio: number, idleLimitMs: number): number {
    return renewAt(this.#start, this.lossAt, this.#lastSend, ratio, this.#rtt, idleLimitMs);
  }
}

/**
 * When to send a renewal, in monotonic ms: after `ratio` of the usable lease
 * (`start` to `lossAt`), but early enough that a reply taking two round trips
 * still lands before `lossAt`, and before the connection has been idle for
 * the server's read timeout since `lastSend` (less three round trips, and up
 * to a second). All times are send times, never reply times.
 *
 * @param start When the current lease can have started at the earliest.
 * @param lossAt When the holding counts as lost unless renewed.
 * @param lastSend When the connection last sent a request.
 * @param ratio Fraction of the usable lease (0 < ratio < 1).
 * @param rttMs Smoothed round-trip time.
 * @param idleLimitMs The server's read timeout.
 */
export function renewAt(
  start: number,
  lossAt: number,
  lastSend: number,
  ratio: number,
  rttMs: number,
  idleLimitMs: number,
): number {
  const byRatio = start + (lossAt - start) * ratio;
  const beforeLoss = lossAt - 2 * rttMs - MIN_RENEW_DELAY_MS;
  const beforeIdle = lastSend + idleLimitMs - Math.max(3 * rttMs, Math.min(1000, idleLimitMs / 4));
  return Math.max(lastSend + MIN_RENEW_DELAY_MS, Math.min(byRatio, beforeLoss, beforeIdle));
}

/** Floor on the time between sends, so a pathological round trip cannot spin. */
const MIN_RENEW_DELAY_MS = 10;
