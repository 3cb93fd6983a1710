/**
 * The machinery behind `DistributedLock` and `DistributedSemaphore`: the I/O
 * of an attempt (connect, ask, hand over a grant) and of giving a holding up
 * (release, loss, close), driving the {@link LeaseTracker} that makes the
 * decisions and a {@link Keeper} that renews. The public classes in
 * primitive.ts document the API and delegate here.
 *
 * @module
 */
import { abortError, checkSignal } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import { AcquireTimeoutError, InvalidArgumentError, LockError, LockLostError, quote, ServerError } from "./errors.ts";
import { Keeper, type KeeperOwner } from "./keeper.ts";
import { type LeaseState, LeaseTracker } from "./lease.ts";
import { openConnection } from "./open.ts";
import { type AcquireOptions, callOnLost, type EnqueueStatus, pickServer, type Settings } from "./options.ts";
import {
  commandName,
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeWait,
  type Grant,
  parseEnqueueReply,
  parseGrantReply,
  parseOkReply,
} from "./protocol.ts";
import { checkTimeout } from "./validate.ts";

/** Renewals tried to confirm a late grant before giving it up. */
const MAX_CONFIRMATIONS = 3;

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;

const now: () => number = () => performance.now();

/** One instance's attempts and holdings, one at a time. */
export class LockEngine {
  readonly key: string;
  readonly #s: Settings;
  readonly #lease = new LeaseTracker();
  #conn: Connection | undefined;
  /** Bumped by close() and whenever an attempt or holding ends, so stale callbacks can tell. */
  #epoch = 0;
  /** Aborted by close(): cancels a connect, TLS handshake or auth in progress. */
  #attempt: AbortController | undefined;
  #keeper: Keeper | undefined;
  #releasing: Promise<void> | undefined;
  #lost: LockLostError | undefined;
  #dropped: LockError | undefined;
  #abort: AbortController | undefined;
  /** Send time of the `e` that queued the current attempt: no grant can precede it. */
  #enqueuedAt = 0;
  /** A fresh grant is being confirmed and has not been handed over yet. */
  #confirming = false;
  /** A `wait()` is in flight. */
  #waiting = false;

  constructor(settings: Settings) {
    this.#s = settings;
    this.key = settings.key;
  }

  /** Where this instance is in its life; see {@link LeaseState}. */
  get state(): LeaseState {
    return this.#lease.state;
  }

  /** `true` while the lock (or slot) is held. */
  get held(): boolean {
    return this.#lease.holding;
  }

  /** The server's token for the current holding, or `undefined` when not held. */
  get token(): string | undefined {
    return this.#lease.grant?.token;
  }

  /** The fencing token, when held and the server sends one; else `undefined`. */
  get fence(): string | undefined {
    return this.#lease.grant?.fence;
  }

  /** The lease TTL (seconds) the server applied to the current holding, or `undefined`. */
  get leaseTtl(): number | undefined {
    return this.#lease.grant?.lease;
  }

  /** An `AbortSignal` that aborts when the current holding is lost, released or closed; `undefined`... */
  get signal(): AbortSignal | undefined {
    return this.#abort?.signal;
  }

  /** Acquire, blocking up to `acquireTimeoutS`. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const bytes = encodeAcquire(this.#s.kind, this.key, this.#s.acquireTimeoutS, this.#s.leaseTtlS, this.#s.limit);
    const [conn, epoch] = await this.#start(options?.signal);
    const sentAt = now();
    const timeoutMs = this.#s.acquireTimeoutS * 1000 + BLOCKING_GRACE_MS;
    const grant = await this.#ask(conn, epoch, bytes, "acquire", parseGrantReply, timeoutMs, options?.signal);
    if (grant === null) {
      this.#end(epoch);
      return false;
    }
    await this.#hold(conn, epoch, grant, sentAt, sentAt, options?.signal);
    return true;
  }

  /** Two-phase acquisition, step 1: */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.#s.kind, this.key, this.#s.leaseTtlS, this.#s.limit);
    const [conn, epoch] = await this.#start(options?.signal);
    const sentAt = now();
    const result = await this.#ask(
      conn,
      epoch,
      bytes,
      "enqueue",
      parseEnqueueReply,
      this.#s.requestTimeoutMs,
      options?.signal,
    );
    if (result.status === "acquired") {
      await this.#hold(conn, epoch, result, sentAt, sentAt, options?.signal);
      return "acquired";
    }
    this.#current(conn, epoch, "enqueue");
    this.#enqueuedAt = sentAt;
    this.#lease.to("queued");
    return "queued";
  }

  /** Two-phase acquisition, step 2: */
  async wait(timeoutS?: number, options?: AcquireOptions): Promise<boolean> {
    const t = checkTimeout("timeout", timeoutS ?? this.#s.acquireTimeoutS);
    const state = this.#lease.state;
    if (state === "held" || state === "renewing") return true;
    if (state !== "queued") {
      const dropped = this.#dropped;
      this.#dropped = undefined;
      if (dropped !== undefined && state === "released") throw dropped;
      throw new LockError(
        state === "released" || state === "lost"
          ? `wait() on ${quote(this.key)} needs a successful enqueue() first`
          : `wait() on ${quote(this.key)} while ${state}`,
        state === "released" || state === "lost" ? "NOT_ENQUEUED" : "BUSY",
      );
    }
    if (this.#waiting) throw new LockError(`wait() on ${quote(this.key)} is already in progress`, "BUSY");
    const conn = this.#conn as Connection;
    const epoch = this.#epoch;
    const bytes = encodeWait(this.#s.kind, this.key, t);
    checkSignal(options?.signal);
    const sentAt = now();
    this.#waiting = true;
    let grant: Grant | null;
    try {
      grant = await this.#ask(
        conn,
        epoch,
        bytes,
        "wait",
        parseGrantReply,
        t * 1000 + BLOCKING_GRACE_MS,
        options?.signal,
      );
    } finally {
      this.#waiting = false;
    }
    if (grant === null) {
      this.#end(epoch);
      return false;
    }
    // The grant can have happened any time after the `e` arrived.
    await this.#hold(conn, epoch, grant, this.#enqueuedAt, sentAt, options?.signal);
    return true;
  }

  /** Release the lock (or slot). */
  release(): Promise<void> {
    const state = this.#lease.state;
    if (state === "releasing") return this.#releasing as Promise<void>;
    if (state === "lost") {
      const err = this.#lost;
      this.#lost = undefined;
      this.#lease.to("released");
      return err === undefined ? Promise.resolve() : Promise.reject(err);
    }
    if (state === "connecting" || state === "queued") {
      this.#end(this.#epoch, new LockError(`${quote(this.key)} was released while ${state}`, "ABORTED"));
      return Promise.resolve();
    }
    if (state === "released") return Promise.resolve();
    this.#releasing = this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    const conn = this.#conn as Connection;
    const grant = this.#lease.grant as Grant;
    const epoch = this.#epoch;
    const keeper = this.#keeper;
    // The loss timer stays armed: a release that cannot be confirmed in time is a loss.
    keeper?.stopRenewal();
    this.#lease.to("releasing");
    if (keeper?.inflight !== undefined) await keeper.inflight;
    try {
      if (this.#epoch !== epoch || conn.closed) {
        // Lost while the renewal finished, or closed meanwhile.
        const lost = this.#lost;
        this.#lost = undefined;
        if (lost !== undefined) throw lost;
        return;
      }
      await conn.request(
        encodeRelease(this.#s.kind, this.key, grant.token),
        commandName(this.#s.kind, "release"),
        (line) => parseOkReply(line, commandName(this.#s.kind, "release")),
        this.#s.requestTimeoutMs,
      );
    } catch (err) {
      const lost = this.#lost;
      if (lost !== undefined) throw lost;
      if (err instanceof ServerError && err.code !== "DRAINING") {
        throw new LockLostError(this.key, "the server no longer recognised the token at release (lease expired?)", err);
      }
      throw err;
    } finally {
      this.#releasing = undefined;
      this.#lost = undefined;
      if (this.#epoch === epoch) this.#end(epoch);
      else if (this.#lease.state === "releasing") this.#lease.to("released");
    }
  }

  /** Acquire, run `fn`, release: */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    if (!(await this.acquire())) throw new AcquireTimeoutError(this.key, this.#s.acquireTimeoutS);
    const abort = this.#abort;
    if (abort === undefined || !this.#lease.holding) {
      throw (
        this.#lost ?? new LockError(`${quote(this.key)} was released or closed before withLock() could run`, "ABORTED")
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
    this.#lost = undefined;
    this.#dropped = undefined;
    const reason = new LockError(`${quote(this.key)} was closed`, "ABORTED");
    this.#attempt?.abort(reason);
    this.#end(this.#epoch, reason);
  }

  // ------------------------------------------------------------ internals

  /** Check state, pick a server, connect. Leaves the state `connecting`; returns the attempt's epoch. */
  async #start(signal: AbortSignal | undefined): Promise<[Connection, number]> {
    const state = this.#lease.state;
    if (state !== "released" && state !== "lost") {
      throw new LockError(`${quote(this.key)} is already ${state} on this instance; release() it first`, "BUSY");
    }
    checkSignal(signal);
    const [host, port] = pickServer(this.#s);
    this.#lost = undefined;
    this.#dropped = undefined;
    this.#lease.to("connecting");
    const epoch = ++this.#epoch;
    const attempt = new AbortController();
    this.#attempt = attempt;
    const s = this.#s;
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
      if (this.#epoch === epoch) this.#end(epoch);
      throw err;
    } finally {
      if (this.#attempt === attempt) this.#attempt = undefined;
    }
    if (this.#epoch !== epoch) {
      conn.close();
      throw new LockError(`${quote(this.key)} was closed while connecting`, "ABORTED");
    }
    this.#conn = conn;
    this.#lease.sampleRtt(now() - connectStart);
    conn.onClose((info) => {
      if (this.#conn !== conn || info.byClient) return;
      if (this.#lease.holding) {
        const timedOut = info.error.code === "TIMEOUT";
        this.#lose(timedOut ? info.error.message : "the connection to the server was lost", info.error);
      } else if (this.#lease.state === "queued") {
        this.#dropped = info.error;
        this.#end(this.#epoch);
      }
    });
    return [conn, epoch];
  }

  /** Send a request for the current attempt; on any failure, end the attempt. */
  async #ask<T>(
    conn: Connection,
    epoch: number,
    bytes: Uint8Array,
    op: "acquire" | "enqueue" | "wait",
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const command = commandName(this.#s.kind, op);
    const onAbort = (): void => conn.close(abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      checkSignal(signal);
      const value = await conn.request(bytes, command, (line) => parse(line, command), timeoutMs);
      // The connection may have closed (or close() been called) in the same tick the reply arrived.
      if (this.#epoch !== epoch || conn.closed) {
        throw conn.closeError ?? new LockError(`${quote(this.key)} was closed during ${op}`, "ABORTED");
      }
      return value;
    } catch (err) {
      // This call reports the failure; do not report it again from a later wait().
      this.#dropped = undefined;
      if (this.#epoch === epoch) this.#end(epoch);
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Throw unless attempt `epoch` is still the current one on an open `conn`:
   * a `close()` (or a drop) between a reply and its continuation wins.
   */
  #current(conn: Connection, epoch: number, op: string): void {
    if (this.#epoch !== epoch || conn.closed) {
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
  async #hold(
    conn: Connection,
    attempt: number,
    grant: Grant,
    startBound: number,
    lastSend: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.#current(conn, attempt, "the hand-over of a grant");
    const epoch = ++this.#epoch;
    const s = this.#s;
    this.#lease.granted(grant, startBound, lastSend, s.safetyMarginMs);
    const keeper = new Keeper(this.#owner(), conn, {
      kind: s.kind,
      ttl: s.leaseTtlS ?? grant.lease,
      ratio: s.ratio,
      readTimeoutMs: s.readTimeoutMs,
      requestTimeoutMs: s.requestTimeoutMs,
    });
    this.#keeper = keeper;
    // Nobody relies on a grant before it is handed over, so a confirming
    // renewal may take its time: if the server confirms it, the lease never
    // lapsed. But a confirmation whose own reply came late proves too little
    // again: renew until one leaves enough, or give up.
    const onAbort = (): void => this.#end(epoch, abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#confirming = true;
    try {
      for (let tries = 0; this.#lease.needsConfirmation(now()); tries++) {
        const confirmed =
          tries < MAX_CONFIRMATIONS
            ? await keeper.renew(s.requestTimeoutMs)
            : this.#lose(`no renewal confirmed the grant with enough lease left after ${tries} tries`);
        if (!confirmed || this.#epoch !== epoch) {
          const lost = this.#lost;
          this.#lost = undefined;
          if (this.#lease.state === "lost") this.#lease.to("released");
          throw (
            lost ??
            conn.closeError ??
            new LockError(`${quote(this.key)} was closed while its grant was being confirmed`, "ABORTED")
          );
        }
      }
    } finally {
      this.#confirming = false;
      signal?.removeEventListener("abort", onAbort);
    }
    this.#current(conn, epoch, "the hand-over of a grant");
    keeper.arm();
    this.#abort = new AbortController();
  }

  /** The view of this instance a {@link Keeper} gets. */
  #owner(): KeeperOwner {
    const self = this;
    return {
      key: this.key,
      lease: this.#lease,
      get epoch(): number {
        return self.#epoch;
      },
      lose: (reason, cause) => this.#lose(reason, cause),
    };
  }

  /** The holding can no longer be proven: report it, close the connection. */
  #lose(reason: string, cause?: unknown): false {
    const state = this.#lease.state;
    if (state !== "held" && state !== "renewing" && state !== "releasing") return false;
    const err = new LockLostError(this.key, reason, cause);
    this.#lost = err;
    this.#epoch++;
    const abort = this.#teardown(err);
    // During release(), the release reports the loss itself; a grant being
    // confirmed was never handed over, so its acquire() reports it.
    if (state !== "releasing") this.#lease.to("lost");
    // Listeners run last, when the state already says what happened.
    abort?.abort(err);
    if (state !== "releasing" && !this.#confirming) callOnLost(this.#s.onLost, err);
    return false;
  }

  /** End the current attempt or holding: timers off, connection closed, state `released`. */
  #end(epoch: number, reason?: LockError): void {
    if (this.#epoch !== epoch) return;
    this.#epoch++;
    this.#attempt?.abort(reason ?? new LockError(`${quote(this.key)} was released while connecting`, "ABORTED"));
    const abort = this.#teardown(reason);
    this.#lease.to("released");
    abort?.abort(reason ?? new LockError(`${quote(this.key)} was released`, "ABORTED"));
  }

  /** Stop renewing and close the connection; returns the holding's controller, for the caller to abort last. */
  #teardown(reason?: LockError): AbortController | undefined {
    this.#keeper?.stop();
    this.#keeper = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close(reason);
    const abort = this.#abort;
    this.#abort = undefined;
    return abort;
  }
}
