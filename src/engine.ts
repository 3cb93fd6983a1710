/**
 * The machinery behind `DistributedLock` and `DistributedSemaphore`: the
 * operations (acquire, enqueue, wait, withLock, close) on top of
 * {@link Attempts} (attempt.ts: connections and requests) and
 * {@link Holding} (holding.ts: hand-over, release and loss). The public
 * classes in primitive.ts document the API and delegate here.
 *
 * @module
 */

import { Attempts, type How, RETRY } from "./attempt.ts";
import { checkSignal, deadlineSignal } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import { AcquireTimeoutError, InvalidArgumentError, LockError, quote } from "./errors.ts";
import type { LeaseState } from "./lease.ts";
import { type AcquireOptions, checkCallOptions, type EnqueueStatus, pickServer, type Settings } from "./options.ts";
import type { ConnectionPool, Link } from "./pool.ts";
import {
  acquireRequest,
  encodeEnqueue,
  encodeWait,
  type Grant,
  parseEnqueueReply,
  parseGrantReply,
} from "./protocol.ts";
import { hostPort } from "./transport.ts";
import { Turns } from "./turns.ts";
import { checkOptionSeconds } from "./validate.ts";

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;

const _now: () => number = () => performance.now();

/** One instance's attempts and holdings, one at a time. */
export class LockEngine extends Attempts {
  /** Turns among concurrent withLock() callers. */
  readonly #turns = new Turns();

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

  /** `host:port` of the server the key goes to, as the sharding strategy picks it. */
  get server(): string {
    const t = pickServer(this.s).open;
    return hostPort(t.host, t.port);
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
    return this.#acquire(options?.signal, options?.timeoutS ?? this.s.acquireTimeoutS);
  }

  async #acquire(signal: AbortSignal | undefined, waitS: number): Promise<boolean> {
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
      return true;
    }
  }

  /** Two-phase acquisition, step 1 (on a connection of its own: a queue place ties it up). */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    checkCallOptions("enqueue()", options);
    const limitS = options?.timeoutS;
    if (limitS === undefined) return this.#enqueue(options?.signal);
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
        return "acquired";
      }
      this.current(link.conn, epoch, "enqueue");
      this.enqueuedAt = sentAt;
      this.lease.to("queued");
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
    return true;
  }

  /** Acquire, run `fn`, release: */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    await this.#inTurn("withLock()", options);
    try {
      return await this.#run(fn);
    } finally {
      this.#turns.pass();
    }
  }

  /**
   * For a scoped holding (`hold()`): take a turn as withLock() does and
   * acquire; the turn is kept until {@link endScope}.
   * @returns The holding's epoch, for endScope().
   */
  async beginScope(options?: AcquireOptions): Promise<{ epoch: number; signal: AbortSignal }> {
    await this.#inTurn("hold()", options);
    try {
      return { epoch: this.epoch, signal: this.#heldSignal("hold()") };
    } catch (err) {
      this.#turns.pass();
      throw err;
    }
  }

  /** The signal of the holding just acquired; throws if it already ended (lost, or closed meanwhile). */
  #heldSignal(what: string): AbortSignal {
    const signal = this.signal;
    if (signal === undefined || !this.lease.holding) {
      throw this.lost ?? new LockError(`${quote(this.key)} was released or closed before ${what} could run`, "ABORTED");
    }
    return signal;
  }

  /** End the scoped holding `epoch`: release it if it is still this instance's, then pass the turn. */
  async endScope(epoch: number): Promise<void> {
    try {
      // Still held (or releasing): release it. Lost, and nothing started since (a loss ends the
      // epoch once): release() reports the loss. Anything else is a later holding, not this one.
      const state = this.lease.state;
      if (this.epoch === epoch || (state === "lost" && this.epoch === epoch + 1)) await this.release();
    } finally {
      this.#turns.pass();
    }
  }

  /**
   * Take this caller's turn among the instance's concurrent withLock()/hold()
   * callers (first come, first served), then acquire. Time spent waiting for
   * the turn counts against the timeout; the server waits in whole seconds.
   * On failure the turn is passed on and the error thrown.
   */
  async #inTurn(what: string, options: AcquireOptions | undefined): Promise<void> {
    checkCallOptions(what, options);
    const waitS = options?.timeoutS ?? this.s.acquireTimeoutS;
    const signal = options?.signal;
    const turn = this.#turns.take(signal, waitS * 1000, () => new AcquireTimeoutError(this.key, waitS));
    const startedAt = turn === undefined ? 0 : _now();
    if (turn !== undefined) await turn;
    try {
      const leftS = turn === undefined ? waitS : Math.max(0, Math.floor(waitS - (_now() - startedAt) / 1000));
      if (!(await this.#acquire(signal, leftS))) throw new AcquireTimeoutError(this.key, waitS);
    } catch (err) {
      this.#turns.pass();
      throw err;
    }
  }

  /** Run `fn` on the holding just acquired, then release. */
  async #run<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    const signal = this.#heldSignal("withLock()");
    let result: T;
    try {
      result = await fn(signal);
    } catch (err) {
      try {
        await this.release();
      } catch {
        // The callback's error is the one that matters.
      }
      throw err;
    }
    await this.release();
    return result;
  }

  /** Drop everything now: */
  close(): void {
    this.lost = undefined;
    this.dropped = undefined;
    const reason = new LockError(`${quote(this.key)} was closed`, "ABORTED");
    this.#turns.rejectAll(reason);
    this.attempt?.abort(reason);
    this.end(this.epoch, reason);
  }
}
