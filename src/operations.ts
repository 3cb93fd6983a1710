/**
 * The operations of one instance, one at a time: acquire, enqueue and wait,
 * on top of {@link Attempts} (attempt.ts: connections and requests) and
 * {@link Holding} (holding.ts: hand-over, release and loss), and the hooks
 * they tell. engine.ts adds what concurrent callers share (turns, scopes).
 *
 * @module
 */

import { Attempts, type How, RETRY } from "./attempt.ts";
import { checkSignal, deadlineSignal } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import { InvalidArgumentError, LockError, quote } from "./errors.ts";
import { fire, heldEvent, type LockEvent } from "./hooks.ts";
import type { LeaseState } from "./lease.ts";
import { type AcquireOptions, checkCallOptions, type EnqueueStatus, type Settings, serverOf } from "./options.ts";
import type { ConnectionPool, Link } from "./pool.ts";
import {
  acquireRequest,
  encodeEnqueue,
  encodeWait,
  type Grant,
  parseEnqueueReply,
  parseGrantReply,
} from "./protocol.ts";
import { checkOptionSeconds } from "./validate.ts";

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;

/** One instance's acquisitions and holdings, one at a time. */
export abstract class Operations extends Attempts {
  constructor(settings: Settings, pool: ConnectionPool) {
    super(settings, pool);
  }

  /** Where this instance is in its life; see {@link LeaseState}. */
  get state(): LeaseState {
    return this.lease.state;
  }

  /** `true` while the lock (or slot) is held. */
  get held(): boolean {
    return this.lease.holding;
  }

  /** The server's token for the current holding, or `undefined` when not held. */
  get token(): string | undefined {
    return this.lease.grant?.token;
  }

  /** The fencing token, when held and the server sends one; else `undefined`. */
  get fence(): string | undefined {
    return this.lease.grant?.fence;
  }

  /** The lease TTL (seconds) the server applied to the current holding, or `undefined`. */
  get leaseTtl(): number | undefined {
    return this.lease.grant?.lease;
  }

  /** `host:port` of the server the key goes to. */
  get server(): string {
    return serverOf(this.s);
  }

  /**
   * Acquire, blocking up to `acquireTimeoutS`. On a connection shared with
   * other holdings only a request that cannot block may go, so there it asks
   * with timeout 0 first; if the key is taken and the caller may wait, it
   * asks again, blocking, on a connection of its own.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    try {
      checkCallOptions("acquire()", options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.acquireWithin(options?.signal, options?.timeoutS ?? this.s.acquireTimeoutS);
  }

  /** Acquire, waiting at most `waitS` seconds on the server. */
  protected async acquireWithin(signal: AbortSignal | undefined, waitS: number): Promise<boolean> {
    const s = this.s;
    let how: How = "any";
    for (;;) {
      const started = this.start(signal, how);
      const epoch = typeof started === "number" ? started : await started;
      const link = this.link as Link;
      const shared = !link.exclusive;
      const t = shared ? 0 : waitS;
      const bytes = acquireRequest(s.kind, this.key, t, s.leaseTtlS, s.limit);
      const timeoutMs = shared ? s.requestTimeoutMs : t * 1000 + BLOCKING_GRACE_MS;
      const grant = await this.ask(epoch, bytes, "acquire", parseGrantReply, timeoutMs, signal);
      if (grant === RETRY) {
        how = "fresh";
        continue;
      }
      if (grant === null) {
        // Answered `timeout`: nothing is held, and the connection is clean.
        this.end(epoch, undefined, "clean");
        if (shared && waitS > 0) {
          how = "own";
          continue;
        }
        return false;
      }
      this.pool.share(link, this.id);
      const confirming = this.hold(link.conn, epoch, grant, this.sentAt, this.sentAt, signal);
      if (confirming !== undefined) await confirming;
      this.acquiredHook();
      return true;
    }
  }

  /** Two-phase acquisition, step 1 (on a connection of its own: a queue place ties it up). */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    checkCallOptions("enqueue()", options);
    const limitS = options?.timeoutS;
    if (limitS === undefined) return this.#enqueue(options?.signal);
    if (limitS === 0) {
      throw new InvalidArgumentError(
        "enqueue() never waits for the lock; its timeoutS bounds the call and must be at least 1",
      );
    }
    const timedOut = (): LockError =>
      new LockError(`enqueue() on ${quote(this.key)} took longer than its timeoutS of ${limitS} s`, "TIMEOUT");
    const deadline = deadlineSignal(options?.signal, limitS * 1000, timedOut);
    try {
      return await this.#enqueue(deadline.signal);
    } finally {
      deadline.dispose();
    }
  }

  async #enqueue(signal: AbortSignal | undefined): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.s.kind, this.key, this.s.leaseTtlS, this.s.limit);
    let how: How = "own";
    for (;;) {
      const started = this.start(signal, how);
      const epoch = typeof started === "number" ? started : await started;
      const link = this.link as Link;
      const result = await this.ask(epoch, bytes, "enqueue", parseEnqueueReply, this.s.requestTimeoutMs, signal);
      if (result === RETRY) {
        how = "fresh";
        continue;
      }
      const sentAt = this.sentAt;
      if (result.status === "acquired") {
        this.pool.share(link, this.id);
        const confirming = this.hold(link.conn, epoch, result, sentAt, sentAt, signal);
        if (confirming !== undefined) await confirming;
        this.acquiredHook();
        return "acquired";
      }
      this.current(link.conn, epoch, "enqueue");
      this.enqueuedAt = sentAt;
      this.lease.to("queued");
      this.waitingHook("queued");
      return "queued";
    }
  }

  /** Two-phase acquisition, step 2: */
  async wait(timeoutS?: number, options?: AcquireOptions): Promise<boolean> {
    checkCallOptions("wait()", options);
    if (timeoutS !== undefined && options?.timeoutS !== undefined && timeoutS !== options.timeoutS) {
      throw new InvalidArgumentError(
        `wait(${timeoutS}, { timeoutS: ${options.timeoutS} }) gives two different timeouts; give one`,
      );
    }
    const t = checkOptionSeconds("wait() timeoutS", timeoutS ?? options?.timeoutS ?? this.s.acquireTimeoutS, 0);
    const state = this.lease.state;
    if (state === "held" || state === "renewing") return true;
    if (state !== "queued") {
      const dropped = this.dropped;
      this.dropped = undefined;
      if (dropped !== undefined && state === "released") throw dropped;
      throw new LockError(
        state === "released" || state === "lost"
          ? `wait() on ${quote(this.key)} needs a successful enqueue() first`
          : `wait() on ${quote(this.key)} while ${state}`,
        state === "released" || state === "lost" ? "NOT_ENQUEUED" : "BUSY",
      );
    }
    if (this.waiting) throw new LockError(`wait() on ${quote(this.key)} is already in progress`, "BUSY");
    const conn = this.conn as Connection;
    const epoch = this.epoch;
    const bytes = encodeWait(this.s.kind, this.key, t);
    checkSignal(options?.signal);
    this.waiting = true;
    let grant: Grant | null;
    try {
      const reply = await this.ask(
        epoch,
        bytes,
        "wait",
        parseGrantReply,
        t * 1000 + BLOCKING_GRACE_MS,
        options?.signal,
      );
      grant = reply as Grant | null;
    } finally {
      this.waiting = false;
    }
    if (grant === null) {
      this.end(epoch);
      return false;
    }
    // The grant can have happened any time after the `e` arrived.
    if (this.link !== undefined) this.pool.share(this.link, this.id);
    const confirming = this.hold(conn, epoch, grant, this.enqueuedAt, this.sentAt, options?.signal);
    if (confirming !== undefined) await confirming;
    this.acquiredHook();
    return true;
  }

  protected acquiredHook(): void {
    const hook = this.s.hooks?.acquired;
    const grant = this.lease.grant;
    // A close() in the same tick as the hand-over leaves nothing to tell.
    if (hook !== undefined && grant !== undefined)
      fire("acquired", hook, () => heldEvent(this.key, serverOf(this.s), grant));
  }

  protected waitingHook(reason: "queued" | "turn"): void {
    const hook = this.s.hooks?.waiting;
    if (hook !== undefined) fire("waiting", hook, () => ({ ...this.lockEvent(), reason }));
  }

  protected lockEvent(): LockEvent {
    return { key: this.key, server: serverOf(this.s) };
  }
}
