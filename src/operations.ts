/**
 * The operations of one instance, one at a time: acquire, enqueue and wait,
 * through {@link Attempts} (attempt.ts: connections and requests) and the
 * {@link LockDriver} (driver.ts: the machine, hand-over, release and loss),
 * and the hooks they tell. engine.ts adds what concurrent callers share
 * (turns, scopes).
 *
 * @module
 */

import { Attempts, type How, RETRY } from "./attempt.ts";
import { abortError, checkSignal, deadlineSignal } from "./cancel.ts";
import type { LockDriver } from "./driver.ts";
import { InvalidArgumentError, LockError, quote } from "./errors.ts";
import { withTokenFence } from "./fence.ts";
import { fire, heldEvent, type LockEvent } from "./hooks.ts";
import { leaderTarget } from "./leader.ts";
import type { Link } from "./link.ts";
import { type AcquireOptions, checkCallOptions, type EnqueueStatus, serverOf, type Target } from "./options.ts";
import {
  acquireRequest,
  type EnqueueResult,
  encodeEnqueue,
  type Grant,
  parseEnqueueReply,
  parseGrantReply,
  waitRequest,
} from "./protocol.ts";
import { watchHolding } from "./unreleased.ts";
import { checkWaitSeconds } from "./validate.ts";
import { secondsOnWire } from "./wire-wait.ts";

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;

/** One instance's acquisitions, one at a time. */
export class Operations {
  readonly #d: LockDriver;
  readonly #a: Attempts;
  /** Send time of the `e` that queued the current attempt: no grant can precede it. */
  #enqueuedAt = 0;
  /** A `wait()` is in flight. */
  #waiting = false;

  constructor(driver: LockDriver) {
    this.#d = driver;
    this.#a = new Attempts(driver);
  }

  /**
   * Acquire, blocking up to `acquireTimeoutS`. On a connection shared with
   * other holdings only a request that cannot block may go, so there it asks
   * with timeout 0 first; if the key is taken and the caller may wait, it
   * asks again, blocking, on a connection of its own.
   */
  acquire(options: AcquireOptions | undefined, owner: object): Promise<boolean> {
    try {
      checkCallOptions("acquire()", options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.acquireWithin(options?.signal, options?.timeoutS ?? this.#d.s.acquireTimeoutS, owner);
  }

  /**
   * Acquire, waiting at most `waitS` seconds on the server, counted from
   * this call: a redirect to a cluster leader asks it for the whole seconds
   * left, and gives up (`false`) when none are. `owner`: the
   * object the user keeps for the holding, watched once it is handed over
   * (none for withLock() and hold(): see unreleased.ts).
   */
  async acquireWithin(signal: AbortSignal | undefined, waitS: number, owner?: object): Promise<boolean> {
    const d = this.#d;
    const a = this.#a;
    const s = d.s;
    let how: How = "any";
    let to: Target | undefined;
    let redirects = 0;
    // One deadline per call, from its first request's send (read only on a redirect, no clock read otherwise):
    // a redirect asks the leader only for the whole seconds left of it.
    let deadline: number | undefined;
    let leftS = waitS;
    for (;;) {
      const started = a.start(signal, how, to);
      const epoch = typeof started === "number" ? started : await started;
      // A close() while it connected wins; checked in the same continuation that reads the link.
      d.current(epoch, "connecting");
      const link = d.link as Link;
      const shared = !link.exclusive;
      const t = shared ? 0 : leftS;
      const bytes = acquireRequest(s.kind, d.key, secondsOnWire(t, s.wire), s.leaseTtlS, s.limit);
      const timeoutMs = shared ? s.requestTimeoutMs : t * 1000 + BLOCKING_GRACE_MS;
      s.wire?.onSent?.();
      let grant: Grant | null | typeof RETRY;
      try {
        // ask() without a frame of its own: this one awaits the reply (attempt.ts).
        const q = a.send(epoch, bytes, "acquire", parseGrantReply, timeoutMs, signal);
        try {
          grant = a.answered(q, await q.reply);
        } catch (err) {
          grant = await a.failed(q, err);
        }
      } catch (err) {
        // A cluster follower: ask the leader it names, if it is one of the servers (leader.ts).
        const leader = leaderTarget(err, s.targets, redirects);
        // A try on a shared connection that a slow server left unanswered for requestTimeoutMs: a caller who
        // may wait asks the same server again, blocking, on a connection of its own, as an idle one would have
        // had it wait. (The try's late grant, if any, is released, or its connection closed, once it arrives;
        // a lock's blocking request is granted only after that.)
        const slow = leader === undefined && shared && waitS > 0 && err instanceof LockError && err.code === "TIMEOUT";
        if (leader === undefined && !slow) throw err;
        if (leader !== undefined) {
          redirects++;
          to = leader;
        }
        if (waitS > 0) {
          // A follower may answer only after blocking: nothing is held, and the call times out as a
          // `timeout` reply would once no whole second is left (a slow server's call, with its error).
          deadline ??= a.sentAt + waitS * 1000;
          leftS = Math.floor((deadline - performance.now()) / 1000);
          if (leftS <= 0 && slow) throw err;
          if (leftS <= 0) return false;
        }
        how = slow ? "own" : "any";
        continue;
      }
      if (grant === RETRY) {
        how = "fresh";
        continue;
      }
      if (grant === null) {
        // Answered `timeout`: nothing is held, and the connection is clean.
        d.endAttempt(epoch, "timedOut");
        if (shared && leftS > 0) {
          how = "own";
          continue;
        }
        return false;
      }
      d.pool.share(link, d.id);
      const confirming = this.#hold(epoch, grant, a.sentAt, a.sentAt, signal, owner);
      if (confirming !== undefined) await confirming;
      return true;
    }
  }

  /**
   * Hand a grant over, watch `owner` while it holds, and tell the `acquired`
   * hook: at once (`undefined`, the usual case, with no await), or once
   * renewals have confirmed a grant that came late (the promise).
   */
  #hold(
    epoch: number,
    grant: Grant,
    startBound: number,
    lastSend: number,
    signal: AbortSignal | undefined,
    owner: object | undefined,
  ): Promise<void> | undefined {
    const confirming = this.#d.hold(epoch, withTokenFence(grant, this.#d.s.fenceFromToken), startBound, lastSend);
    if (confirming === undefined) {
      if (owner !== undefined) watchHolding(this.#d, owner, "instance");
      this.acquiredHook();
      return undefined;
    }
    return this.#confirm(confirming, signal, owner);
  }

  /** Wait for a late grant's confirmation; the caller's signal may give it up meanwhile. */
  async #confirm(confirming: Promise<void>, signal: AbortSignal | undefined, owner: object | undefined): Promise<void> {
    const d = this.#d;
    const epoch = d.epoch;
    const onAbort = (): void => d.endAttempt(epoch, "abort", abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await confirming;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    d.handOver(epoch);
    if (owner !== undefined) watchHolding(d, owner, "instance");
    this.acquiredHook();
  }

  /** Two-phase acquisition, step 1 (on a connection of its own: a queue place ties it up). */
  async enqueue(options: AcquireOptions | undefined, owner: object): Promise<EnqueueStatus> {
    checkCallOptions("enqueue()", options);
    const limitS = options?.timeoutS;
    if (limitS === undefined || limitS === Number.POSITIVE_INFINITY) return this.#enqueue(options?.signal, owner);
    if (limitS === 0) {
      throw new InvalidArgumentError(
        "enqueue() never waits for the lock; its timeoutS bounds the call and must be at least 1",
      );
    }
    const timedOut = (): LockError =>
      new LockError(`enqueue() on ${quote(this.#d.key)} took longer than its timeoutS of ${limitS} s`, "TIMEOUT");
    const deadline = deadlineSignal(options?.signal, limitS * 1000, timedOut);
    try {
      return await this.#enqueue(deadline.signal, owner);
    } finally {
      deadline.dispose();
    }
  }

  async #enqueue(signal: AbortSignal | undefined, owner: object): Promise<EnqueueStatus> {
    const d = this.#d;
    const a = this.#a;
    const bytes = encodeEnqueue(d.s.kind, d.key, d.s.leaseTtlS, d.s.limit);
    let how: How = "own";
    let to: Target | undefined;
    let redirects = 0;
    for (;;) {
      const started = a.start(signal, how, to);
      const epoch = typeof started === "number" ? started : await started;
      // A close() while it connected wins; checked in the same continuation that reads the link.
      d.current(epoch, "connecting");
      const link = d.link as Link;
      let result: EnqueueResult | typeof RETRY;
      try {
        result = await a.ask(epoch, bytes, "enqueue", parseEnqueueReply, d.s.requestTimeoutMs, signal);
      } catch (err) {
        // A cluster follower: ask the leader it names, if it is one of the servers (leader.ts).
        to = leaderTarget(err, d.s.targets, redirects++);
        if (to === undefined) throw err;
        how = "own";
        continue;
      }
      if (result === RETRY) {
        how = "fresh";
        continue;
      }
      const sentAt = a.sentAt;
      if (result.status === "acquired") {
        d.pool.share(link, d.id);
        const confirming = this.#hold(epoch, result, sentAt, sentAt, signal, owner);
        if (confirming !== undefined) await confirming;
        return "acquired";
      }
      d.queued(epoch);
      this.#enqueuedAt = sentAt;
      this.waitingHook("queued");
      return "queued";
    }
  }

  /** Two-phase acquisition, step 2: */
  async wait(timeoutS: number | undefined, options: AcquireOptions | undefined, owner: object): Promise<boolean> {
    checkCallOptions("wait()", options);
    if (timeoutS !== undefined && options?.timeoutS !== undefined && timeoutS !== options.timeoutS) {
      throw new InvalidArgumentError(
        `wait(${timeoutS}, { timeoutS: ${options.timeoutS} }) gives two different timeouts; give one`,
      );
    }
    const d = this.#d;
    const t = checkWaitSeconds("wait() timeoutS", timeoutS ?? options?.timeoutS ?? d.s.acquireTimeoutS);
    const state = d.state;
    if (state === "held" || state === "renewing") return true;
    if (state !== "queued") {
      // A holding lost (a pause past its deadline, say), still for release() to report too;
      // or a queue place dropped with its connection.
      const failure = state === "lost" ? d.loss : state === "released" ? d.takeFailure() : undefined;
      if (failure !== undefined) throw failure;
      throw new LockError(
        state === "released" || state === "lost"
          ? `wait() on ${quote(d.key)} needs a successful enqueue() first`
          : `wait() on ${quote(d.key)} while ${state}`,
        state === "released" || state === "lost" ? "NOT_ENQUEUED" : "BUSY",
      );
    }
    if (this.#waiting) throw new LockError(`wait() on ${quote(d.key)} is already in progress`, "BUSY");
    const epoch = d.epoch;
    const bytes = waitRequest(d.s.kind, d.key, t);
    checkSignal(options?.signal);
    this.#waiting = true;
    let grant: Grant | null;
    try {
      const reply = await this.#a.ask(
        epoch,
        bytes,
        "wait",
        parseGrantReply,
        t * 1000 + BLOCKING_GRACE_MS,
        options?.signal,
      );
      grant = reply as Grant | null;
    } finally {
      this.#waiting = false;
    }
    if (grant === null) {
      d.endAttempt(epoch, "timedOut");
      return false;
    }
    // The grant can have happened any time after the `e` arrived.
    if (d.link !== undefined) d.pool.share(d.link, d.id);
    const confirming = this.#hold(epoch, grant, this.#enqueuedAt, this.#a.sentAt, options?.signal, owner);
    if (confirming !== undefined) await confirming;
    return true;
  }

  acquiredHook(): void {
    const d = this.#d;
    const hook = d.s.hooks?.acquired;
    const grant = d.grant;
    // A close() in the same tick as the hand-over leaves nothing to tell.
    if (hook !== undefined && grant !== undefined)
      fire("acquired", hook, () => heldEvent(d.key, serverOf(d.s, d.conn), grant));
  }

  waitingHook(reason: "queued" | "turn"): void {
    const hook = this.#d.s.hooks?.waiting;
    if (hook !== undefined) fire("waiting", hook, () => ({ ...this.lockEvent(), reason }));
  }

  /**
   * The key and the server of the current attempt or holding: its
   * connection's (a cluster leader an acquisition was sent on to), else the
   * sharding's pick. Read it before a release or close(): the connection is
   * gone afterwards.
   */
  lockEvent(): LockEvent {
    return { key: this.#d.key, server: serverOf(this.#d.s, this.#d.conn) };
  }
}
