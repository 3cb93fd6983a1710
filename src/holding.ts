/**
 * A lock's holding, from the hand-over of a grant to its end: confirming a
 * late grant, releasing, reporting a loss, closing. Decisions are the
 * {@link LeaseTracker}'s; a {@link Keeper} renews. The attempt phase (connect,
 * ask) is {@link LockEngine}'s, in engine.ts, which extends this class.
 *
 * @module
 */
import { abortError } from "./cancel.ts";
import type { CloseInfo, Connection } from "./connection.ts";
import { ConnectionError, LockError, LockLostError, quote, ServerError } from "./errors.ts";
import { fire, heldEvent } from "./hooks.ts";
import { Keeper, type KeeperOwner } from "./keeper.ts";
import { LeaseTracker } from "./lease.ts";
import { callOnLost, type Settings, serverOf } from "./options.ts";
import type { ConnectionPool, Link, LinkUser } from "./pool.ts";
import { commandName, type Grant, parseOkReply, releaseRequest } from "./protocol.ts";

/**
 * The reason a holding's signal gets when the holding ends by release or
 * close: one shared object, so the success path builds no error.
 */
const ENDED: LockError = Object.freeze(
  new LockError("the holding ended (released or closed) and no longer protects anything", "ABORTED"),
) as LockError;

/** Renewals tried to confirm a late grant before giving it up. */
const MAX_CONFIRMATIONS = 3;

const now: () => number = () => performance.now();

/**
 * How an attempt or holding leaves its connection: `clean`, in a known state
 * (released, refused), for the pool to keep; `broken`, closed, as it can no
 * longer be trusted (everyone else on it loses too); `drop`, abandoning
 * whatever it has there (closed when it is the only user, else a release is
 * sent and the connection stays with the others).
 */
export type Leaving = "clean" | "broken" | "drop";

const ignore = (): void => {};

/**
 * A request that cannot block, on a shared connection, whose reply is still
 * due: the connection is left when the reply arrives, and `reject` lets a
 * close() fail its caller at once.
 */
export interface PendingTry {
  readonly link: Link;
  readonly reject: (reason: LockError) => void;
}

/** The state of one instance and everything about its current holding. */
export abstract class Holding implements KeeperOwner, LinkUser {
  readonly key: string;
  protected readonly s: Settings;
  readonly lease: LeaseTracker = new LeaseTracker();
  protected readonly pool: ConnectionPool;
  /** The pooled connection of the current attempt or holding, and its `conn`. */
  protected link: Link | undefined;
  protected conn: Connection | undefined;
  /** This instance's identity on a shared connection: kind and key. */
  protected readonly id: string;
  /**
   * A request that cannot block, sent on a shared connection, whose reply is
   * still due: the connection is left when it arrives (see engine.ts).
   */
  protected pendingTry: PendingTry | undefined;
  /**
   * The token of a grant on a shared connection whose reply has arrived but
   * which {@link hold} has not taken yet: what a close() in between must give
   * back (on a connection of its own, closing the connection gives it back).
   */
  protected unheld: string | undefined;
  /** Bumped by close() and whenever an attempt or holding ends, so stale callbacks can tell. */
  epoch = 0;
  /** Aborted by close(): cancels a connect, TLS handshake or auth in progress. */
  protected attempt: AbortController | undefined;
  /** Made at the first hand-over, then reused by every holding. */
  protected keeper: Keeper | undefined;
  /** The grant has been handed over and not yet ended: the holding's signal may be asked for. */
  protected handedOver = false;
  protected releasing: Promise<void> | undefined;
  protected lost: LockLostError | undefined;
  protected dropped: LockError | undefined;
  /** The current holding's controller, made when its signal is first asked for. */
  protected abort: AbortController | undefined;
  /** Send time of the `e` that queued the current attempt: no grant can precede it. */
  protected enqueuedAt = 0;
  /** A fresh grant is being confirmed and has not been handed over yet. */
  protected confirming = false;
  /** A `wait()` is in flight. */
  protected waiting = false;

  protected constructor(settings: Settings, pool: ConnectionPool) {
    this.s = settings;
    this.key = settings.key;
    this.pool = pool;
    this.id = settings.kind === "lock" ? settings.key : `\u0000${settings.key}`;
  }

  /** The connection this instance uses was closed: by the server, the network, or another user of it. */
  linkClosed(info: CloseInfo): void {
    const conn = this.conn;
    if (conn === undefined || conn.closeError !== info.error) return;
    if (this.lease.holding) {
      const timedOut = info.error.code === "TIMEOUT";
      this.lose(timedOut ? info.error.message : "the connection to the server was lost", info.error);
    } else if (this.lease.state === "queued") {
      this.dropped = info.error;
      this.end(this.epoch);
    }
  }

  /** An `AbortSignal` for the current holding (made on first use); `undefined` when nothing is held. */
  get signal(): AbortSignal | undefined {
    if (!this.handedOver) return undefined;
    this.abort ??= new AbortController();
    return this.abort.signal;
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
    // The keeper's timer now waits for the loss deadline only: a release that
    // cannot be confirmed in time is a loss.
    this.lease.to("releasing");
    if (keeper?.inflight !== undefined) await keeper.inflight;
    let ok = false;
    try {
      if (this.epoch !== epoch || conn.closed) {
        // Lost while the renewal finished, or closed meanwhile.
        const lost = this.lost;
        this.lost = undefined;
        if (lost !== undefined) throw lost;
        return;
      }
      await conn.request(
        releaseRequest(this.s.kind, this.key, grant.token),
        commandName(this.s.kind, "release"),
        parseOkReply,
        this.s.requestTimeoutMs,
      );
      // Released on the server: the connection is clean.
      ok = this.epoch === epoch && !conn.closed;
    } catch (err) {
      const lost = this.lost;
      if (lost !== undefined) throw lost;
      if (provesGone(err)) {
        ok = true;
        throw new LockLostError(this.key, "the server no longer recognised the token at release (lease expired?)", err);
      }
      throw err;
    } finally {
      this.releasing = undefined;
      this.lost = undefined;
      if (this.epoch === epoch) this.end(epoch, undefined, ok ? "clean" : "broken");
      else if (this.lease.state === "releasing") this.lease.to("released");
    }
  }

  /**
   * Throw unless attempt `epoch` is still the current one on an open `conn`:
   * a `close()` (or a drop) between a reply and its continuation wins.
   */
  protected current(conn: Connection, epoch: number, op: string): void {
    if (this.epoch !== epoch || conn.closed) {
      const err = conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
      // A connection that closed in between leaves an attempt still open: end it.
      if (this.epoch === epoch) this.end(epoch, err, "broken");
      throw err;
    }
  }

  /**
   * Take a grant into the tracker (dated from `startBound`, the send time of
   * the request that can have started it) and hand it over: at once, or after
   * renewals have confirmed it when too little of its lease is left.
   * @returns `undefined` when handed over at once (no await needed), else
   * the confirmation under way.
   * @throws LockLostError if no confirmation leaves enough lease: the lease ran
   * out before its grant could be used; a typed error if the attempt was
   * closed or `signal` aborted meanwhile.
   */
  protected hold(
    conn: Connection,
    attempt: number,
    grant: Grant,
    startBound: number,
    lastSend: number,
    signal: AbortSignal | undefined,
  ): Promise<void> | undefined {
    this.current(conn, attempt, "the hand-over of a grant");
    const epoch = ++this.epoch;
    const s = this.s;
    this.lease.granted(grant, startBound, lastSend, s.safetyMarginMs);
    this.unheld = undefined;
    this.keeper ??= new Keeper(this, s);
    const keeper = this.keeper;
    keeper.begin(conn, s.leaseTtlS ?? grant.lease);
    // Nobody relies on a grant before it is handed over, so a confirming
    // renewal may take its time: if the server confirms it, the lease never
    // lapsed. But a confirmation whose own reply came late proves too little
    // again: renew until one leaves enough, or give up.
    if (!this.lease.needsConfirmation(now())) {
      // The usual case, handed over with no await.
      keeper.arm();
      this.handedOver = true;
      return undefined;
    }
    return this.confirm(conn, epoch, keeper, signal);
  }

  /** Renew a late grant until a confirmation leaves enough lease, then hand it over (see {@link hold}). */
  private async confirm(
    conn: Connection,
    epoch: number,
    keeper: Keeper,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const s = this.s;
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
    this.handedOver = true;
  }

  /** The holding can no longer be proven: report it, close the connection. (For the {@link Keeper}.) */
  lose(reason: string, cause?: unknown): false {
    const state = this.lease.state;
    if (state !== "held" && state !== "renewing" && state !== "releasing") return false;
    const err = new LockLostError(this.key, reason, cause);
    this.lost = err;
    this.epoch++;
    // A refusal from the server leaves its connection in a known state; a
    // silence or a broken connection does not.
    const abort = this.teardown(err, provesGone(cause) ? "clean" : "broken");
    // During release(), the release reports the loss itself; a grant being
    // confirmed was never handed over, so its acquire() reports it.
    if (state !== "releasing") this.lease.to("lost");
    // Listeners run last, when the state already says what happened.
    abort?.abort(err);
    if (state !== "releasing" && !this.confirming) {
      callOnLost(this.s.onLost, err);
      // A loss during release() is told when release() reports it (engine.ts).
      const hook = this.s.hooks?.lost;
      if (hook !== undefined) fire("lost", hook, () => ({ key: this.key, server: serverOf(this.s), error: err }));
    }
    return false;
  }

  /** A renewal was confirmed. (For the {@link Keeper}.) */
  renewed(): void {
    // A grant being confirmed before its hand-over is not acquired yet.
    if (this.confirming) return;
    const hook = this.s.hooks?.renewed;
    if (hook !== undefined)
      fire("renewed", hook, () => heldEvent(this.key, serverOf(this.s), this.lease.grant as Grant));
  }

  /**
   * End the current attempt or holding: renewals off, state `released`, and
   * its connection left as `leaving` says (see {@link Leaving}).
   */
  protected end(epoch: number, reason?: LockError, leaving: Leaving = "drop"): void {
    if (this.epoch !== epoch) return;
    this.epoch++;
    this.attempt?.abort(reason ?? new LockError(`${quote(this.key)} was released while connecting`, "ABORTED"));
    const abort = this.teardown(reason, leaving);
    this.lease.to("released");
    abort?.abort(reason ?? ENDED);
  }

  /**
   * Stop renewing and leave the connection; returns the holding's
   * controller, if one was made, for the caller to abort last.
   */
  protected teardown(reason: LockError | undefined, leaving: Leaving): AbortController | undefined {
    this.keeper?.stop();
    this.handedOver = false;
    const link = this.link;
    this.link = undefined;
    this.conn = undefined;
    const token = this.lease.grant?.token ?? this.unheld;
    this.unheld = undefined;
    const pending = this.pendingTry;
    this.pendingTry = undefined;
    if (pending !== undefined) pending.reject(reason ?? new LockError(`${quote(this.key)} was closed`, "ABORTED"));
    if (link !== undefined) {
      // A request still due on a shared connection: its reply leaves the
      // connection (unless the whole pool is closing).
      if (pending?.link !== link || this.pool.closed) this.leaveLink(link, reason, leaving, token);
    }
    this.pool.exit(this);
    const abort = this.abort;
    this.abort = undefined;
    return abort;
  }

  /** Leave `link` as `leaving` says; `token` is what this instance holds there, if anything. */
  protected leaveLink(link: Link, reason: LockError | undefined, leaving: Leaving, token: string | undefined): void {
    const s = this.s;
    if (this.pool.closed) leaving = "broken";
    if (leaving === "drop" && !link.exclusive && link.users.size > 1) {
      // Others hold on this connection: give back what this instance has, and stay clean.
      if (token !== undefined && !link.conn.closed) {
        const command = commandName(s.kind, "release");
        link.conn
          .request(releaseRequest(s.kind, this.key, token), command, parseOkReply, s.requestTimeoutMs)
          .catch(ignore);
      }
      leaving = "clean";
    }
    // Others on a connection closed for this instance's sake learn why, not as their own loss.
    const others = link.users.size > 1 && leaving === "broken" && !link.conn.closed;
    const why = others
      ? new ConnectionError(
          `the connection was closed because another holding on it could not be trusted: ${reason?.message ?? "closed"}`,
          { cause: reason },
        )
      : reason;
    this.pool.leave(link, this.id, leaving === "clean", s.readTimeoutMs, why);
  }

  /** Drop everything now (also what a closing client calls). */
  abstract close(): void;
}

/** A reply that proves the server holds nothing for the token any more (a draining server still does). */
function provesGone(cause: unknown): boolean {
  return cause instanceof ServerError && cause.code !== "DRAINING";
}
