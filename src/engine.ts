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
import { AcquireTimeoutError, InvalidArgumentError, LockError, quote } from "./errors.ts";
import { Holding } from "./holding.ts";
import type { LeaseState } from "./lease.ts";
import { openConnection } from "./open.ts";
import { type AcquireOptions, type EnqueueStatus, pickServer, type Settings } from "./options.ts";
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
  constructor(settings: Settings) {
    super(settings);
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

  /** An `AbortSignal` that aborts when the current holding is lost, released or closed; `undefined`... */
  get signal(): AbortSignal | undefined {
    return this.abort?.signal;
  }

  /** Acquire, blocking up to `acquireTimeoutS`. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const bytes = encodeAcquire(this.s.kind, this.key, this.s.acquireTimeoutS, this.s.leaseTtlS, this.s.limit);
    const [conn, epoch] = await this.start(options?.signal);
    const sentAt = now();
    const timeoutMs = this.s.acquireTimeoutS * 1000 + BLOCKING_GRACE_MS;
    const grant = await this.ask(conn, epoch, bytes, "acquire", parseGrantReply, timeoutMs, options?.signal);
    if (grant === null) {
      this.end(epoch);
      return false;
    }
    await this.hold(conn, epoch, grant, sentAt, sentAt, options?.signal);
    return true;
  }

  /** Two-phase acquisition, step 1: */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.s.kind, this.key, this.s.leaseTtlS, this.s.limit);
    const [conn, epoch] = await this.start(options?.signal);
    const sentAt = now();
    const result = await this.ask(
      conn,
      epoch,
      bytes,
      "enqueue",
      parseEnqueueReply,
      this.s.requestTimeoutMs,
      options?.signal,
    );
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
    const sentAt = now();
    this.waiting = true;
    let grant: Grant | null;
    try {
      grant = await this.ask(
        conn,
        epoch,
        bytes,
        "wait",
        parseGrantReply,
        t * 1000 + BLOCKING_GRACE_MS,
        options?.signal,
      );
    } finally {
      this.waiting = false;
    }
    if (grant === null) {
      this.end(epoch);
      return false;
    }
    // The grant can have happened any time after the `e` arrived.
    await this.hold(conn, epoch, grant, this.enqueuedAt, sentAt, options?.signal);
    return true;
  }

  /** Acquire, run `fn`, release: */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    if (!(await this.acquire())) throw new AcquireTimeoutError(this.key, this.s.acquireTimeoutS);
    const abort = this.abort;
    if (abort === undefined || !this.lease.holding) {
      throw (
        this.lost ?? new LockError(`${quote(this.key)} was released or closed before withLock() could run`, "ABORTED")
      );
    }
    const signal = abort.signal;
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

  /** Check state, pick a server, connect. Leaves the state `connecting`; returns the attempt's epoch. */
  private async start(signal: AbortSignal | undefined): Promise<[Connection, number]> {
    const state = this.lease.state;
    if (state !== "released" && state !== "lost") {
      throw new LockError(`${quote(this.key)} is already ${state} on this instance; release() it first`, "BUSY");
    }
    checkSignal(signal);
    const [host, port] = pickServer(this.s);
    this.lost = undefined;
    this.dropped = undefined;
    this.lease.to("connecting");
    const epoch = ++this.epoch;
    const attempt = new AbortController();
    this.attempt = attempt;
    const s = this.s;
    let conn: Connection;
    const connectStart = now();
    try {
      const settings = { host, port, connectTimeoutMs: s.connectTimeoutMs, tls: s.tls, auth: s.auth };
      // close() aborts `attempt`; the caller's signal is raced (and closes the connection) the same way.
      const onAbort = (): void => attempt.abort(abortError(signal));
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        conn = await openConnection(settings, attempt.signal);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    } catch (err) {
      if (this.epoch === epoch) this.end(epoch);
      throw err;
    } finally {
      if (this.attempt === attempt) this.attempt = undefined;
    }
    if (this.epoch !== epoch) {
      conn.close();
      throw new LockError(`${quote(this.key)} was closed while connecting`, "ABORTED");
    }
    this.conn = conn;
    this.lease.sampleRtt(now() - connectStart);
    conn.onClose((info) => {
      if (this.conn !== conn || info.byClient) return;
      if (this.lease.holding) {
        const timedOut = info.error.code === "TIMEOUT";
        this.lose(timedOut ? info.error.message : "the connection to the server was lost", info.error);
      } else if (this.lease.state === "queued") {
        this.dropped = info.error;
        this.end(this.epoch);
      }
    });
    return [conn, epoch];
  }

  /** Send a request for the current attempt; on any failure, end the attempt. */
  private async ask<T>(
    conn: Connection,
    epoch: number,
    bytes: Uint8Array,
    op: "acquire" | "enqueue" | "wait",
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const command = commandName(this.s.kind, op);
    const onAbort = (): void => conn.close(abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      checkSignal(signal);
      const value = await conn.request(bytes, command, (line) => parse(line, command), timeoutMs);
      // The connection may have closed (or close() been called) in the same tick the reply arrived.
      if (this.epoch !== epoch || conn.closed) {
        throw conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
      }
      return value;
    } catch (err) {
      // This call reports the failure; do not report it again from a later wait().
      this.dropped = undefined;
      if (this.epoch === epoch) this.end(epoch);
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
