/**
 * The life of one lock or semaphore slot as a pure transition table, in the
 * manner of h11's `_state.py`: phases, the events that move between them, and
 * the actions each transition asks of its driver (driver.ts), in the order
 * they must be carried out. No sockets, timers, promises or clocks here: the
 * driver reads the clock and the wire, turns what it sees into events, and
 * does what the table says.
 *
 * Every way a holding can end is an event of this table: a reply
 * (`releaseDone`, `gone`), a late reply (`replyLate`), the connection closing
 * (`closed`), the clock passing the loss deadline (`deadline`) or the
 * holding's `maxHoldS` (`maxHold`), and the user (`release`, `close`,
 * `abort`). So the safety rules are checked here, once:
 *
 * - **I1, tell before leaving.** Every transition that ends a holding the
 *   user still relies on runs `tell` before `leave*`: the holder learns of the
 *   loss before the connection (and with it the server's lock) is let go.
 * - **I3, no loss for what the user ended.** `tell` appears only on
 *   transitions out of `held` and `renewing`, and only for events that are not
 *   the user's.
 *
 * The diagram in ARCHITECTURE.md is {@link mermaid}'s output, checked by a test.
 *
 * @module
 */

/**
 * Where a `DistributedLock` or `DistributedSemaphore` is in its life.
 *
 * - `released`: nothing held, nothing in progress (the initial state).
 * - `connecting`: opening a connection and asking for the lock (and, for a
 *   grant that came too late to trust, confirming it before it is handed over).
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

/**
 * The machine's phases: the public {@link LeaseState}s, plus `confirming`: a
 * grant is in, but so little of its lease was left that a renewal must
 * confirm it before anyone may rely on it (shown to users as `connecting`).
 */
export type Phase = LeaseState | "confirming";

/** What can happen to a lock's life. */
export type Event =
  /** The user starts an acquisition (acquire, enqueue, withLock, hold). */
  | "start"
  /** The server queued the request (`e`/`se` answered `queued`). */
  | "queue"
  /** A grant arrived with enough lease left to hand over at once. */
  | "grant"
  /** A grant arrived too late to trust: a renewal must confirm it first. */
  | "grantLate"
  /** A confirming renewal left enough lease: hand the grant over. */
  | "confirmed"
  /** The clock reached the time to renew. */
  | "renewDue"
  /** A renewal was confirmed (it moves the deadline; the driver has read it). */
  | "renewed"
  /** The server answered `timeout`: nothing was granted. */
  | "timedOut"
  /** An attempt's request failed with a server error: the connection is in a known state. */
  | "refused"
  /** An attempt's request failed on the wire (connect, write, reset, its own timeout). */
  | "failed"
  /** The user releases. */
  | "release"
  /** The server confirmed the release. */
  | "releaseDone"
  /** The server says it no longer knows the token (a renewal or release refused). */
  | "gone"
  /**
   * A cluster follower answered `error_not_leader`: it proves nothing about the lock. A renewal is tried
   * again later (the loss deadline decides); an attempt or a release ends without a loss.
   */
  | "notLeader"
  /** A request on the holding's connection got no reply in time: the client gives the connection up. */
  | "replyLate"
  /** The holding's connection closed: the server, the network, or another holding on it gave it up. */
  | "closed"
  /** The monotonic clock passed the loss deadline with no renewal confirmed. */
  | "deadline"
  /** The holding reached its `maxHoldS`: the client lets it go, and tells the holder it is lost. */
  | "maxHold"
  /** The user closes the instance (`close()`, or `client.close()`). */
  | "close"
  /** The user's signal aborted the attempt in progress. */
  | "abort";

/**
 * What a transition asks its driver to do, in order.
 *
 * - `epoch`: start a new generation: callbacks of the old one are ignored.
 * - `disarm`: stop renewing (cancel the holding's alarm).
 * - `arm`: set the alarm for the next renewal and the loss deadline.
 * - `renew`: send a renewal.
 * - `sendRelease`: send the release (after any renewal in flight).
 * - `handOver`: the grant is the caller's: its signal may be asked for.
 * - `tell`: tell the holder its lock is lost (signal aborted with a
 *   `LockLostError`, `onLost`, `hooks.lost`) before anything lets it go.
 * - `end`: end the holding's signal (with the reason, or "ended") and any
 *   attempt in progress; nobody is told of a loss.
 * - `leaveClean`: leave the connection in a known state, for reuse.
 * - `leaveDrop`: abandon what is held there (closed if this is its only user,
 *   else a release is sent and the others stay).
 * - `leaveBroken`: the connection can no longer be trusted: everyone else on
 *   it is told, then it is closed.
 */
export type Action =
  | "epoch"
  | "disarm"
  | "arm"
  | "renew"
  | "sendRelease"
  | "handOver"
  | "tell"
  | "end"
  | "leaveClean"
  | "leaveDrop"
  | "leaveBroken";

/** One row of the table: in `from`, `on` moves to `to` and asks for `actions`. */
export interface Transition {
  readonly from: Phase;
  readonly on: Event;
  readonly to: Phase;
  readonly actions: readonly Action[];
}

const HOLDING: readonly Phase[] = ["held", "renewing"];
const ATTEMPT: readonly Phase[] = ["connecting", "queued", "confirming"];

/** A loss the holder relies on: tell first, then let go. */
const LOSE_BROKEN: readonly Action[] = ["epoch", "disarm", "tell", "leaveBroken"];
const LOSE_CLEAN: readonly Action[] = ["epoch", "disarm", "tell", "leaveClean"];
/**
 * The clock ended it: nothing says the connection is broken (a slow server
 * is not a broken one), so the others on it keep it, and what this holding
 * had there is released behind their requests.
 */
const LOSE_DROP: readonly Action[] = ["epoch", "disarm", "tell", "leaveDrop"];
/** An attempt, or a holding the user already let go of, ends: nobody is told of a loss. */
const END_BROKEN: readonly Action[] = ["epoch", "disarm", "end", "leaveBroken"];
const END_CLEAN: readonly Action[] = ["epoch", "disarm", "end", "leaveClean"];
const END_DROP: readonly Action[] = ["epoch", "disarm", "end", "leaveDrop"];
const NONE: readonly Action[] = [];

function rows(from: readonly Phase[], on: Event, to: Phase, actions: readonly Action[]): Transition[] {
  return from.map((f) => ({ from: f, on, to, actions }));
}

/** Every legal transition. An event not listed for a phase does not apply there and changes nothing. */
export const TABLE: readonly Transition[] = Object.freeze([
  ...rows(["released", "lost"], "start", "connecting", ["epoch"]),
  ...rows(["connecting"], "queue", "queued", NONE),
  ...rows(["connecting", "queued"], "grant", "held", ["epoch", "arm", "handOver"]),
  ...rows(["connecting", "queued"], "grantLate", "confirming", ["epoch", "renew"]),
  ...rows(["confirming"], "renewed", "confirming", ["renew"]),
  ...rows(["confirming"], "confirmed", "held", ["arm", "handOver"]),
  ...rows(["held"], "renewDue", "renewing", ["renew"]),
  ...rows(["renewing"], "renewed", "held", ["arm"]),
  ...rows(["releasing"], "renewed", "releasing", NONE),
  ...rows(["connecting"], "timedOut", "released", END_CLEAN),
  ...rows(["queued"], "timedOut", "released", END_DROP),
  ...rows(ATTEMPT, "refused", "released", END_CLEAN),
  ...rows(ATTEMPT, "failed", "released", END_DROP),
  ...rows(HOLDING, "release", "releasing", ["arm", "sendRelease"]),
  ...rows(ATTEMPT, "release", "released", END_DROP),
  ...rows(["lost"], "release", "released", NONE),
  ...rows(["releasing"], "releaseDone", "released", END_CLEAN),
  ...rows(HOLDING, "gone", "lost", LOSE_CLEAN),
  ...rows(["confirming", "releasing"], "gone", "released", END_CLEAN),
  ...rows(["renewing"], "notLeader", "held", ["arm"]),
  // A follower's answer proves nothing of a queue place, a late grant or the holding being released: what may
  // still be on the connection is given up. Before anything was asked, nothing is there.
  ...rows(["connecting"], "notLeader", "released", END_CLEAN),
  ...rows(["queued", "confirming", "releasing"], "notLeader", "released", END_DROP),
  ...rows(HOLDING, "replyLate", "lost", LOSE_BROKEN),
  ...rows(HOLDING, "deadline", "lost", LOSE_DROP),
  ...rows(HOLDING, "maxHold", "lost", LOSE_DROP),
  ...rows(HOLDING, "closed", "lost", LOSE_BROKEN),
  ...rows(["confirming", "releasing"], "replyLate", "released", END_BROKEN),
  ...rows(["confirming", "releasing"], "deadline", "released", END_DROP),
  ...rows(ATTEMPT, "closed", "released", END_BROKEN),
  ...rows(["releasing"], "closed", "released", END_BROKEN),
  ...rows([...ATTEMPT, ...HOLDING, "releasing"], "close", "released", END_DROP),
  ...rows(["lost"], "close", "released", NONE),
  ...rows(ATTEMPT, "abort", "released", END_DROP),
]);

const INDEX: Readonly<Record<Phase, Partial<Record<Event, Transition>>>> = (() => {
  const index: Record<Phase, Partial<Record<Event, Transition>>> = {
    released: {},
    connecting: {},
    queued: {},
    confirming: {},
    held: {},
    renewing: {},
    releasing: {},
    lost: {},
  };
  for (const t of TABLE) {
    if (index[t.from][t.on] !== undefined) throw new Error(`two rows for ${t.from} on ${t.on}`);
    index[t.from][t.on] = t;
  }
  return index;
})();

/**
 * The transition `event` makes from `phase`, or `undefined` when the event
 * does not apply there (a late callback of a life that already moved on).
 */
export function step(phase: Phase, event: Event): Transition | undefined {
  return INDEX[phase][event];
}

/** The state users see for `phase`: a grant being confirmed is still `connecting`. */
export function publicState(phase: Phase): LeaseState {
  return phase === "confirming" ? "connecting" : phase;
}

/** `true` in the phases where the caller holds the lock and may rely on it. */
export function isHolding(phase: Phase): boolean {
  return phase === "held" || phase === "renewing";
}

/**
 * The table as a Mermaid state diagram (one edge per phase pair, labelled
 * with its events), for ARCHITECTURE.md.
 */
export function mermaid(): string {
  const edges = new Map<string, string[]>();
  for (const t of TABLE) {
    const k = `${t.from} --> ${t.to}`;
    const events = edges.get(k) ?? [];
    events.push(t.actions.includes("tell") ? `${t.on} (tell)` : t.on);
    edges.set(k, events);
  }
  const lines = ["stateDiagram-v2", "    [*] --> released"];
  for (const [edge, events] of edges) lines.push(`    ${edge}: ${events.join(", ")}`);
  return lines.join("\n");
}
