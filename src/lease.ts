/**
 * The life of one lock or semaphore slot, as a pure state machine: which
 * transitions are legal, the lease deadline on a monotonic clock, and when to
 * renew. It performs no I/O and reads no clock; callers pass times in.
 *
 * ```text
 *   released ──► connecting ──► held ◄──► renewing
 *      ▲  ▲          │  ▲         │  \       │
 *      │  │          ▼            ▼   ▼      ▼
 *      │  └────── queued ──► held  releasing  lost ──► connecting (acquire again)
 *      └──────────────────────────┴──────────┘
 * ```
 * `close()` may move any state to `released`.
 *
 * @module
 */
import type { Grant, Renewal } from "./protocol.ts";

/**
 * Where a `DistributedLock` or `DistributedSemaphore` is in its life.
 *
 * - `released`: nothing held, nothing in progress (the initial state).
 * - `connecting`: opening a connection and asking for the lock.
 * - `queued`: enqueued (two-phase), waiting to be granted.
 * - `held`: granted; renewed in the background.
 * - `renewing`: held, with a renewal in flight.
 * - `releasing`: a release is in flight.
 * - `lost`: was held, but can no longer be proven held.
 *
 * @example
 * ```ts
 * import { DistributedLock, type LeaseState } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "k" });
 * const state: LeaseState = lock.state; // "released"
 * ```
 */
export type LeaseState = "connecting" | "queued" | "held" | "renewing" | "releasing" | "released" | "lost";

const NEXT: Readonly<Record<LeaseState, readonly LeaseState[]>> = {
  released: ["connecting", "released"],
  connecting: ["queued", "held", "released"],
  queued: ["held", "released"],
  held: ["renewing", "releasing", "lost", "released"],
  renewing: ["held", "releasing", "lost", "released"],
  releasing: ["released"],
  lost: ["connecting", "released"],
};

/** Whether `from → to` is a legal transition. */
export function canTransition(from: LeaseState, to: LeaseState): boolean {
  return NEXT[from].includes(to);
}

/**
 * Tracks one holding: state, token, applied TTL and deadline (monotonic
 * milliseconds). The deadline is measured from when the request was *sent*,
 * which is never later than when the server applied it, so the client's idea
 * of the deadline is never later than the server's.
 */
export class LeaseTracker {
  #state: LeaseState = "released";
  #grant: Grant | undefined;
  #deadline = 0;
  #rtt = 0;

  /** Current state. */
  get state(): LeaseState {
    return this.#state;
  }

  /** The grant while held (or renewing/releasing), else `undefined`. */
  get grant(): Grant | undefined {
    return this.#grant;
  }

  /** Monotonic time (ms) after which the holding can no longer be proven. */
  get deadline(): number {
    return this.#deadline;
  }

  /** Smoothed round-trip time of renewals, in ms. */
  get rttMs(): number {
    return this.#rtt;
  }

  /** `true` in `held` and `renewing`. */
  get holding(): boolean {
    return this.#state === "held" || this.#state === "renewing";
  }

  /**
   * Move to `next`.
   * @throws Error if the transition is not legal (a bug in the caller).
   */
  to(next: LeaseState): void {
    if (!canTransition(this.#state, next)) {
      throw new Error(`dflockd-client internal error: illegal transition ${this.#state} -> ${next}`);
    }
    this.#state = next;
    if (next === "released" || next === "lost" || next === "connecting") this.#grant = undefined;
  }

  /** The server granted `grant` to a request sent at `sentAt`. */
  granted(grant: Grant, sentAt: number): void {
    this.to("held");
    this.#grant = grant;
    this.#deadline = sentAt + grant.lease * 1000;
  }

  /** Use a connect time as the first round-trip estimate. */
  seedRtt(ms: number): void {
    if (this.#rtt === 0) this.#rtt = Math.max(0, ms);
  }

  /**
   * A renewal asking for `ttl` seconds, sent at `sentAt`, was confirmed at
   * `now`. Does not change the state. Some older servers answer with the
   * whole seconds remaining (`ttl - 1` right after renewing) instead of the
   * TTL applied; both mean the lease now runs `ttl` seconds from `sentAt`.
   */
  renewed(renewal: Renewal, sentAt: number, now: number, ttl: number): void {
    const g = this.#grant as Grant;
    const lease = renewal.lease === ttl - 1 ? ttl : renewal.lease;
    const fence = renewal.fence ?? g.fence;
    this.#grant = fence === undefined ? { token: g.token, lease } : { token: g.token, lease, fence };
    this.#deadline = sentAt + lease * 1000;
    const sample = Math.max(0, now - sentAt);
    this.#rtt = this.#rtt === 0 ? sample : this.#rtt * 0.8 + sample * 0.2;
  }
}

/**
 * Milliseconds to wait before the next renewal.
 *
 * Renews at `lease × ratio`, but never later than `idleLimit × ratio` or a
 * margin before `idleLimit` (so the connection does not sit idle into the
 * server's read timeout) and never so late that a renewal taking three round
 * trips would miss the deadline.
 *
 * @param leaseS TTL the server applied, in seconds.
 * @param ratio Fraction of the lease (0 < ratio < 1).
 * @param rttMs Smoothed round-trip time.
 * @param idleLimitMs The server's read timeout.
 */
export function renewDelayMs(leaseS: number, ratio: number, rttMs: number, idleLimitMs: number): number {
  const leaseMs = leaseS * 1000;
  const byRatio = Math.min(leaseMs, idleLimitMs) * ratio;
  // Whatever the ratio, keep a margin before the read timeout: 3 RTTs, and up to 1 s.
  const beforeIdle = idleLimitMs - Math.max(3 * rttMs, Math.min(1000, idleLimitMs / 4));
  const beforeExpiry = leaseMs - 3 * rttMs;
  return Math.max(MIN_RENEW_DELAY_MS, Math.min(byRatio, beforeIdle, beforeExpiry));
}

/** Floor on the renewal delay, so a pathological round trip cannot spin. */
const MIN_RENEW_DELAY_MS = 10;
