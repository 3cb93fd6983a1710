/**
 * A lock's holding, from the hand-over of a grant to its end: confirming a
 * late grant, releasing, reporting a loss, closing. Decisions are the
 * {@link LeaseTracker}'s; a {@link Keeper} renews. The attempt phase (connect,
 * ask) is {@link LockEngine}'s, in engine.ts, which extends this class.
 *
 * @module
 */
import { abortError } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import { LockError, LockLostError, quote, ServerError } from "./errors.ts";
import { Keeper, type KeeperOwner } from "./keeper.ts";
import { LeaseTracker } from "./lease.ts";
import { callOnLost, type Settings } from "./options.ts";
import { commandName, encodeRelease, type Grant, parseOkReply } from "./protocol.ts";

/** Renewals tried to confirm a late grant before giving it up. */
const MAX_CONFIRMATIONS = 3;

const now: () => number = () => performance.now();

/** The state of one instance and everything about its current holding. */
export abstract class Holding {
  readonly key: string;
  protected readonly s: Settings;
  protected readonly lease = new LeaseTracker();
  protected conn: Connection | undefined;
  /** Bumped by close() and whenever an attempt or holding ends, so stale callbacks can tell. */
  protected epoch = 0;
  /** Aborted by close(): cancels a connect, TLS handshake or auth in progress. */
  protected attempt: AbortController | undefined;
  protected keeper: Keeper | undefined;
  protected releasing: Promise<void> | undefined;
  protected lost: LockLostError | undefined;
  protected dropped: LockError | undefined;
  protected abort: AbortController | undefined;
  /** Send time of the `e` that queued the current attempt: no grant can precede it. */
  protected enqueuedAt = 0;
  /** A fresh grant is being confirmed and has not been handed over yet. */
  protected confirming = false;
  /** A `wait()` is in flight. */
  protected waiting = false;

  protected constructor(settings: Settings) {
    this.s = settings;
    this.key = settings.key;
  }

  /** Release the lock (or slot). */
  release(): Promise<void> {
    const state = this.lease.state;
    if (state === "releasing") return this.releasing as Promise<void>;
    if (state === "lost") {
      const err = this.lost;
      this.lost = undefined;
      this.lease.to("released");
      return err === undefined ? Promise.resolve() : Promise.reject(err);
    }
    if (state === "connecting" || state === "queued") {
      this.end(this.epoch, new LockError(`${quote(this.key)} was released while ${state}`, "ABORTED"));
      return Promise.resolve();
    }
    if (state === "released") return Promise.resolve();
    this.releasing = this.releaseHeld();
    return this.releasing;
  }

  private async releaseHeld(): Promise<void> {
    const conn = this.conn as Connection;
    const grant = this.lease.grant as Grant;
    const epoch = this.epoch;
    const keeper = this.keeper;
    // The loss timer stays armed: a release that cannot be confirmed in time is a loss.
    keeper?.stopRenewal();
    this.lease.to("releasing");
    if (keeper?.inflight !== undefined) await keeper.inflight;
    try {
      if (this.epoch !== epoch || conn.closed) {
        // Lost while the renewal finished, or closed meanwhile.
        const lost = this.lost;
        this.lost = undefined;
        if (lost !== undefined) throw lost;
        return;
      }
      await conn.request(
        encodeRelease(this.s.kind, this.key, grant.token),
        commandName(this.s.kind, "release"),
        (line) => parseOkReply(line, commandName(this.s.kind, "release")),
        this.s.requestTimeoutMs,
      );
    } catch (err) {
      const lost = this.lost;
      if (lost !== undefined) throw lost;
      if (err instanceof ServerError && err.code !== "DRAINING") {
        throw new LockLostError(this.key, "the server no longer recognised the token at release (lease expired?)", err);
      }
      throw err;
    } finally {
      this.releasing = undefined;
      this.lost = undefined;
      if (this.epoch === epoch) this.end(epoch);
      else if (this.lease.state === "releasing") this.lease.to("released");
    }
  }

  /**
   * Throw unless attempt `epoch` is still the current one on an open `conn`:
   * a `close()` (or a drop) between a reply and its continuation wins.
   */
  protected current(conn: Connection, epoch: number, op: string): void {
    if (this.epoch !== epoch || conn.closed) {
      throw conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
    }
  }

  /**
   * Take a grant into the tracker (dated from `startBound`, the send time of
   * the request that can have started it) and hand it over: at once, or after
   * renewals have confirmed it when too little of its lease is left.
   * @throws LockLostError if no confirmation leaves enough lease: the lease ran
   * out before its grant could be used; a typed error if the attempt was
   * closed or `signal` aborted meanwhile.
   */
  protected async hold(
    conn: Connection,
    attempt: number,
    grant: Grant,
    startBound: number,
    lastSend: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.current(conn, attempt, "the hand-over of a grant");
    const epoch = ++this.epoch;
    const s = this.s;
    this.lease.granted(grant, startBound, lastSend, s.safetyMarginMs);
    const keeper = new Keeper(this.owner(), conn, {
      kind: s.kind,
      ttl: s.leaseTtlS ?? grant.lease,
      ratio: s.ratio,
      readTimeoutMs: s.readTimeoutMs,
      requestTimeoutMs: s.requestTimeoutMs,
    });
    this.keeper = keeper;
    // Nobody relies on a grant before it is handed over, so a confirming
    // renewal may take its time: if the server confirms it, the lease never
    // lapsed. But a confirmation whose own reply came late proves too little
    // again: renew until one leaves enough, or give up.
    const onAbort = (): void => this.end(epoch, abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.confirming = true;
    try {
      for (let tries = 0; this.lease.needsConfirmation(now()); tries++) {
        const confirmed =
          tries < MAX_CONFIRMATIONS
            ? await keeper.renew(s.requestTimeoutMs)
            : this.lose(`no renewal confirmed the grant with enough lease left after ${tries} tries`);
        if (!confirmed || this.epoch !== epoch) {
          const lost = this.lost;
          this.lost = undefined;
          if (this.lease.state === "lost") this.lease.to("released");
          throw (
            lost ??
            conn.closeError ??
            new LockError(`${quote(this.key)} was closed while its grant was being confirmed`, "ABORTED")
          );
        }
      }
    } finally {
      this.confirming = false;
      signal?.removeEventListener("abort", onAbort);
    }
    this.current(conn, epoch, "the hand-over of a grant");
    keeper.arm();
    this.abort = new AbortController();
  }

  /** The view of this instance a {@link Keeper} gets. */
  private owner(): KeeperOwner {
    const self = this;
    return {
      key: this.key,
      lease: this.lease,
      get epoch(): number {
        return self.epoch;
      },
      lose: (reason, cause) => this.lose(reason, cause),
    };
  }

  /** The holding can no longer be proven: report it, close the connection. */
  protected lose(reason: string, cause?: unknown): false {
    const state = this.lease.state;
    if (state !== "held" && state !== "renewing" && state !== "releasing") return false;
    const err = new LockLostError(this.key, reason, cause);
    this.lost = err;
    this.epoch++;
    const abort = this.teardown(err);
    // During release(), the release reports the loss itself; a grant being
    // confirmed was never handed over, so its acquire() reports it.
    if (state !== "releasing") this.lease.to("lost");
    // Listeners run last, when the state already says what happened.
    abort?.abort(err);
    if (state !== "releasing" && !this.confirming) callOnLost(this.s.onLost, err);
    return false;
  }

  /** End the current attempt or holding: timers off, connection closed, state `released`. */
  protected end(epoch: number, reason?: LockError): void {
    if (this.epoch !== epoch) return;
    this.epoch++;
    this.attempt?.abort(reason ?? new LockError(`${quote(this.key)} was released while connecting`, "ABORTED"));
    const abort = this.teardown(reason);
    this.lease.to("released");
    abort?.abort(reason ?? new LockError(`${quote(this.key)} was released`, "ABORTED"));
  }

  /** Stop renewing and close the connection; returns the holding's controller, for the caller to abort last. */
  protected teardown(reason?: LockError): AbortController | undefined {
    this.keeper?.stop();
    this.keeper = undefined;
    const conn = this.conn;
    this.conn = undefined;
    conn?.close(reason);
    const abort = this.abort;
    this.abort = undefined;
    return abort;
  }
}
