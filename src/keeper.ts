/**
 * The I/O of a held lock: renewals sent when {@link LeaseTracker} says, and
 * the loss reported when its `lossAt` passes with no renewal confirmed. The
 * decisions (when to renew, what a reply proves, when the holding is lost)
 * are the tracker's; this file only sends, waits and arms timers. Its timers
 * never keep the process alive.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { LeaseTracker } from "./lease.ts";
import { commandName, encodeRenew, type Grant, type Kind, parseRenewReply, type Renewal } from "./protocol.ts";
import { backgroundTimer } from "./transport.ts";

/** What a {@link Keeper} needs from the lock that owns the holding. */
export interface KeeperOwner {
  readonly key: string;
  readonly lease: LeaseTracker;
  /** The generation of the current holding; a keeper acts only while it is the one it was made for. */
  readonly epoch: number;
  /** The holding can no longer be proven. */
  lose(reason: string, cause?: unknown): void;
}

/** The settings a keeper renews with. */
export interface KeeperSettings {
  readonly kind: Kind;
  /** The TTL sent on every renewal (a bare renew would reset it to the server's default). */
  readonly ttl: number;
  readonly ratio: number;
  readonly readTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

const now = (): number => performance.now();

/** Keeps one holding alive until it is stopped or lost. */
export class Keeper {
  readonly #owner: KeeperOwner;
  readonly #conn: Connection;
  readonly #s: KeeperSettings;
  readonly #epoch: number;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #lossTimer: ReturnType<typeof setTimeout> | undefined;
  /** The renewal in flight; settles (never rejects) when it is done. */
  inflight: Promise<boolean> | undefined;

  constructor(owner: KeeperOwner, conn: Connection, settings: KeeperSettings) {
    this.#owner = owner;
    this.#conn = conn;
    this.#s = settings;
    this.#epoch = owner.epoch;
  }

  /** Arm the next renewal and the loss timer for the lease as it now stands. */
  arm(): void {
    clearTimeout(this.#renewTimer);
    const lease = this.#owner.lease;
    const at = lease.nextRenewalAt(this.#s.ratio, this.#s.readTimeoutMs);
    this.#renewTimer = backgroundTimer(() => {
      this.#renewTimer = undefined;
      void this.renew();
    }, at - now());
    this.armLoss();
  }

  /** Arm only the loss timer, at the tracker's `lossAt`. */
  armLoss(): void {
    clearTimeout(this.#lossTimer);
    const lease = this.#owner.lease;
    this.#lossTimer = backgroundTimer(() => {
      this.#lossTimer = undefined;
      if (this.#current()) {
        this.#owner.lose(
          `no renewal was confirmed before the lease's deadline less the ${lease.marginMs} ms safety margin`,
        );
      }
    }, lease.lossAt - now());
  }

  /**
   * Send a renewal now (the state must be `held`). A renewal not confirmed by
   * `lossAt` fails, unless `budgetMs` gives it longer: a grant confirmed before
   * it is handed over, when no one relies on it yet. Such a confirmation arms
   * no timer; the caller arms them once it hands the grant over.
   * @returns `true` once confirmed; `false` if the holding was lost or ended.
   */
  renew(budgetMs?: number): Promise<boolean> {
    const lease = this.#owner.lease;
    if (lease.state !== "held" || !this.#current()) return Promise.resolve(false);
    const grant = lease.grant as Grant;
    const command = commandName(this.#s.kind, "renew");
    lease.to("renewing");
    const sentAt = now();
    const budget = budgetMs ?? Math.max(1, Math.min(this.#s.requestTimeoutMs, lease.lossAt - sentAt));
    let reply: Promise<Renewal>;
    try {
      const bytes = encodeRenew(this.#s.kind, this.#owner.key, grant.token, this.#s.ttl);
      reply = this.#conn.request(bytes, command, (line) => parseRenewReply(line, command), budget);
    } catch (err) {
      reply = Promise.reject(err);
    }
    const done = reply.then(
      (renewal) => {
        if (!this.#current()) return false;
        const state = lease.state;
        if (state !== "renewing" && state !== "releasing") return false;
        lease.renewed(renewal, sentAt, now(), this.#s.ttl);
        if (state === "renewing") {
          lease.to("held");
          if (budgetMs === undefined) this.arm();
        } else {
          // A release is under way; the renewed deadline applies to it.
          this.armLoss();
        }
        return true;
      },
      (err: unknown) => {
        if (this.#current()) this.#owner.lose(renewalFailure(err, budget), err);
        return false;
      },
    );
    this.inflight = done;
    void done.then(() => {
      if (this.inflight === done) this.inflight = undefined;
    });
    return done;
  }

  /** Disarm the renewal timer only (a release is under way; the loss timer still counts). */
  stopRenewal(): void {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  /** Disarm both timers. */
  stop(): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#lossTimer);
    this.#renewTimer = undefined;
    this.#lossTimer = undefined;
  }

  #current(): boolean {
    return this.#owner.epoch === this.#epoch;
  }
}

function renewalFailure(err: unknown, budgetMs: number): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "TIMEOUT") return `the renewal was not confirmed within ${Math.round(budgetMs)} ms`;
  return `renewal failed: ${err instanceof Error ? err.message : String(err)}`;
}
