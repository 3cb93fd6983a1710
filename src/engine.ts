/**
 * The machinery behind `DistributedLock` and `DistributedSemaphore`: the I/O
 * of an attempt (connect, ask, collect a grant) on top of {@link Holding},
 * which owns a holding's hand-over, release and loss. The public classes in
 * primitive.ts document the API and delegate here.
 *
 * @module
 */
import { abortError, checkSignal } from "./cancel.ts";
import type { CloseInfo, Connection } from "./connection.ts";
import { AcquireTimeoutError, ConnectionError, InvalidArgumentError, LockError, quote } from "./errors.ts";
import { Holding } from "./holding.ts";
import type { LeaseState } from "./lease.ts";
import { openConnection } from "./open.ts";
import { type AcquireOptions, type EnqueueStatus, pickServer, type Settings, type Target } from "./options.ts";
import type { ConnectionPool } from "./pool.ts";
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
  /** The `l` request, the same for every attempt of this instance: encoded once. */
  #acquireBytes: Uint8Array | undefined;
  /** `conn` came from the pool and has not yet answered this attempt: a failure before any reply may be retried. */
  #reused = false;
  /** The send time of the request the last {@link ask} answered, and the connection it went on. */
  #sentAt = 0;
  #asked: Connection | undefined;

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

  /** Acquire, blocking up to `acquireTimeoutS`. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const s = this.s;
    this.#acquireBytes ??= encodeAcquire(s.kind, this.key, s.acquireTimeoutS, s.leaseTtlS, s.limit);
    const bytes = this.#acquireBytes;
    const signal = options?.signal;
    const epoch = await this.start(signal);
    const timeoutMs = s.acquireTimeoutS * 1000 + BLOCKING_GRACE_MS;
    const grant = await this.ask(epoch, bytes, "acquire", parseGrantReply, timeoutMs, signal);
    const sentAt = this.#sentAt;
    if (grant === null) {
      // Answered `timeout`: nothing is held, and the connection is clean.
      this.end(epoch, undefined, true);
      return false;
    }
    await this.hold(this.#asked as Connection, epoch, grant, sentAt, sentAt, signal);
    return true;
  }

  /** Two-phase acquisition, step 1: */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.s.kind, this.key, this.s.leaseTtlS, this.s.limit);
    const epoch = await this.start(options?.signal);
    const result = await this.ask(epoch, bytes, "enqueue", parseEnqueueReply, this.s.requestTimeoutMs, options?.signal);
    const conn = this.#asked as Connection;
    const sentAt = this.#sentAt;
    if (result.status === "acquired") {
      await this.hold(conn, epoch, result, sentAt, sentAt, options?.signal);
      return "acquired";
    }
    this.current(conn, epoch, "enqueue");
    this.enqueuedAt = sentAt;
    this.lease.to("queued");
    return "queued";
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
      grant = await this.ask(epoch, bytes, "wait", parseGrantReply, t * 1000 + BLOCKING_GRACE_MS, options?.signal);
    } finally {
      this.waiting = false;
    }
    if (grant === null) {
      this.end(epoch);
      return false;
    }
    // The grant can have happened any time after the `e` arrived.
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
   * Check state, pick a server, take a pooled connection or open one. Leaves
   * the state `connecting` and `this.conn` set; returns the attempt's epoch.
   */
  private async start(signal: AbortSignal | undefined): Promise<number> {
    const state = this.lease.state;
    if (state !== "released" && state !== "lost") {
      throw new LockError(`${quote(this.key)} is already ${state} on this instance; release() it first`, "BUSY");
    }
    checkSignal(signal);
    const target = pickServer(this.s);
    const pooled = this.pool.take(target.poolKey);
    this.lost = undefined;
    this.dropped = undefined;
    this.lease.to("connecting");
    const epoch = ++this.epoch;
    this.pool.enter(this);
    const conn = pooled ?? (await this.dial(target, epoch, signal));
    this.#adopt(conn, target, pooled !== undefined);
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

  #adopt(conn: Connection, target: Target, reused: boolean): void {
    this.conn = conn;
    this.poolKey = target.poolKey;
    this.#reused = reused;
    conn.bindOwner(this.#onClosed);
  }

  /** The server (or the network) closed the connection this instance uses. */
  readonly #onClosed = (info: CloseInfo): void => {
    if (info.byClient || this.conn === undefined || this.conn.closeError !== info.error) return;
    if (this.lease.holding) {
      const timedOut = info.error.code === "TIMEOUT";
      this.lose(timedOut ? info.error.message : "the connection to the server was lost", info.error);
    } else if (this.lease.state === "queued") {
      this.dropped = info.error;
      this.end(this.epoch);
    }
  };

  /**
   * Send a request for the current attempt; returns its reply, and leaves its
   * send time and connection in `#sentAt` and `#asked`.
   * On failure the attempt ends, except once: a connection taken from the
   * pool that the server closed (or reset) before any reply to this first
   * request. The server has then either never read the request, or dropped
   * whatever it did for it along with the connection (dflockd releases a
   * closed connection's holdings and queue places; a server started with
   * --auto-release-on-disconnect=false keeps a holding until its lease ends,
   * which delays the retry but never lets two hold). And a grant only counts
   * once its reply arrives. So the request is sent again on a new
   * connection, and nothing can hold on behalf of the first.
   */
  private async ask<T>(
    epoch: number,
    bytes: Uint8Array,
    op: "acquire" | "enqueue" | "wait",
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const command = commandName(this.s.kind, op);
    for (;;) {
      const conn = this.conn as Connection;
      const onAbort = signal === undefined ? undefined : (): void => conn.close(abortError(signal));
      if (onAbort !== undefined) signal?.addEventListener("abort", onAbort, { once: true });
      const retry = this.#reused;
      this.#reused = false;
      try {
        checkSignal(signal);
        const sentAt = now();
        const value = await conn.request(bytes, command, parse, timeoutMs);
        // The connection may have closed (or close() been called) in the same tick the reply arrived.
        if (this.epoch !== epoch || conn.closed) {
          throw conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
        }
        this.#sentAt = sentAt;
        this.#asked = conn;
        return value;
      } catch (err) {
        if (retry && this.epoch === epoch && signal?.aborted !== true && staleConnection(err)) {
          this.conn = undefined;
          const target = pickServer(this.s);
          this.#adopt(await this.dial(target, epoch, signal), target, false);
          continue;
        }
        // This call reports the failure; do not report it again from a later wait().
        this.dropped = undefined;
        if (this.epoch === epoch) this.end(epoch);
        throw err;
      } finally {
        if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      }
    }
  }
}

/** A request failed because the server closed or reset the connection (not a timeout, not the client). */
function staleConnection(err: unknown): boolean {
  return err instanceof ConnectionError && err.code === "CONNECTION";
}
