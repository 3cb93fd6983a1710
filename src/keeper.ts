/**
 * The I/O that keeps a holding alive: one alarm on the process's shared
 * {@link alarmClock}, and renewals sent on the holding's connection. It
 * decides nothing: when the alarm goes off, or a renewal is answered, it
 * tells its owner (the driver, driver.ts), which turns that into an event of
 * the lock's machine (machine.ts). The alarm never keeps the process alive.
 *
 * An alarm that goes off early is set again by its owner for what is left,
 * so moving a deadline later costs nothing.
 *
 * @module
 */

import { Alarm, alarmClock } from "./alarms.ts";
import type { Connection } from "./connection.ts";
import { commandName, encodeRenew, type Kind, parseRenewReply, type Renewal } from "./protocol.ts";

/** What a {@link Keeper} tells the holding it serves. */
export interface KeeperOwner {
  /** The alarm went off (maybe early: the owner checks the clock). */
  alarm(): void;
  /** The renewal sent at `sentAt` for generation `epoch` was confirmed. */
  renewed(renewal: Renewal, sentAt: number, epoch: number): void;
  /** The renewal for generation `epoch`, allowed `budgetMs`, failed with `err`. */
  renewFailed(err: unknown, budgetMs: number, epoch: number): void;
}

/** One instance's alarm and renewals. */
export class Keeper {
  readonly #owner: KeeperOwner;
  readonly #kind: Kind;
  readonly #alarm: Alarm;
  /** The renewal in flight; settles (never rejects) once its owner has been told. */
  inflight: Promise<void> | undefined;

  constructor(owner: KeeperOwner, kind: Kind) {
    this.#owner = owner;
    this.#kind = kind;
    this.#alarm = new Alarm(() => owner.alarm());
  }

  /** Make sure the alarm goes off no later than `at` (monotonic ms). */
  schedule(at: number): void {
    const alarm = this.#alarm;
    if (alarm.armed && alarm.at <= at) return;
    alarmClock.set(alarm, at);
  }

  /** Cancel the alarm. */
  stop(): void {
    alarmClock.cancel(this.#alarm);
  }

  /**
   * Send a renewal of `token` for `ttl` seconds on `conn`, allowed
   * `budgetMs` for its reply; the owner is told how it went, with `epoch`.
   */
  renew(conn: Connection, key: string, token: string, ttl: number, budgetMs: number, epoch: number): void {
    const owner = this.#owner;
    const sentAt = performance.now();
    const bytes = encodeRenew(this.#kind, key, token, ttl);
    const done = conn.request(bytes, commandName(this.#kind, "renew"), parseRenewReply, budgetMs).then(
      (renewal) => owner.renewed(renewal, sentAt, epoch),
      (err: unknown) => owner.renewFailed(err, budgetMs, epoch),
    );
    this.inflight = done;
    void done.then(() => {
      if (this.inflight === done) this.inflight = undefined;
    });
  }
}
