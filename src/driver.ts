/**
 * The one driver of a lock's machine (machine.ts): it owns the phase, the
 * holding's connection, its timing ({@link LeaseTracker}) and its signal,
 * turns what happens (replies, late replies, a closed connection, the clock,
 * the user) into events, and carries out the actions the table returns. The
 * attempt I/O (attempt.ts), the operations (operations.ts) and the turns of
 * concurrent callers (engine.ts) use it through its methods only.
 *
 * @module
 */
import type { AttemptSide, PendingTry } from "./attempt.ts";
import type { CloseInfo, Connection } from "./connection.ts";
import { LockError, LockLostError, quote } from "./errors.ts";
import { fire as fireHook } from "./hooks.ts";
import { LeaseTracker } from "./lease.ts";
import { type Leave, leaveGeneration, leaveLink } from "./leaving.ts";
import type { Link, LinkUser } from "./link.ts";
import { type Action, type Event, isHolding, type LeaseState, type Phase, publicState, step } from "./machine.ts";
import { callOnLost, type Settings, serverOf } from "./options.ts";
import type { ConnectionPool, PoolUser } from "./pool.ts";
import type { Grant } from "./protocol.ts";
import { sendRelease } from "./release.ts";
import { Renewals } from "./renewals.ts";
import { registerWatch, unwatchHolding, type Watch } from "./unreleased.ts";

/**
 * The reason a holding's signal gets when the holding ends by release or
 * close: one shared object, so the success path builds no error.
 */
const ENDED: LockError = Object.freeze(
  new LockError("the holding ended (released or closed) and no longer protects anything", "ABORTED"),
) as LockError;

const now: () => number = () => performance.now();

/** A grant being confirmed: settled when the machine leaves `confirming`. */
interface Confirmation {
  readonly resolve: () => void;
  readonly reject: (err: LockError) => void;
}

/** The state of one instance and the driver of its machine. */
export class LockDriver implements LinkUser {
  readonly key: string;
  readonly s: Settings;
  readonly pool: ConnectionPool;
  /** This instance's identity on a shared connection: kind and key. */
  readonly id: string;
  readonly lease: LeaseTracker = new LeaseTracker();
  #phase: Phase = "released";
  /** Bumped by the table's `epoch` action only: callbacks of an older generation are ignored. */
  #epoch = 0;
  #link: Link | undefined;
  #conn: Connection | undefined;
  /** What the attempt side (attempt.ts) keeps of the current generation. */
  #side: AttemptSide | undefined;
  /** Made at the first grant, then reused by every holding. */
  #renewals: Renewals | undefined;
  #confirmation: Confirmation | undefined;
  #releasing: Promise<void> | undefined;
  /** How the release in flight settles when the holding ends (release.ts). */
  releaseEnd: ((reason: LockError | undefined) => void) | undefined;
  /** A holding's loss not yet reported to a caller: the next release() reports it. */
  #lost: LockLostError | undefined;
  /** The generation whose release ended last, and the loss that ended it: that release reports it, once. */
  #releaseEnded = -1;
  #releaseLoss: LockLostError | undefined;
  /** A queue place lost with its connection, for the next wait(). */
  #dropped: LockError | undefined;
  /** The current holding's controller, made when its signal is first asked for. */
  #abort: AbortController | undefined;
  #handedOver = false;
  /** What the abandoned-holding registry watches for the current holding (unreleased.ts). */
  watched: Watch | undefined;

  /** What a closing client closes: the instance as a whole (its turns too), not just this driver. */
  readonly #user: PoolUser;

  constructor(settings: Settings, pool: ConnectionPool, user: PoolUser) {
    this.#user = user;
    this.s = settings;
    this.key = settings.key;
    this.pool = pool;
    this.id = settings.kind === "lock" ? settings.key : `\u0000${settings.key}`;
  }

  /** The machine's phase, without reading the clock. */
  get phase(): Phase {
    return this.#phase;
  }

  /** The current generation. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The pooled connection of the current attempt or holding. */
  get link(): Link | undefined {
    return this.#link;
  }

  /** Its connection. */
  get conn(): Connection | undefined {
    return this.#conn;
  }

  /** The public state, once the clock has been read (I2). */
  get state(): LeaseState {
    this.checkClock();
    return publicState(this.#phase);
  }

  /** `true` while held, once the clock has been read (I2). */
  get held(): boolean {
    this.checkClock();
    return isHolding(this.#phase);
  }

  /** The grant of the current holding (not while it is being confirmed). */
  get grant(): Grant | undefined {
    return isHolding(this.#phase) || this.#phase === "releasing" ? this.lease.grant : undefined;
  }

  /** `true` once the current holding was handed over, until it ends: {@link signal} is then defined. */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** An `AbortSignal` for the current holding (made on first use); `undefined` when nothing is held. */
  get signal(): AbortSignal | undefined {
    if (!this.#handedOver) return undefined;
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /**
   * Read the monotonic clock: a holding past its loss deadline (or its
   * `maxHoldS`) ends now, whether or not its alarm has run (a paused process).
   */
  checkClock(): void {
    if (isHolding(this.#phase)) this.#renewals?.checkClock();
  }

  /** Throw unless held (reading the clock first): the loss, or a `NOT_HELD` error. */
  assertHeld(): void {
    this.checkClock();
    const phase = this.#phase;
    if (isHolding(phase)) return;
    if (phase === "lost" && this.#lost !== undefined) throw this.#lost;
    throw new LockError(`${quote(this.key)} is not held (it is ${publicState(phase)})`, "NOT_HELD");
  }

  /** The error a failed attempt or wait() reports, once: a loss, or a dropped queue place. */
  takeFailure(): LockError | undefined {
    const lost = this.#lost;
    const dropped = this.#dropped;
    this.#lost = undefined;
    this.#dropped = undefined;
    return lost ?? dropped;
  }

  /** The loss that ended generation `epoch`, once (for its release); `undefined` if another ended it. */
  lossOf(epoch: number): LockLostError | undefined {
    if (this.#releaseEnded !== epoch) return undefined;
    const lost = this.#releaseLoss;
    this.#releaseLoss = undefined;
    return lost;
  }

  /** The loss of a holding now in phase `lost`, not yet reported to release() (which reports it). */
  get loss(): LockLostError | undefined {
    return this.#phase === "lost" ? this.#lost : undefined;
  }

  /**
   * Feed `event` to the machine and carry out the transition's actions in
   * order. `reason` is why (a loss's `LockLostError`, a close's error).
   * @returns `false` when the event does not apply in the current phase.
   */
  fire(event: Event, reason?: LockError): boolean {
    const from = this.#phase;
    const t = step(from, event);
    if (t === undefined) return false;
    this.#phase = t.to;
    const actions = t.actions;
    if (actions.length === 0) return true;
    // Only a transition that ends a generation leaves its connection, read here before any action runs:
    // a user callback (tell, end) may start a new generation on this instance.
    let link: Link | undefined;
    let token: string | undefined;
    let pending: PendingTry | undefined;
    if (t.to === "released" || t.to === "lost") {
      link = this.#link;
      token = this.lease.grant?.token ?? this.#side?.unheld;
      pending = this.#side?.pendingTry;
      // A connection about to be closed takes no new holding meanwhile (a re-entrant acquire in onLost).
      if (link !== undefined && actions.includes("leaveBroken")) this.pool.retire(link);
      this.#settle(from, event, reason);
    }
    for (let i = 0; i < actions.length; i++) this.#act(actions[i] as Action, reason, link, token, pending);
    return true;
  }

  /** A generation ends: forget its connection and grant (the actions work on what fire() read), settle its waiters. */
  #settle(from: Phase, event: Event, reason: LockError | undefined): void {
    this.#link = undefined;
    this.#conn = undefined;
    this.#side?.forget();
    this.lease.clear();
    this.#releasing = undefined;
    this.pool.exit(this.#user);
    unwatchHolding(this);
    // A release that ends in a loss reports it (release.ts), even if a new attempt starts meanwhile;
    // a confirmation reports it through its own rejection.
    if (from === "releasing") {
      this.#releaseEnded = this.#epoch;
      this.#releaseLoss = reason instanceof LockLostError ? reason : undefined;
      const end = this.releaseEnd;
      this.releaseEnd = undefined;
      // The user's close() lets go as release() was asked to: that release settles quietly, unless lost.
      end?.(event === "close" ? undefined : reason);
    }
    const confirmation = this.#confirmation;
    this.#confirmation = undefined;
    confirmation?.reject(
      reason ?? new LockError(`${quote(this.key)} was closed while its grant was being confirmed`, "ABORTED"),
    );
  }

  #act(
    action: Action,
    reason: LockError | undefined,
    link: Link | undefined,
    token: string | undefined,
    pending: PendingTry | undefined,
  ): void {
    switch (action) {
      case "epoch":
        this.#epoch++;
        return;
      case "disarm":
        this.#renewals?.stop();
        return;
      case "arm":
        this.#renewals?.arm();
        return;
      case "renew":
        this.#renewals?.renew();
        registerWatch(this);
        return;
      case "sendRelease":
        this.#releasing = sendRelease(this, this.#renewals?.inflight);
        return;
      case "handOver":
        this.#handedOver = true;
        return;
      case "tell":
        this.#tell(reason, serverOf(this.s, link?.conn));
        return;
      case "end":
        this.#end(reason);
        return;
      case "leaveClean":
        leaveGeneration(this, link, token, pending, reason, "clean");
        return;
      case "leaveDrop":
        leaveGeneration(this, link, token, pending, reason, "drop");
        return;
      case "leaveBroken":
        leaveGeneration(this, link, token, pending, reason, "broken");
        return;
    }
  }

  /** Tell the holder, before anything lets the lock go: the signal aborts, then `onLost` and `hooks.lost`. */
  #tell(reason: LockError | undefined, server: string): void {
    const err =
      reason instanceof LockLostError ? reason : new LockLostError(this.key, reason?.message ?? "lost", reason);
    this.#lost = err;
    this.#handedOver = false;
    const abort = this.#abort;
    this.#abort = undefined;
    abort?.abort(err);
    callOnLost(this.s.onLost, err);
    const hook = this.s.hooks?.lost;
    if (hook !== undefined) fireHook("lost", hook, () => ({ key: this.key, server, error: err }));
  }

  /** End the generation's signal and any connect in progress; nobody is told of a loss. */
  #end(reason: LockError | undefined): void {
    this.#handedOver = false;
    this.#side?.cancelConnect(reason);
    const abort = this.#abort;
    this.#abort = undefined;
    abort?.abort(reason ?? ENDED);
  }

  /** Leave `link` as `how` says; `token` is what this instance holds there, if anything. */
  leaveLink(link: Link, reason: LockError | undefined, how: Leave, token: string | undefined): void {
    leaveLink(this.pool, this.s, this.id, link, reason, how, token);
  }

  // ---- The attempt's connection (attempt.ts) ----

  /** Start an attempt (released or lost → connecting). @returns its epoch. */
  start(): number {
    this.#lost = undefined;
    this.#dropped = undefined;
    this.fire("start");
    this.pool.enter(this.#user);
    return this.#epoch;
  }

  /** The attempt `epoch` uses `link` (if it is still the current one). */
  use(link: Link, epoch: number): boolean {
    if (this.#epoch !== epoch) return false;
    this.#link = link;
    this.#conn = link.conn;
    return true;
  }

  /** The attempt side of this instance (attempt.ts), told when a generation ends. */
  bindAttempts(side: AttemptSide): void {
    this.#side = side;
  }

  /** End attempt `epoch` with `event`, if it is still the current one. */
  endAttempt(epoch: number, event: Event, reason?: LockError): void {
    if (this.#epoch === epoch) this.fire(event, reason);
  }

  /**
   * Throw unless attempt `epoch` is still the current one on an open
   * connection: a `close()` (or a drop) between a reply and its continuation wins.
   */
  current(epoch: number, op: string): void {
    const conn = this.#conn;
    if (this.#epoch === epoch && conn !== undefined && !conn.closed) return;
    const err = conn?.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
    // A connection that closed in between leaves an attempt still open: end it.
    if (this.#epoch === epoch) this.fire("closed", err);
    throw err;
  }

  /** The server queued attempt `epoch`. */
  queued(epoch: number): void {
    this.current(epoch, "enqueue");
    this.fire("queue");
  }

  /**
   * Take a grant (its lease dated from `startBound`, the send time of the
   * request that can have started it) and hand it over: at once, or after
   * renewals have confirmed it when too little of its lease is left.
   * @returns `undefined` when handed over at once, else the confirmation.
   */
  hold(epoch: number, grant: Grant, startBound: number, lastSend: number): Promise<void> | undefined {
    this.current(epoch, "the hand-over of a grant");
    this.lease.granted(grant, startBound, lastSend, this.s.safetyMarginMs);
    this.#side?.forget();
    this.#renewals ??= new Renewals(this);
    this.#renewals.begin(this.s.leaseTtlS ?? grant.lease);
    // Nobody relies on a grant before it is handed over, so a confirming renewal may take its time.
    if (!this.lease.needsConfirmation(now())) {
      this.fire("grant");
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      this.#confirmation = { resolve, reject };
      this.fire("grantLate");
    });
  }

  /** The connection this instance uses was closed: by the server, the network, or another user of it. */
  linkClosed(info: CloseInfo): void {
    const conn = this.#conn;
    if (conn === undefined || conn.closeError !== info.error) return;
    const phase = this.#phase;
    if (isHolding(phase)) {
      // The client's own reason (a late reply, another holding on it lost) says more than "lost".
      const own = info.byClient || info.error.code === "TIMEOUT";
      const why = own ? info.error.message : conn.lossReason(this.s.readTimeoutMs);
      this.fire("closed", new LockLostError(this.key, why, info.error));
    } else if (phase === "queued") {
      this.#dropped = info.error;
      this.fire("closed", info.error);
    }
  }

  /** A renewal confirmed the late grant: wake its acquirer, which hands it over ({@link handOver}). */
  confirmedByRenewal(): void {
    const confirmation = this.#confirmation;
    this.#confirmation = undefined;
    confirmation?.resolve();
  }

  /**
   * The acquirer of a confirmed late grant takes it (`confirmed`), in its
   * own continuation, as with a grant on time: a close or drop in between wins.
   */
  handOver(epoch: number): void {
    this.current(epoch, "the hand-over of a grant");
    this.fire("confirmed");
  }

  // ---- Release and close ----

  /** Release the lock (or slot). */
  release(): Promise<void> {
    const phase = this.#phase;
    if (phase === "releasing") return this.#releasing as Promise<void>;
    if (phase === "lost") {
      const err = this.#lost;
      this.#lost = undefined;
      this.fire("release");
      return err === undefined ? Promise.resolve() : Promise.reject(err);
    }
    if (phase === "released") return Promise.resolve();
    if (isHolding(phase)) {
      this.fire("release");
      return this.#releasing as Promise<void>;
    }
    this.fire("release", new LockError(`${quote(this.key)} was released while ${publicState(phase)}`, "ABORTED"));
    return Promise.resolve();
  }

  /** Drop everything now: the holding or attempt ends, and nobody is told of a loss. */
  close(reason?: LockError): void {
    this.#lost = undefined;
    this.#dropped = undefined;
    // Released: nothing to end (the table has no `close` there), so no reason is built.
    if (this.#phase !== "released")
      this.fire("close", reason ?? new LockError(`${quote(this.key)} was closed`, "ABORTED"));
  }
}
