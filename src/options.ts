/**
 * The options of `DistributedLock` and `DistributedSemaphore`, and their
 * checking: every option is validated at construction, before any byte is
 * sent.
 *
 * @module
 */
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from "./connection.ts";
import { InvalidArgumentError, type LockLostError, quote } from "./errors.ts";
import { checkHooks, type LockHooks } from "./hooks.ts";
import type { OpenSettings, TlsOptions } from "./open.ts";
import type { Kind } from "./protocol.ts";
import type { ServerAddress } from "./servers.ts";
import { type ShardingStrategy, stableHashShard } from "./sharding.ts";
import { connectionTargets } from "./targets.ts";
import type { Runtime } from "./transport.ts";
import {
  checkFlag,
  checkKey,
  checkKnownKeys,
  checkLimit,
  checkMargin,
  checkMaxHoldS,
  checkOptionMillis,
  checkOptionSeconds,
  checkRatio,
  checkWaitSeconds,
  describeValue,
} from "./validate.ts";
import { type WireWait, wireWaitOf } from "./wire-wait.ts";

/** Seconds an acquire waits unless told otherwise (`acquireTimeoutS`). */
export const DEFAULT_ACQUIRE_TIMEOUT_S = 10;

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
  /** Lock name: 1 to 256 UTF-8 bytes of well-formed Unicode, without space, tab, CR or LF. */
  key: string;
  /** Seconds to wait for the lock (whole, 0 to 3600; `0` tries once; `Infinity` waits without limit). Default `10`. */
  acquireTimeoutS?: number | undefined;
  /** Lease TTL in whole seconds (>= 1), kept on every renewal. Default: the server's (33 s unless configured). */
  leaseTtlS?: number | undefined;
  /**
   * The servers; the key is routed to one of them. Each is `"host:port"`
   * (`"[::1]:6388"` for IPv6) or a `[host, port]` pair; see
   * {@link ServerAddress}. Default `["127.0.0.1:6388"]`. Copied.
   */
  servers?: ReadonlyArray<ServerAddress> | undefined;
  /** Picks the server for the key. Default {@link stableHashShard}. */
  shardingStrategy?: ShardingStrategy | undefined;
  /** @deprecated Use `servers`. Server host (default `"127.0.0.1"`). */
  host?: string | undefined;
  /** @deprecated Use `servers`. Server port (default `6388`). */
  port?: number | undefined;
  /** Renew after this fraction of the lease has passed (strictly between 0 and 1). Default `0.5`. */
  renewRatio?: number | undefined;
  /**
   * The server's `--read-timeout` in seconds (default `23`, the server's default).
   * Renewals are spaced so the connection never idles that long.
   */
  serverReadTimeoutS?: number | undefined;
  /**
   * Milliseconds allowed to be ready to talk: TCP connect, TLS handshake and
   * the auth exchange together. Default `10000`.
   */
  connectTimeoutMs?: number | undefined;
  /** Use TLS: `true` to verify against the runtime's default CAs, or {@link TlsOptions}. Default: plain TCP. */
  tls?: boolean | TlsOptions | undefined;
  /** The server's `--auth-token`, sent first on every connection. Never printed or logged. */
  auth?: string | undefined;
  /**
   * Milliseconds allowed for the reply to a request that cannot block
   * (enqueue, stats, a try on a shared connection). Default `5000`. A renewal
   * or release waits as long as the lease is provable, and this plus the
   * server's read timeout more.
   */
  requestTimeoutMs?: number | undefined;
  /**
   * How many milliseconds before the lease's deadline a holding counts as lost
   * unless a renewal has been confirmed (whole, >= 0, less than half the
   * lease). Default: 5 % of the lease, at least 300 ms. Larger is safer on a
   * busy machine or a drifting clock; smaller gives the renewal more time.
   */
  safetyMarginMs?: number | undefined;
  /**
   * Seconds a holding may last (more than 0, at most a year; fractions
   * allowed), counted from the grant's arrival: then the client releases it
   * and reports it lost (`onLost`, `hooks.lost`, the signal; the error's
   * `cause` has code `"MAX_HOLD"`). Default: no limit.
   */
  maxHoldS?: number | undefined;
  /**
   * Called once when a held lock is lost (renewal failed, lease deadline
   * passed, connection dropped). Stop the protected work when it fires. If it
   * throws or rejects, the error is logged with `console.error`, never thrown.
   */
  onLost?: ((error: LockLostError) => void) | undefined;
  /** Callbacks told what happens to the lock (waiting, acquired, renewed, released, lost, abandoned): {@link LockHooks}. */
  hooks?: LockHooks | undefined;
  /** `true` for dflockd v2.1+: the token's fence when a grant has none (never v1.x/v2.0); per key and server only, not across a failover. */
  fenceFromToken?: boolean | undefined;
  /**
   * The runtime to connect through (`nodeRuntime`, `bunRuntime`,
   * `denoRuntime`). Default: the process's default, the runtime of the first
   * entry point loaded.
   */
  runtime?: Runtime | undefined;
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
  signal?: AbortSignal | undefined;
  /**
   * Whole seconds this call may wait, instead of the instance's
   * `acquireTimeoutS`: for `acquire()` and `withLock()` how long to wait for
   * the lock (time spent waiting behind this instance's earlier `withLock()`
   * callers included), for `wait()` the same as its `timeoutS` argument, and
   * for `enqueue()` how long the whole call may take (it then rejects with
   * code `"TIMEOUT"`). `0` tries once; `Infinity` waits without limit, in
   * one queued request that keeps its place in line.
   */
  timeoutS?: number | undefined;
}

const CALL_OPTIONS: ReadonlySet<string> = new Set(["signal", "timeoutS"]);

/** The keys of {@link LockOptions}. */
export const LOCK_KEYS: ReadonlySet<string> = new Set([
  "key",
  "acquireTimeoutS",
  "leaseTtlS",
  "servers",
  "shardingStrategy",
  "host",
  "port",
  "renewRatio",
  "serverReadTimeoutS",
  "connectTimeoutMs",
  "tls",
  "auth",
  "requestTimeoutMs",
  "safetyMarginMs",
  "maxHoldS",
  "onLost",
  "hooks",
  "runtime",
  "fenceFromToken",
]);
const SEMAPHORE_KEYS: ReadonlySet<string> = new Set([...LOCK_KEYS, "limit"]);

/**
 * Check the per-call options of acquire, enqueue, wait and withLock: an
 * object with only `signal` (an `AbortSignal`) and `timeoutS` (whole seconds).
 * @throws InvalidArgumentError naming the first problem.
 */
export function checkCallOptions(what: string, options: AcquireOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`${what} options must be an object, got ${describeValue(options)}`);
  }
  checkKnownKeys(what, options, CALL_OPTIONS);
  const signal: unknown = options.signal;
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new InvalidArgumentError(`${what}: signal must be an AbortSignal, got ${describeValue(signal)}`);
  }
  if (options.timeoutS !== undefined) checkWaitSeconds(`${what}: timeoutS`, options.timeoutS);
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as AbortSignal).aborted === "boolean" &&
    typeof (value as AbortSignal).addEventListener === "function"
  );
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

/** Options checked and resolved once, at construction. */
export interface Settings {
  readonly key: string;
  readonly kind: Kind;
  readonly limit: number | undefined;
  readonly acquireTimeoutS: number;
  readonly leaseTtlS: number | undefined;
  /** How to open a connection to each server (in sharding order), and its pool key. */
  readonly targets: ReadonlyArray<Target>;
  readonly strategy: ShardingStrategy;
  readonly ratio: number;
  readonly readTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly safetyMarginMs: number | undefined;
  /** `maxHoldS`, if set. */
  readonly maxHoldS: number | undefined;
  readonly onLost: ((error: LockLostError) => void) | undefined;
  readonly hooks: LockHooks | undefined;
  /** The command line's internal `WIRE_WAIT` option, if set. */
  readonly wire: WireWait | undefined;
  readonly fenceFromToken: boolean;
}

/** The server's default read timeout, in seconds. */
const DEFAULT_SERVER_READ_TIMEOUT_S = 23;

/** One server of an instance: how to open a connection to it, and the key of its idle connections in a pool. */
export interface Target {
  readonly open: OpenSettings;
  readonly poolKey: string;
  /** `host:port` (`[host]:port` for IPv6), as messages name the server and a `servers` entry may be written. */
  readonly server: string;
}

/**
 * The option key (not part of the public options) by which a client object
 * hands an instance its settings, checked once at the client's construction:
 * only the instance's key (and limit) are checked then.
 */
export const SETTINGS: unique symbol = Symbol("dflockd-client settings");

/**
 * Check every option; nothing is sent before this has passed. Options that
 * carry {@link SETTINGS} take those, and only their key (and `limit`) are
 * checked.
 * @throws InvalidArgumentError for any invalid option.
 */
export function readSettings(kind: Kind, options: LockOptions, limit?: number): Settings {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`options must be an object with at least a key, got ${describeValue(options)}`);
  }
  const checked = (options as { [SETTINGS]?: Settings })[SETTINGS];
  if (checked !== undefined) {
    return {
      ...checked,
      key: checkKey(options.key),
      kind,
      limit: kind === "semaphore" ? checkLimit(limit) : undefined,
    };
  }
  if (kind === "lock") checkKnownKeys("DistributedLock options", options, LOCK_KEYS);
  else checkKnownKeys("DistributedSemaphore options", options, SEMAPHORE_KEYS);
  const strategy = options.shardingStrategy ?? stableHashShard;
  if (typeof strategy !== "function") throw new InvalidArgumentError("shardingStrategy must be a function");
  if (options.onLost !== undefined && typeof options.onLost !== "function") {
    throw new InvalidArgumentError("onLost must be a function");
  }
  const leaseTtlS = options.leaseTtlS === undefined ? undefined : checkOptionSeconds("leaseTtlS", options.leaseTtlS, 1);
  const margin = options.safetyMarginMs === undefined ? undefined : checkMargin(options.safetyMarginMs);
  if (margin !== undefined && leaseTtlS !== undefined && margin * 2 >= leaseTtlS * 1000) {
    throw new InvalidArgumentError(
      `safetyMarginMs must be less than half the lease (${leaseTtlS * 500} ms for leaseTtlS ${leaseTtlS}), got ${margin}`,
    );
  }
  const connectTimeoutMs = checkOptionMillis(
    "connectTimeoutMs",
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  );
  const targets = connectionTargets(options, connectTimeoutMs);
  return {
    key: checkKey(options.key),
    kind,
    limit: kind === "semaphore" ? checkLimit(limit) : undefined,
    acquireTimeoutS: checkWaitSeconds("acquireTimeoutS", options.acquireTimeoutS ?? DEFAULT_ACQUIRE_TIMEOUT_S),
    leaseTtlS,
    targets,
    strategy,
    ratio: checkRatio(options.renewRatio ?? 0.5),
    readTimeoutMs:
      checkOptionSeconds("serverReadTimeoutS", options.serverReadTimeoutS ?? DEFAULT_SERVER_READ_TIMEOUT_S, 1) * 1000,
    requestTimeoutMs: checkOptionMillis("requestTimeoutMs", options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
    safetyMarginMs: margin,
    maxHoldS: options.maxHoldS === undefined ? undefined : checkMaxHoldS(options.maxHoldS),
    onLost: options.onLost,
    hooks: checkHooks(options.hooks),
    wire: wireWaitOf(options),
    fenceFromToken: checkFlag("fenceFromToken", options.fenceFromToken),
  };
}

/**
 * The server for `settings.key`: the sharding strategy's pick, checked.
 * @throws InvalidArgumentError if a custom strategy returns no valid index.
 */
export function pickServer(settings: Settings): Target {
  const { targets, strategy, key } = settings;
  const n = targets.length;
  const i = n === 1 && strategy === stableHashShard ? 0 : strategy(key, n);
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= n) {
    throw new InvalidArgumentError(
      `shardingStrategy returned ${String(i)} for ${quote(key)}; expected a whole number from 0 to ${n - 1}`,
    );
  }
  return settings.targets[i] as Target;
}

/** `host:port` of `conn` (a cluster leader an acquisition was sent on to), else of the sharding's pick for the key. */
export function serverOf(settings: Settings, conn?: { readonly server: string | undefined }): string {
  return conn?.server ?? pickServer(settings).server;
}

/**
 * Call the user's `onLost`. Whatever it does (throw, reject), the holder's
 * process must not die of it: the error is logged.
 */
export function callOnLost(cb: ((error: LockLostError) => void) | undefined, err: LockLostError): void {
  if (cb === undefined) return;
  const report = (thrown: unknown): void => {
    console.error(`dflockd-client: the onLost callback for ${quote(err.key)} failed:`, thrown);
  };
  try {
    const result: unknown = cb(err);
    if (typeof (result as PromiseLike<unknown> | null)?.then === "function") {
      (result as PromiseLike<unknown>).then(undefined, report);
    }
  } catch (thrown) {
    report(thrown);
  }
}
