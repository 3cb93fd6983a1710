/**
 * The I/O of a held lock: renewals sent when {@link LeaseTracker} says, and
 * the loss reported when its `lossAt` passes with no renewal confirmed. The
 * decisions (when to renew, what a reply proves, when the holding is lost)
 * are the tracker's; this file only sends, waits and sets an alarm. Its alarm
 * never keeps the process alive.
 *
 * One keeper serves every holding of an instance, and one alarm serves both
 * deadlines: it goes off at the next renewal (always due before the loss
 * deadline) or, while a renewal or release is in flight, at the loss
 * deadline. An alarm that goes off early is set again for what is left.
 * Alarms share the process's one timer ({@link alarmClock}).
 *
 * @module
 */

import { Alarm, alarmClock } from "./alarms.ts";
import type { Connection } from "./connection.ts";
import type { LeaseTracker } from "./lease.ts";
import { commandName, encodeRenew, type Grant, type Kind, parseRenewReply } from "./protocol.ts";

/** What a {@link Keeper} needs from the lock that owns the holding. */
export interface KeeperOwner {
  readonly key: string;
  readonly lease: LeaseTracker;
  /** The generation of the current holding; a keeper acts only while it is the one it was made for. */
  readonly epoch: number;
  /** The holding can no longer be proven. */
  lose(reason: string, cause?: unknown): void;
  /** A renewal was confirmed. */
  renewed(): void;
}

/** The settings a keeper renews with. */
export interface KeeperSettings {
  readonly kind: Kind;
  readonly ratio: number;
  readonly readTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

const now = (): number => performance.now();

/** Keeps an instance's holdings alive, one at a time, until each is stopped or lost. */
export class Keeper {
  readonly #owner: KeeperOwner;
  readonly #s: KeeperSettings;
  #conn: Connection | undefined;
  /** The holding served; -1 when none. */
  #epoch = -1;
  /** The TTL sent on every renewal (a bare renew would reset it to the server's default). */
  #ttl = 0;
  #renewAt = 0;
  /** The keeper's one deadline, on the process's {@link alarmClock}. */
  readonly #alarm = new Alarm(() => this.#onTimer());
  /** The renewal in flight; settles (never rejects) when it is done. */
  inflight: Promise<boolean> | undefined;

  constructor(owner: KeeperOwner, settings: KeeperSettings) {
    this.#owner = owner;
    this.#s = settings;
  }

  /** Serve the owner's current holding, on `conn`, renewing with `ttl`. Arms nothing yet. */
  begin(conn: Connection, ttl: number): void {
    this.#conn = conn;
    this.#epoch = this.#owner.epoch;
    this.#ttl = ttl;
    this.inflight = undefined;
  }

  /** Arm the next renewal (and the loss deadline) for the lease as it now stands. */
  arm(): void {
    const lease = this.#owner.lease;
    this.#renewAt = lease.nextRenewalAt(this.#s.ratio, this.#s.readTimeoutMs);
    this.#schedule(Math.min(this.#renewAt, lease.lossAt));
  }

  /**
   * Send a renewal now (the state must be `held`). A renewal not confirmed by
   * `lossAt` fails, unless `budgetMs` gives it longer: a grant confirmed before
   * it is handed over, when no one relies on it yet. Such a confirmation arms
   * no timer; the caller arms it once it hands the grant over.
   * @returns `true` once confirmed; `false` if the holding was lost or ended.
   */
  renew(budgetMs?: number): Promise<boolean> {
    const lease = this.#owner.lease;
    const conn = this.#conn;
    if (lease.state !== "held" || !this.#current() || conn === undefined) return Promise.resolve(false);
    const grant = lease.grant as Grant;
    const command = commandName(this.#s.kind, "renew");
    lease.to("renewing");
    const sentAt = now();
    const budget = budgetMs ?? Math.max(1, Math.min(this.#s.requestTimeoutMs, lease.lossAt - sentAt));
    if (budgetMs === undefined) this.#schedule(lease.lossAt);
    const epoch = this.#epoch;
    const bytes = encodeRenew(this.#s.kind, this.#owner.key, grant.token, this.#ttl);
    const done = conn.request(bytes, command, parseRenewReply, budget).then(
      (renewal) => {
        if (!this.#current() || this.#epoch !== epoch) return false;
        const state = lease.state;
        if (state !== "renewing" && state !== "releasing") return false;
        lease.renewed(renewal, sentAt, now(), this.#ttl);
        if (state === "renewing") {
          lease.to("held");
          if (budgetMs === undefined) this.arm();
        }
        // During a release the alarm already waits for the (now later) loss deadline.
        // Told last, when the state says what happened: the hook may release or close.
        this.#owner.renewed();
        return true;
      },
      (err: unknown) => {
        if (this.#current() && this.#epoch === epoch) this.#owner.lose(renewalFailure(err, budget), err);
        return false;
      },
    );
    this.inflight = done;
    void done.then(() => {
      if (this.inflight === done) this.inflight = undefined;
    });
    return done;
  }

  /** Stop serving the holding: its alarm is cancelled. */
  stop(): void {
    this.#epoch = -1;
    this.#conn = undefined;
    alarmClock.cancel(this.#alarm);
  }

  /** Make sure the alarm goes off no later than `at`. */
  #schedule(at: number): void {
    const alarm = this.#alarm;
    if (alarm.armed && alarm.at <= at) return;
    alarmClock.set(alarm, at);
  }

  #onTimer(): void {
    if (!this.#current()) return;
    const lease = this.#owner.lease;
    const state = lease.state;
    if (state !== "held" && state !== "renewing" && state !== "releasing") return;
    const t = now();
    if (t >= lease.lossAt) {
      this.#owner.lose(
        `no renewal was confirmed before the lease's deadline less the ${lease.marginMs} ms safety margin`,
      );
      return;
    }
    if (state === "held" && t >= this.#renewAt) {
      void this.renew();
      return;
    }
    this.#schedule(state === "held" ? Math.min(this.#renewAt, lease.lossAt) : lease.lossAt);
  }

  #current(): boolean {
    return this.#epoch !== -1 && this.#owner.epoch === this.#epoch;
  }
}

function renewalFailure(err: unknown, budgetMs: number): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "TIMEOUT") return `the renewal was not confirmed within ${Math.round(budgetMs)} ms`;
  return `renewal failed: ${err instanceof Error ? err.message : String(err)}`;
}
