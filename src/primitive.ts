/**
 * `DistributedLock` and `DistributedSemaphore`: a held lock or semaphore slot
 * with background renewal. Both drive a {@link LeaseTracker}; this file does
 * the I/O around its transitions.
 *
 * @module
 */
import {
  type Connection,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./connection.ts";
import { AcquireTimeoutError, InvalidArgumentError, LockError, LockLostError, ServerError } from "./errors.ts";
import { type LeaseState, LeaseTracker, renewDelayMs } from "./lease.ts";
import { openConnection, resolveTls, Secret, type TlsOptions } from "./open.ts";
import {
  commandName,
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeRenew,
  encodeWait,
  type Grant,
  type Kind,
  parseEnqueueReply,
  parseGrantReply,
  parseOkReply,
  parseRenewReply,
  type Renewal,
} from "./protocol.ts";
import { type ShardingStrategy, stableHashShard } from "./sharding.ts";
import { backgroundTimer, type TlsSettings } from "./transport.ts";
import {
  checkHost,
  checkKey,
  checkLease,
  checkLimit,
  checkMillis,
  checkPort,
  checkRatio,
  checkSeconds,
  checkTimeout,
} from "./validate.ts";

/** Extra time allowed beyond a blocking request's own timeout before the client gives up on the server. */
const BLOCKING_GRACE_MS = 5_000;
/** The server's default read timeout, in seconds. */
const DEFAULT_SERVER_READ_TIMEOUT_S = 23;

/**
 * Options of {@link DistributedLock}. Only `key` is required.
 *
 * @example
 * ```ts
 * import { DistributedLock, type LockOptions } from "dflockd-client";
 *
 * const options: LockOptions = { key: "nightly-report", leaseTtlS: 60, acquireTimeoutS: 5 };
 * const lock = new DistributedLock(options);
 * ```
 */
export interface LockOptions {
  /** Lock name: 1 to 256 UTF-8 bytes, no whitespace or control characters. */
  key: string;
  /** Seconds to wait for the lock (whole, >= 0; `0` tries once). Default `10`. */
  acquireTimeoutS?: number;
  /** Lease TTL in whole seconds (>= 1), kept on every renewal. Default: the server's (33 s unless configured). */
  leaseTtlS?: number;
  /** `[host, port]` pairs; the key is routed to one of them. Default `[["127.0.0.1", 6388]]`. Copied. */
  servers?: Array<[string, number]>;
  /** Picks the server for the key. Default {@link stableHashShard}. */
  shardingStrategy?: ShardingStrategy;
  /** @deprecated Use `servers`. Server host (default `"127.0.0.1"`). */
  host?: string;
  /** @deprecated Use `servers`. Server port (default `6388`). */
  port?: number;
  /** Renew after this fraction of the lease has passed (strictly between 0 and 1). Default `0.5`. */
  renewRatio?: number;
  /**
   * The server's `--read-timeout` in seconds (default `23`, the server's default).
   * Renewals are spaced so the connection never idles that long.
   */
  serverReadTimeoutS?: number;
  /**
   * Milliseconds allowed to be ready to talk: TCP connect, TLS handshake and
   * the auth exchange together. Default `10000`.
   */
  connectTimeoutMs?: number;
  /** Use TLS: `true` to verify against the runtime's default CAs, or {@link TlsOptions}. Default: plain TCP. */
  tls?: boolean | TlsOptions;
  /** The server's `--auth-token`, sent first on every connection. Never printed or logged. */
  auth?: string;
  /** Milliseconds allowed for a non-blocking request (enqueue, renew, release). Default `5000`. */
  requestTimeoutMs?: number;
  /**
   * Called once when a held lock is lost (renewal failed, lease deadline
   * passed, connection dropped). Stop the protected work when it fires.
   */
  onLost?: (error: LockLostError) => void;
}

/**
 * Options of {@link DistributedSemaphore}: those of {@link LockOptions} plus
 * the required `limit`.
 *
 * @example
 * ```ts
 * import { DistributedSemaphore, type SemaphoreOptions } from "dflockd-client";
 *
 * const options: SemaphoreOptions = { key: "downloads", limit: 3 };
 * const sem = new DistributedSemaphore(options);
 * ```
 */
export interface SemaphoreOptions extends LockOptions {
  /** Most concurrent holders (whole, >= 1). The first holder of a key fixes it on the server. */
  limit: number;
}

/**
 * Per-call options of `acquire()`, `enqueue()` and `wait()`.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "k" });
 * await lock.acquire({ signal: AbortSignal.timeout(2000) });
 * ```
 */
export interface AcquireOptions {
  /** Abort the attempt: the connection is closed and the call rejects with code `"ABORTED"`. */
  signal?: AbortSignal;
}

/**
 * Result of {@link DistributedPrimitive.enqueue}: `"acquired"` (held now) or
 * `"queued"` (call `wait()`).
 *
 * @example
 * ```ts
 * import { DistributedLock, type EnqueueStatus } from "dflockd-client";
 *
 * const status: EnqueueStatus = await new DistributedLock({ key: "k" }).enqueue();
 * ```
 */
export type EnqueueStatus = "acquired" | "queued";

const now: () => number = () => performance.now();

/**
 * What {@link DistributedLock} and {@link DistributedSemaphore} share: one
 * holding at a time, renewed in the background until released or lost.
 * Not constructed directly.
 *
 * @example
 * ```ts
 * import { DistributedLock, type DistributedPrimitive } from "dflockd-client";
 *
 * const held: DistributedPrimitive = new DistributedLock({ key: "k" });
 * console.log(held.state); // "released"
 * ```
 */
export abstract class DistributedPrimitive {
  /** The key this instance locks. */
  readonly key: string;
  readonly #kind: Kind;
  readonly #limit: number | undefined;
  readonly #acquireTimeoutS: number;
  readonly #leaseTtlS: number | undefined;
  readonly #servers: ReadonlyArray<readonly [string, number]>;
  readonly #strategy: ShardingStrategy;
  readonly #ratio: number;
  readonly #readTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #tls: TlsSettings | undefined;
  readonly #auth: Secret | undefined;
  readonly #requestTimeoutMs: number;
  readonly #onLost: ((error: LockLostError) => void) | undefined;

  readonly #lease = new LeaseTracker();
  #conn: Connection | undefined;
  /** Bumped by close() and whenever a holding ends, so stale callbacks can tell. */
  #epoch = 0;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #renewing: Promise<void> | undefined;
  #releasing: Promise<void> | undefined;
  #lost: LockLostError | undefined;
  #dropped: LockError | undefined;
  #abort: AbortController | undefined;
  /** The TTL the current holding was taken with; sent on every renewal. */
  #ttl = 0;
  /** A `wait()` is in flight. */
  #waiting = false;

  /** @internal */
  protected constructor(kind: Kind, options: LockOptions, limit?: number) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("options must be an object with at least a key");
    }
    this.#kind = kind;
    this.key = checkKey(options.key);
    this.#limit = kind === "semaphore" ? checkLimit(limit) : undefined;
    this.#acquireTimeoutS = checkTimeout("acquireTimeoutS", options.acquireTimeoutS ?? 10);
    this.#leaseTtlS = checkLease(options.leaseTtlS);
    this.#ratio = checkRatio(options.renewRatio ?? 0.5);
    this.#readTimeoutMs =
      checkSeconds("serverReadTimeoutS", options.serverReadTimeoutS ?? DEFAULT_SERVER_READ_TIMEOUT_S, 1) * 1000;
    this.#connectTimeoutMs = checkMillis("connectTimeoutMs", options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.#requestTimeoutMs = checkMillis("requestTimeoutMs", options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.#servers = serverList(options);
    this.#tls = resolveTls(options.tls);
    this.#auth = options.auth === undefined ? undefined : new Secret(options.auth);
    const strategy = options.shardingStrategy ?? stableHashShard;
    if (typeof strategy !== "function") throw new InvalidArgumentError("shardingStrategy must be a function");
    this.#strategy = strategy;
    if (options.onLost !== undefined && typeof options.onLost !== "function") {
      throw new InvalidArgumentError("onLost must be a function");
    }
    this.#onLost = options.onLost;
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

  /**
   * An `AbortSignal` that aborts when the current holding is lost, released or
   * closed; `undefined` when nothing is held.
   */
  get signal(): AbortSignal | undefined {
    return this.#abort?.signal;
  }

  /**
   * Acquire, blocking up to `acquireTimeoutS`. While held, the lease is
   * renewed in the background.
   *
   * @param options `signal` to abort the attempt.
   * @returns `true` once held, `false` if the timeout passed.
   * @throws LockError with code `"BUSY"` if this instance already holds or is
   * acquiring; a {@link ServerError} or {@link ConnectionError} on failure.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k", acquireTimeoutS: 5 });
   * if (await lock.acquire()) {
   *   try { /* work *\/ } finally { await lock.release(); }
   * }
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const bytes = encodeAcquire(this.#kind, this.key, this.#acquireTimeoutS, this.#leaseTtlS, this.#limit);
    const conn = await this.#start(options?.signal);
    const epoch = this.#epoch;
    const sentAt = now();
    const timeoutMs = this.#acquireTimeoutS * 1000 + BLOCKING_GRACE_MS;
    const grant = await this.#ask(conn, epoch, bytes, "acquire", parseGrantReply, timeoutMs, options?.signal);
    if (grant === null) {
      this.#end(epoch);
      return false;
    }
    this.#hold(conn, grant, this.#grantedAt(sentAt));
    return true;
  }

  /**
   * Two-phase acquisition, step 1: join the FIFO queue without blocking.
   *
   * @param options `signal` to abort the attempt.
   * @returns `"acquired"` if the lock was free (it is now held and renewed),
   * `"queued"` otherwise; then call {@link wait}.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * const status = await lock.enqueue();
   * if (await lock.wait(10)) await lock.release();
   * ```
   */
  async enqueue(options?: AcquireOptions): Promise<EnqueueStatus> {
    const bytes = encodeEnqueue(this.#kind, this.key, this.#leaseTtlS, this.#limit);
    const conn = await this.#start(options?.signal);
    const epoch = this.#epoch;
    const sentAt = now();
    const result = await this.#ask(
      conn,
      epoch,
      bytes,
      "enqueue",
      parseEnqueueReply,
      this.#requestTimeoutMs,
      options?.signal,
    );
    if (result.status === "acquired") {
      this.#hold(conn, result, sentAt);
      return "acquired";
    }
    this.#lease.to("queued");
    return "queued";
  }

  /**
   * Two-phase acquisition, step 2: block until granted. Returns `true` at once
   * if {@link enqueue} already acquired.
   *
   * @param timeoutS Seconds to wait (whole, >= 0). Default: `acquireTimeoutS`.
   * @param options `signal` to abort the wait.
   * @returns `true` once held, `false` if the timeout passed (the place in the
   * queue is given up).
   * @throws LockError with code `"NOT_ENQUEUED"` if nothing was enqueued.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * await lock.enqueue();
   * const granted = await lock.wait(10);
   * ```
   */
  async wait(timeoutS?: number, options?: AcquireOptions): Promise<boolean> {
    const t = checkTimeout("timeout", timeoutS ?? this.#acquireTimeoutS);
    const state = this.#lease.state;
    if (state === "held" || state === "renewing") return true;
    if (state !== "queued") {
      const dropped = this.#dropped;
      this.#dropped = undefined;
      if (dropped !== undefined && state === "released") throw dropped;
      throw new LockError(
        state === "released" || state === "lost"
          ? `wait() on "${this.key}" needs a successful enqueue() first`
          : `wait() on "${this.key}" while ${state}`,
        state === "released" || state === "lost" ? "NOT_ENQUEUED" : "BUSY",
      );
    }
    if (this.#waiting) throw new LockError(`wait() on "${this.key}" is already in progress`, "BUSY");
    const conn = this.#conn as Connection;
    const epoch = this.#epoch;
    const bytes = encodeWait(this.#kind, this.key, t);
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
    this.#hold(conn, grant, this.#grantedAt(sentAt));
    return true;
  }

  /**
   * Release the lock (or slot). Does nothing if nothing is held; gives up a
   * place in the queue or an attempt in progress. Waits for an in-flight
   * renewal first, and is bounded by `requestTimeoutMs`: if the server does not
   * answer, the connection is closed (which releases on the server) and a
   * `TIMEOUT` {@link ConnectionError} is thrown.
   *
   * @throws LockLostError if the holding was lost before it could be released
   * (reported once; the instance is then free to acquire again).
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * await lock.acquire();
   * await lock.release();
   * ```
   */
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
      this.#end(this.#epoch, new LockError(`"${this.key}" was released while ${state}`, "ABORTED"));
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
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#lease.to("releasing");
    if (this.#renewing !== undefined) await this.#renewing;
    try {
      if (this.#epoch !== epoch || conn.closed) {
        // Lost while the renewal finished, or closed meanwhile.
        const lost = this.#lost;
        this.#lost = undefined;
        if (lost !== undefined) throw lost;
        return;
      }
      await conn.request(
        encodeRelease(this.#kind, this.key, grant.token),
        commandName(this.#kind, "release"),
        (line) => parseOkReply(line, commandName(this.#kind, "release")),
        this.#requestTimeoutMs,
      );
    } catch (err) {
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

  /**
   * Acquire, run `fn`, release: even if `fn` throws, in which case `fn`'s
   * error is rethrown (not a release error).
   *
   * `fn` receives an `AbortSignal` that aborts if the lock is lost while it
   * runs; if that happens and `fn` still returns normally, `withLock` throws
   * {@link LockLostError}, because the work was not protected to the end.
   *
   * @param fn The critical section.
   * @returns What `fn` returned.
   * @throws AcquireTimeoutError if not acquired within `acquireTimeoutS`.
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "my-resource" });
   * const total = await lock.withLock(async (signal) => {
   *   // critical section; check signal.aborted in long loops
   *   return 42;
   * });
   * ```
   */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    if (!(await this.acquire())) throw new AcquireTimeoutError(this.key, this.#acquireTimeoutS);
    const signal = (this.#abort as AbortController).signal;
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

  /**
   * Drop everything now: stop renewing, close the connection (the server then
   * releases what it held) and abandon any attempt in progress. Synchronous
   * and idempotent; the instance can acquire again afterwards.
   *
   * @example
   * ```ts
   * import { DistributedLock } from "dflockd-client";
   *
   * const lock = new DistributedLock({ key: "k" });
   * process.on("SIGTERM", () => lock.close());
   * ```
   */
  close(): void {
    this.#lost = undefined;
    this.#dropped = undefined;
    this.#end(this.#epoch, new LockError(`"${this.key}" was closed`, "ABORTED"));
  }

  // ------------------------------------------------------------ internals

  /** Check state, pick a server, connect. Leaves the state `connecting`. */
  async #start(signal: AbortSignal | undefined): Promise<Connection> {
    const state = this.#lease.state;
    if (state !== "released" && state !== "lost") {
      throw new LockError(`"${this.key}" is already ${state} on this instance; release() it first`, "BUSY");
    }
    checkSignal(signal);
    const [host, port] = this.#pickServer();
    this.#lost = undefined;
    this.#dropped = undefined;
    this.#lease.to("connecting");
    const epoch = ++this.#epoch;
    let conn: Connection;
    const connectStart = now();
    try {
      conn = await raceAbort(
        openConnection({ host, port, connectTimeoutMs: this.#connectTimeoutMs, tls: this.#tls, auth: this.#auth }),
        signal,
        (c) => c.close(),
      );
    } catch (err) {
      if (this.#epoch === epoch) this.#end(epoch);
      throw err;
    }
    if (this.#epoch !== epoch) {
      conn.close();
      throw new LockError(`"${this.key}" was closed while connecting`, "ABORTED");
    }
    this.#conn = conn;
    this.#lease.seedRtt(now() - connectStart);
    conn.onClose((info) => {
      if (this.#conn !== conn || info.byClient) return;
      if (this.#lease.holding) this.#lose("the connection to the server was lost", info.error);
      else if (this.#lease.state === "queued") {
        this.#dropped = info.error;
        this.#end(this.#epoch);
      }
    });
    return conn;
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
    const command = commandName(this.#kind, op);
    const onAbort = (): void => conn.close(abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const value = await conn.request(bytes, command, (line) => parse(line, command), timeoutMs);
      // The connection may have closed (or close() been called) in the same tick the reply arrived.
      if (this.#epoch !== epoch || conn.closed) {
        throw conn.closeError ?? new LockError(`"${this.key}" was closed during ${op}`, "ABORTED");
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

  #pickServer(): readonly [string, number] {
    const n = this.#servers.length;
    const i = n === 1 && this.#strategy === stableHashShard ? 0 : this.#strategy(this.key, n);
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= n) {
      throw new InvalidArgumentError(
        `shardingStrategy returned ${String(i)} for "${this.key}"; expected a whole number from 0 to ${n - 1}`,
      );
    }
    return this.#servers[i] as readonly [string, number];
  }

  /**
   * The earliest moment the server can have started a lease granted by a
   * blocking request sent at `sentAt`: the grant may have waited in the queue,
   * but it left the server no more than a round trip before it arrived.
   */
  #grantedAt(sentAt: number): number {
    return Math.max(sentAt, now() - this.#lease.rttMs);
  }

  #hold(conn: Connection, grant: Grant, startedAt: number): void {
    this.#epoch++;
    this.#lease.granted(grant, startedAt);
    this.#ttl = this.#leaseTtlS ?? grant.lease;
    this.#abort = new AbortController();
    this.#schedule(conn);
  }

  /** Arm the renewal and the deadline for the current grant. */
  #schedule(conn: Connection): void {
    clearTimeout(this.#renewTimer);
    const lease = this.#lease;
    const grant = lease.grant as Grant;
    const delay = renewDelayMs(grant.lease, this.#ratio, lease.rttMs, this.#readTimeoutMs);
    this.#renewTimer = backgroundTimer(() => this.#renew(conn), delay);
    this.#armDeadline();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = backgroundTimer(
      () => this.#lose("the lease deadline passed without a confirmed renewal"),
      this.#lease.deadline - now(),
    );
  }

  #renew(conn: Connection): void {
    this.#renewTimer = undefined;
    if (this.#lease.state !== "held" || this.#conn !== conn) return;
    const grant = this.#lease.grant as Grant;
    const epoch = this.#epoch;
    const command = commandName(this.#kind, "renew");
    this.#lease.to("renewing");
    const sentAt = now();
    const budget = Math.max(1, Math.min(this.#requestTimeoutMs, this.#lease.deadline - sentAt));
    let renewal: Promise<Renewal>;
    try {
      // Always send the TTL the lock was taken with: a bare renew resets it to the server default.
      const bytes = encodeRenew(this.#kind, this.key, grant.token, this.#ttl);
      renewal = conn.request(bytes, command, (line) => parseRenewReply(line, command), budget);
    } catch (err) {
      renewal = Promise.reject(err);
    }
    this.#renewing = renewal.then(
      (renewal) => {
        this.#renewing = undefined;
        if (this.#epoch !== epoch) return;
        const state = this.#lease.state;
        if (state !== "renewing" && state !== "releasing") return;
        this.#lease.renewed(renewal, sentAt, now(), this.#ttl);
        if (state === "renewing") {
          this.#lease.to("held");
          this.#schedule(conn);
        } else {
          // release() goes ahead; the renewed deadline now applies to it.
          this.#armDeadline();
        }
      },
      (err: unknown) => {
        this.#renewing = undefined;
        if (this.#epoch !== epoch) return;
        this.#lose(`renewal failed: ${err instanceof Error ? err.message : String(err)}`, err);
      },
    );
  }

  /** The holding can no longer be proven: report it, close the connection. */
  #lose(reason: string, cause?: unknown): void {
    const state = this.#lease.state;
    if (state !== "held" && state !== "renewing" && state !== "releasing") return;
    const err = new LockLostError(this.key, reason, cause);
    this.#lost = err;
    this.#epoch++;
    this.#teardown(err);
    // During release(), the release reports the loss itself.
    if (state === "releasing") return;
    this.#lease.to("lost");
    const cb = this.#onLost;
    if (cb !== undefined) {
      try {
        cb(err);
      } catch (thrown) {
        queueMicrotask(() => {
          throw thrown;
        });
      }
    }
  }

  /** End the current attempt or holding: timers off, connection closed, state `released`. */
  #end(epoch: number, reason?: LockError): void {
    if (this.#epoch !== epoch) return;
    this.#epoch++;
    this.#teardown(reason);
    this.#lease.to("released");
  }

  #teardown(reason?: LockError): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#deadlineTimer);
    this.#renewTimer = undefined;
    this.#deadlineTimer = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close(reason);
    const abort = this.#abort;
    this.#abort = undefined;
    abort?.abort(reason ?? new LockError(`"${this.key}" was released`, "ABORTED"));
  }
}

/**
 * A distributed mutual-exclusion lock: at most one holder per key across every
 * client of the server. Waiters are served first come, first served.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "my-resource", leaseTtlS: 20 });
 * await lock.withLock(async () => {
 *   // only one process at a time runs this
 * });
 * ```
 */
export class DistributedLock extends DistributedPrimitive {
  /**
   * Creates the instance; nothing connects until it is used.
   *
   * @param options See {@link LockOptions}; only `key` is required.
   * @throws InvalidArgumentError for any invalid option.
   */
  constructor(options: LockOptions) {
    super("lock", options);
  }
}

/**
 * A distributed counting semaphore: up to `limit` concurrent holders per key.
 * The API mirrors {@link DistributedLock}.
 *
 * @example
 * ```ts
 * import { DistributedSemaphore } from "dflockd-client";
 *
 * const sem = new DistributedSemaphore({ key: "encoders", limit: 4 });
 * await sem.withLock(async () => {
 *   // at most 4 processes run this at once
 * });
 * ```
 */
export class DistributedSemaphore extends DistributedPrimitive {
  /** The semaphore's limit. */
  readonly limit: number;

  /**
   * Creates the instance; nothing connects until it is used.
   *
   * @param options See {@link SemaphoreOptions}; `key` and `limit` are required.
   * @throws InvalidArgumentError for any invalid option.
   */
  constructor(options: SemaphoreOptions) {
    super("semaphore", options, options?.limit);
    this.limit = options.limit;
  }
}

function serverList(options: LockOptions): ReadonlyArray<readonly [string, number]> {
  const { servers, host, port } = options;
  if (servers === undefined) {
    return [[checkHost(host ?? DEFAULT_HOST), checkPort(port ?? DEFAULT_PORT)]];
  }
  if (host !== undefined || port !== undefined) {
    throw new InvalidArgumentError("give either servers or the deprecated host/port, not both");
  }
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new InvalidArgumentError("servers must be a non-empty array of [host, port] pairs");
  }
  return Object.freeze(
    servers.map((s, i) => {
      if (!Array.isArray(s) || s.length !== 2) {
        throw new InvalidArgumentError(`servers[${i}] must be a [host, port] pair`);
      }
      return Object.freeze([checkHost(s[0]), checkPort(s[1])] as const);
    }),
  );
}

function abortError(signal: AbortSignal | undefined): LockError {
  const reason: unknown = signal?.reason;
  return new LockError("the operation was aborted", "ABORTED", { cause: reason });
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Race `promise` against `signal`; if the signal wins, dispose of the late value. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, dispose: (value: T) => void): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        if (settled) dispose(v);
        else {
          settled = true;
          resolve(v);
        }
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        if (!settled) {
          settled = true;
          reject(e);
        }
      },
    );
  });
}
