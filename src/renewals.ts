/**
 * Renewals and the clock of a holding, as events of its machine: one alarm
 * on the process's shared {@link alarmClock}, and renewals sent on the
 * holding's connection. The alarm going off (a renewal due, the loss deadline
 * passed, the holding's `maxHoldS` reached) and a renewal's reply (confirmed,
 * refused, late, or its connection gone) become the events `renewDue`,
 * `deadline`, `maxHold`, `renewed`, `gone`, `replyLate` and `closed`, fed to
 * the driver (driver.ts); a confirmed late
 * grant is handed to its acquirer. An alarm that goes off early is set again
 * for what is left, so moving a deadline later costs nothing; the alarm never
 * keeps the process alive.
 *
 * @module
 */
import { Alarm, alarmClock } from "./alarms.ts";
import type { Connection } from "./connection.ts";
import { type LockError, LockLostError, ServerError } from "./errors.ts";
import { fire as fireHook, heldEvent } from "./hooks.ts";
import { NotLeaderError } from "./leader.ts";
import type { LeaseTracker } from "./lease.ts";
import type { Event, Phase } from "./machine.ts";
import { type Settings, serverOf } from "./options.ts";
import { commandName, encodeRenew, type Grant, parseRenewReply, type Renewal } from "./protocol.ts";
import { maxHoldLoss } from "./unreleased.ts";

/** Renewals tried to confirm a late grant before giving it up. */
const MAX_CONFIRMATIONS = 3;

/**
 * The pause before a renewal answered `error_not_leader` is sent again: a
 * second (a cluster elects a leader in about that), or a quarter of what is
 * left of the provable lease if that is less, so that several tries fit
 * before the loss deadline, which alone ends the holding.
 */
export function notLeaderPause(lossAt: number, t: number): number {
  return Math.max(0, Math.min(1000, (lossAt - t) / 4));
}

const now: () => number = () => performance.now();

/** What {@link Renewals} reads of the driver, and the one way it acts: an event. */
export interface RenewalHost {
  readonly key: string;
  readonly s: Settings;
  readonly lease: LeaseTracker;
  readonly phase: Phase;
  readonly epoch: number;
  readonly conn: Connection | undefined;
  fire(event: Event, reason?: LockError): boolean;
  /** A renewal confirmed the late grant: its acquirer may take it over (the `confirmed` event is its). */
  confirmedByRenewal(): void;
}

/** One instance's renewals: made at its first grant, then reused by every holding. */
export class Renewals {
  readonly #h: RenewalHost;
  /** The one deadline of the holding: the next renewal, or the loss deadline. */
  readonly #alarm: Alarm;
  /** The renewal in flight; settles (never rejects) once handled. */
  #inflight: Promise<void> | undefined;
  /** The TTL sent with every renewal (a bare renew would reset it to the server's default). */
  #ttl = 0;
  #confirmations = 0;
  /** When the holding reaches its `maxHoldS` (monotonic ms; `Infinity` without one). */
  #holdEnd = Infinity;
  /** No renewal before this (monotonic ms): set when a cluster follower answered the last one. */
  #notBefore = 0;

  constructor(host: RenewalHost) {
    this.#h = host;
    this.#alarm = new Alarm(() => this.#onAlarm());
  }

  /** The renewal in flight, if any; settles (never rejects) once handled. */
  get inflight(): Promise<void> | undefined {
    return this.#inflight;
  }

  /**
   * A new holding, its grant just arrived: renew it with `ttl` seconds; its
   * `maxHoldS` counts from now (time spent waiting for the grant does not count).
   */
  begin(ttl: number): void {
    this.#ttl = ttl;
    this.#confirmations = 0;
    this.#notBefore = 0;
    const maxHoldS = this.#h.s.maxHoldS;
    this.#holdEnd = maxHoldS === undefined ? Infinity : now() + maxHoldS * 1000;
  }

  /** The table's `disarm`. */
  stop(): void {
    alarmClock.cancel(this.#alarm);
  }

  /** Make sure the alarm goes off no later than `at` (monotonic ms). */
  #schedule(at: number): void {
    const alarm = this.#alarm;
    if (alarm.armed && alarm.at <= at) return;
    alarmClock.set(alarm, at);
  }

  /** The table's `arm`: the alarm for the next renewal and `maxHoldS` (while held) and the loss deadline. */
  arm(): void {
    const lease = this.#h.lease;
    if (this.#h.phase === "held") {
      this.#schedule(Math.min(this.#renewAt(), lease.lossAt, this.#holdEnd));
    } else this.#schedule(lease.lossAt);
  }

  /** When the next renewal is due: the lease's time, or later after an `error_not_leader`. */
  #renewAt(): number {
    const { lease, s } = this.#h;
    return Math.max(lease.nextRenewalAt(s.ratio, s.readTimeoutMs), this.#notBefore);
  }

  /**
   * The table's `renew`. A renewal of a held lock may wait for its reply as
   * long as the lease is provable: its alarm at the loss deadline decides,
   * and the connection gives up on the reply only {@link sharedPatience}
   * later (a server slowed by other work is not a lost lock). One confirming a
   * late grant, which nobody relies on yet, gets the request timeout.
   */
  renew(): void {
    const h = this.#h;
    const lease = h.lease;
    let budget = h.s.requestTimeoutMs;
    if (h.phase === "renewing") {
      budget = patience(lease.lossAt, h.s);
      this.#schedule(Math.min(lease.lossAt, this.#holdEnd));
    } else this.#confirmations++;
    const epoch = h.epoch;
    const sentAt = now();
    const kind = h.s.kind;
    const bytes = encodeRenew(kind, h.key, (lease.grant as Grant).token, this.#ttl);
    const done = (h.conn as Connection).request(bytes, commandName(kind, "renew"), parseRenewReply, budget).then(
      (renewal) => this.#renewed(renewal, sentAt, epoch),
      (err: unknown) => this.#renewFailed(err, budget, epoch),
    );
    this.#inflight = done;
    void done.then(() => {
      if (this.#inflight === done) this.#inflight = undefined;
    });
  }

  /** The clock passed the loss deadline: the `deadline` event. */
  #lossNow(): void {
    const h = this.#h;
    const why = `no renewal was confirmed before the lease's deadline less the ${h.lease.marginMs} ms safety margin`;
    h.fire("deadline", new LockLostError(h.key, why));
  }

  /**
   * Read the clock for a holding (I2): past its loss deadline it is lost now
   * (`deadline`); past its `maxHoldS` it ends now (`maxHold`).
   */
  checkClock(): void {
    const t = now();
    if (t >= this.#h.lease.lossAt) this.#lossNow();
    else if (t >= this.#holdEnd) this.#holdEnded();
  }

  /** The holding reached its `maxHoldS`: the `maxHold` event. */
  #holdEnded(): void {
    const h = this.#h;
    h.fire("maxHold", maxHoldLoss(h.key, h.s.maxHoldS as number));
  }

  /** The alarm went off: the loss deadline, `maxHoldS`, a renewal due, or early. */
  #onAlarm(): void {
    const { phase, lease } = this.#h;
    const holding = phase === "held" || phase === "renewing";
    if (!holding && phase !== "releasing") return;
    const t = now();
    if (t >= lease.lossAt) {
      this.#lossNow();
      return;
    }
    // A release in flight has taken over from maxHoldS.
    const end = holding ? Math.min(lease.lossAt, this.#holdEnd) : lease.lossAt;
    if (t >= end) {
      this.#holdEnded();
      return;
    }
    const renewAt = this.#renewAt();
    if (phase === "held" && t >= renewAt) {
      this.#h.fire("renewDue");
      return;
    }
    this.#schedule(phase === "held" ? Math.min(renewAt, end) : end);
  }

  /** The renewal sent at `sentAt` for generation `epoch` was confirmed. */
  #renewed(renewal: Renewal, sentAt: number, epoch: number): void {
    const h = this.#h;
    const phase = h.phase;
    if (epoch !== h.epoch || (phase !== "renewing" && phase !== "releasing" && phase !== "confirming")) return;
    const t = now();
    h.lease.renewed(renewal, sentAt, t, this.#ttl);
    this.#notBefore = 0;
    if (phase !== "confirming") {
      h.fire("renewed");
      const hook = h.s.hooks?.renewed;
      // Told last, when the state says what happened: the hook may release or close.
      if (hook !== undefined) {
        fireHook("renewed", hook, () => heldEvent(h.key, serverOf(h.s, h.conn), h.lease.grant as Grant));
      }
    } else if (!h.lease.needsConfirmation(t)) h.confirmedByRenewal();
    else if (this.#confirmations < MAX_CONFIRMATIONS) h.fire("renewed");
    else {
      const why = `no renewal confirmed the grant with enough lease left after ${this.#confirmations} tries`;
      h.fire("deadline", new LockLostError(h.key, why));
    }
  }

  /** The renewal for generation `epoch`, allowed `budgetMs`, failed with `err`. */
  #renewFailed(err: unknown, budgetMs: number, epoch: number): void {
    const h = this.#h;
    if (epoch !== h.epoch) return;
    if (err instanceof NotLeaderError) {
      // Proves nothing: a holding tries again later (its deadline decides); a release in flight decides itself.
      if (h.phase === "renewing") this.#notBefore = now() + notLeaderPause(h.lease.lossAt, now());
      if (h.phase !== "releasing") h.fire("notLeader", err);
      return;
    }
    const lost = new LockLostError(h.key, renewalFailure(err, budgetMs), err);
    if (provesGone(err)) h.fire("gone", lost);
    else if ((err as { code?: unknown } | null)?.code === "TIMEOUT") h.fire("replyLate", lost);
    else h.fire("closed", lost);
  }
}

/**
 * How long a renewal or release of a holding provable until `lossAt` may
 * wait for its reply (ms): until then, so that the holding's own deadline,
 * not the connection's reply timeout, ends it; and as long as a request of a
 * lost holding on a shared connection may wait ({@link sharedPatience}), so
 * that the others on it are not closed out when the server is slow.
 */
export function patience(lossAt: number, s: Settings): number {
  return Math.max(0, lossAt - now()) + sharedPatience(s);
}

/**
 * How long a request that others on a shared connection do not wait for
 * (a lost holding's release, a try given up) may wait for its reply before
 * the connection is taken for dead, which would end every holding on it: the
 * request timeout and the server's read timeout. A server that answers
 * nothing for that long is stuck, not slow.
 */
export function sharedPatience(s: Settings): number {
  return s.requestTimeoutMs + s.readTimeoutMs;
}

/**
 * A reply that proves the server holds nothing for the token any more (a
 * draining server still does; a cluster follower does not know).
 */
export function provesGone(cause: unknown): boolean {
  return cause instanceof ServerError && cause.code !== "DRAINING" && cause.code !== "NOT_LEADER";
}

function renewalFailure(err: unknown, budgetMs: number): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "TIMEOUT") return `the renewal was not confirmed within ${Math.round(budgetMs)} ms`;
  return `renewal failed: ${err instanceof Error ? err.message : String(err)}`;
}
