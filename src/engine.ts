/**
 * The machinery behind `DistributedLock` and `DistributedSemaphore`: the I/O
 * of an attempt (connect, ask, collect a grant) on top of {@link Holding},
 * which owns a holding's hand-over, release and loss. The public classes in
 * primitive.ts document the API and delegate here.
 *
 * @module
 */
import { abortError, checkSignal } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import { AcquireTimeoutError, ConnectionError, InvalidArgumentError, LockError, quote, ServerError } from "./errors.ts";
import { Holding } from "./holding.ts";
import type { LeaseState } from "./lease.ts";
import { openConnection } from "./open.ts";
import { type AcquireOptions, type EnqueueStatus, pickServer, type Settings, type Target } from "./options.ts";
import type { ConnectionPool, Link } from "./pool.ts";
import {
  commandName,
  encodeAcquire,
  encodeEnqueue,
  encodeWait,
  type Grant,
  parseEnqueueReply,
  parseGrantReply,
} from "./protocol.ts";
import { checkTimeout } from "./validate.ts";

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;

const now: () => number = () => performance.now();

/** One instance's attempts and holdings, one at a time. */
export class LockEngine extends Holding {
  /** `conn` came from the pool and has not yet answered this attempt: a failure before any reply may be retried. */
  #reused = false;
  /** The send time of the request the last {@link ask} answered. */
  #sentAt = 0;

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

  /**
   * Acquire, blocking up to `acquireTimeoutS`. On a connection shared with
   * other holdings only a request that cannot block may go, so there it asks
   * with timeout 0 first; if the key is taken and the caller may wait, it
   * asks again, blocking, on a connection of its own.
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const s = this.s;
    const signal = options?.signal;
    let how: How = "any";
    for (;;) {
      const epoch = await this.start(signal, how);
      const link = this.link as Link;
      const shared = !link.exclusive;
      const t = shared ? 0 : s.acquireTimeoutS;
      const bytes = encodeAcquire(s.kind, this.key, t, s.leaseTtlS, s.limit);
      const timeoutMs = shared ? s.requestTimeoutMs : t * 1000 + BLOCKING_GRACE_MS;
      const grant = await this.ask(epoch, bytes, "acquire", parseGrantReply, timeoutMs, signal);
      if (grant === RETRY) {
        how = "fresh";
        continue;
      }
      if (grant === null) {
        // Answered `timeout`: nothing is held, and the connection is clean.
        this.end(epoch, undefined, "clean");
        if (shared && s.acquireTimeoutS > 0) {
          how = "own";
          continue;
        }
        return false;
      }
      this.pool.share(link);
      await this.hold(link.conn, epoch, grant, this.#sentAt, this.#sentAt, signal);
      return true;
    }
  }

  /** Two-phase acquisition, step 1 (on a connection of its own: a queue place ties it up). */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.s.kind, this.key, this.s.leaseTtlS, this.s.limit);
    const signal = options?.signal;
    let how: How = "own";
    for (;;) {
      const epoch = await this.start(signal, how);
      const link = this.link as Link;
      const result = await this.ask(epoch, bytes, "enqueue", parseEnqueueReply, this.s.requestTimeoutMs, signal);
      if (result === RETRY) {
        how = "fresh";
        continue;
      }
      const sentAt = this.#sentAt;
      if (result.status === "acquired") {
        this.pool.share(link);
        await this.hold(link.conn, epoch, result, sentAt, sentAt, signal);
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
    const t = checkTimeout("timeout", timeoutS ?? this.s.acquireTimeoutS);
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
    if (this.link !== undefined) this.pool.share(this.link);
    await this.hold(conn, epoch, grant, this.enqueuedAt, this.#sentAt, options?.signal);
    return true;
  }

  /** Acquire, run `fn`, release: */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    if (!(await this.acquire())) throw new AcquireTimeoutError(this.key, this.s.acquireTimeoutS);
    const signal = this.signal;
    if (signal === undefined || !this.lease.holding) {
      throw (
        this.lost ?? new LockError(`${quote(this.key)} was released or closed before withLock() could run`, "ABORTED")
      );
    }
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
    this.attempt?.abort(reason);
    this.end(this.epoch, reason);
  }

  // ------------------------------------------------------------ internals

  /**
   * Check state, pick a server, and get a connection as `how` says. Leaves
   * the state `connecting` and `this.link` set; returns the attempt's epoch.
   */
  private async start(signal: AbortSignal | undefined, how: How): Promise<number> {
    const state = this.lease.state;
    if (state !== "released" && state !== "lost") {
      throw new LockError(`${quote(this.key)} is already ${state} on this instance; release() it first`, "BUSY");
    }
    checkSignal(signal);
    const target = pickServer(this.s);
    const lent = how === "fresh" ? undefined : this.pool.lend(target.poolKey, this.id, this, how === "any");
    this.lost = undefined;
    this.dropped = undefined;
    this.lease.to("connecting");
    const epoch = ++this.epoch;
    this.pool.enter(this);
    this.#reused = lent !== undefined;
    if (lent !== undefined) {
      this.link = lent;
      this.conn = lent.conn;
      return epoch;
    }
    const conn = await this.dial(target, epoch, signal);
    this.link = this.pool.attach(conn, target.poolKey, this.id, this);
    this.conn = conn;
    return epoch;
  }

  /** Open a new connection to `target` for attempt `epoch`: cancelled by close() or `signal`. */
  private async dial(target: Target, epoch: number, signal: AbortSignal | undefined): Promise<Connection> {
    const attempt = new AbortController();
    this.attempt = attempt;
    let conn: Connection;
    const connectStart = now();
    // close() aborts `attempt`; the caller's signal is raced (and closes the connection) the same way.
    const onAbort = (): void => attempt.abort(abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      conn = await openConnection(target.open, attempt.signal);
    } catch (err) {
      if (this.epoch === epoch) this.end(epoch);
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (this.attempt === attempt) this.attempt = undefined;
    }
    if (this.epoch !== epoch) {
      conn.close();
      throw new LockError(`${quote(this.key)} was closed while connecting`, "ABORTED");
    }
    this.lease.sampleRtt(now() - connectStart);
    return conn;
  }

  /**
   * Send a request for the current attempt; returns its reply, and leaves its
   * send time in `#sentAt`. On failure the attempt ends, and the error is
   * thrown, except once: a connection from the pool that the server closed
   * (or reset) before any reply to this first request. The server has then
   * either never read the request, or dropped whatever it did for it along
   * with the connection (dflockd releases a closed connection's holdings and
   * queue places; a server started with --auto-release-on-disconnect=false
   * keeps a holding until its lease ends, which delays the retry but never
   * lets two hold). And a grant only counts once its reply arrives. Then
   * {@link RETRY} is returned, for the caller to ask again on a new connection.
   */
  private async ask<T>(
    epoch: number,
    bytes: Uint8Array,
    op: "acquire" | "enqueue" | "wait",
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T | typeof RETRY> {
    const command = commandName(this.s.kind, op);
    const link = this.link as Link;
    const conn = link.conn;
    const reused = this.#reused;
    this.#reused = false;
    const shared = !link.exclusive;
    // On a connection of its own, aborting closes it; on a shared one, see sharedRequest().
    const onAbort = signal === undefined || shared ? undefined : (): void => conn.close(abortError(signal));
    if (onAbort !== undefined) signal?.addEventListener("abort", onAbort, { once: true });
    try {
      checkSignal(signal);
      const sentAt = now();
      const value = await (shared
        ? this.sharedRequest(link, epoch, bytes, command, parse, timeoutMs, signal)
        : conn.request(bytes, command, parse, timeoutMs));
      // The connection may have closed (or close() been called) in the same tick the reply arrived.
      if (this.epoch !== epoch || conn.closed) {
        throw conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
      }
      this.#sentAt = sentAt;
      return value;
    } catch (err) {
      // This call reports the failure; do not report it again from a later wait().
      this.dropped = undefined;
      const retry = reused && this.epoch === epoch && signal?.aborted !== true && staleConnection(err);
      if (this.epoch === epoch) this.end(epoch, undefined, err instanceof ServerError ? "clean" : "drop");
      if (retry) return RETRY;
      throw err;
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A request that cannot block, on a connection shared with other holdings,
   * which must not be closed to cancel it. close() or `signal` reject the
   * caller at once; the reply is still awaited, and a grant it brings for an
   * attempt given up is released. The connection is left only then.
   */
  private sharedRequest<T>(
    link: Link,
    epoch: number,
    bytes: Uint8Array,
    command: string,
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    this.trying = true;
    const reply = link.conn.request(bytes, command, parse, timeoutMs);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.epoch === epoch) this.end(epoch, abortError(signal));
        reject(abortError(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.cancelTry = (reason) => reject(reason);
      reply.then(
        (value) => {
          signal?.removeEventListener("abort", onAbort);
          this.cancelTry = undefined;
          this.trying = false;
          if (this.epoch === epoch) {
            resolve(value);
            return;
          }
          // Given up meanwhile: hand back a grant, then leave.
          const token = (value as { token?: unknown } | null)?.token;
          this.leaveLink(link, undefined, "drop", typeof token === "string" ? token : undefined);
        },
        (err: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          this.cancelTry = undefined;
          this.trying = false;
          if (this.epoch !== epoch) this.leaveLink(link, undefined, "broken", undefined);
          reject(err);
        },
      );
    });
  }
}

/** How {@link LockEngine.start} gets a connection: `any` (an idle or a shared one), `own` (idle or new), `fresh` (new). */
type How = "any" | "own" | "fresh";

/** What {@link LockEngine.ask} returns when the request should be sent again on a new connection. */
const RETRY: unique symbol = Symbol("retry");

/** A request failed because the server closed or reset the connection (not a timeout, not the client). */
function staleConnection(err: unknown): boolean {
  return err instanceof ConnectionError && err.code === "CONNECTION";
}
