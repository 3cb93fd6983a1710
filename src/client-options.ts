/**
 * Which options a client object takes, which of them each of its locks and
 * semaphores may override, and the options such an instance is made with.
 *
 * @module
 */
import type { ClientLockOptions, ClientOptions } from "./client.ts";
import { InvalidArgumentError } from "./errors.ts";
import { DEFAULT_MAX_CLOSES_PER_SECOND, DEFAULT_MAX_IDLE } from "./idle.ts";
import { DEFAULT_IDLE_TIMEOUT_MS } from "./keepalive.ts";
import type { TlsOptions } from "./open.ts";
import { LOCK_KEYS, SETTINGS, type SemaphoreOptions, type Settings } from "./options.ts";
import { ConnectionPool, POOL } from "./pool.ts";
import type { TlsSettings } from "./transport.ts";
import { checkKnownKeys, checkWaitSeconds, describeValue } from "./validate.ts";
import { WIRE_WAIT } from "./wire-wait.ts";

/** The options `new DflockdClient()` takes. */
export const CLIENT_KEYS: ReadonlySet<string> = new Set([
  ...[...LOCK_KEYS].filter((k) => k !== "key"),
  "maxIdlePerServer",
  "maxIdleClosesPerSecond",
  "idleTimeoutS",
]);

/** The options `client.lock()` and `client.semaphore()` take, each overriding the client's. */
export const CLIENT_LOCK_KEYS: ReadonlySet<string> = new Set([
  "acquireTimeoutS",
  "leaseTtlS",
  "renewRatio",
  "requestTimeoutMs",
  "safetyMarginMs",
  "maxHoldS",
  "onLost",
  "hooks",
]);

/** The client's own settings, which an instance may not override (named in the error). */
const CONNECTION_KEYS = [
  "servers",
  "host",
  "port",
  "shardingStrategy",
  "tls",
  "auth",
  "connectTimeoutMs",
  "serverReadTimeoutS",
  "maxIdlePerServer",
  "maxIdleClosesPerSecond",
  "idleTimeoutS",
  "runtime",
] as const;

/**
 * A client's options as its instances with options of their own merge them:
 * as they were read when the client was made, like the settings checked from
 * them (which instances without options take). The servers as the checked
 * `[host, port]` pairs (when given as `servers`), the hooks as checked, and a
 * `tls` object as the TLS options that give the checked TLS settings again
 * (its fields may be inherited or later changed: a copy of the object would
 * miss or follow them).
 */
export function readOnce(
  options: Omit<ClientOptions, "maxIdlePerServer" | "maxIdleClosesPerSecond" | "idleTimeoutS">,
  settings: Settings,
): object {
  const read: Record<string, unknown> = { ...options, hooks: settings.hooks };
  if (options.servers !== undefined) read.servers = settings.targets.map((t) => [t.open.host, t.open.port]);
  const tls = settings.targets[0]?.open.tls;
  if (typeof options.tls === "object" && options.tls !== null && tls !== undefined) read.tls = tlsOptionsOf(tls);
  return read;
}

/** TLS options that resolve (`resolveTls()`) to `tls` again. */
function tlsOptionsOf(tls: TlsSettings): TlsOptions {
  const out: TlsOptions = { insecureSkipVerify: !tls.verify };
  if (tls.ca !== undefined) out.ca = [...tls.ca];
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  if (tls.serverName !== undefined) out.serverName = tls.serverName;
  return out;
}

/** What a client makes its instances from. */
export interface ClientBase {
  /** The client's options, less the pool's, as {@link readOnce} took them. */
  readonly options: object;
  /** The same options, checked once at the client's construction (for a placeholder key). */
  readonly settings: Settings;
  /** The client's pool. */
  readonly pool: ConnectionPool;
}

/**
 * The options for an instance on `key` (a semaphore's with `limit`) made by
 * the client `base`. With no `options` of its own, it takes the client's
 * checked settings: its constructor checks only `key` and `limit` (see
 * `readSettings()`), where a merge would check the client's options again for
 * every instance. Otherwise `options` override the client's, all checked by
 * the constructor.
 * @throws InvalidArgumentError for options that are not an object, or name a
 * setting of the client's or an unknown one.
 */
export function instanceOptions(
  base: ClientBase,
  key: string,
  options: ClientLockOptions | undefined,
  limit?: number,
): SemaphoreOptions {
  if (options === undefined) return { key, limit, [SETTINGS]: base.settings, [POOL]: base.pool } as SemaphoreOptions;
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("lock options must be an object");
  }
  for (const k of CONNECTION_KEYS) {
    if (k in options) {
      throw new InvalidArgumentError(`${k} is the client's setting; give it to new DflockdClient(), not per lock`);
    }
  }
  checkKnownKeys("lock options", options, CLIENT_LOCK_KEYS);
  const merged: Record<string | symbol, unknown> = { ...base.options };
  // An explicit undefined keeps the client's default, as leaving the key out does.
  for (const [k, v] of Object.entries(options)) if (v !== undefined) merged[k] = v;
  merged.key = key;
  if (limit !== undefined) merged.limit = limit;
  merged[POOL] = base.pool;
  // The command line's internal option (a symbol, so Object.entries() above does not carry it).
  const wire = (options as { [WIRE_WAIT]?: unknown })[WIRE_WAIT];
  if (wire !== undefined) merged[WIRE_WAIT] = wire;
  return merged as unknown as SemaphoreOptions;
}

/**
 * A client's own pool, from its options (`undefined`: the default).
 * @throws InvalidArgumentError for a bad value.
 */
export function clientPool(
  maxIdlePerServer: unknown,
  maxIdleClosesPerSecond: unknown,
  idleTimeoutS: unknown,
): ConnectionPool {
  const maxIdle = maxIdlePerServer ?? DEFAULT_MAX_IDLE;
  if (typeof maxIdle !== "number" || !Number.isInteger(maxIdle) || maxIdle < 0) {
    throw new InvalidArgumentError(`maxIdlePerServer must be a whole number >= 0, got ${describeValue(maxIdle)}`);
  }
  const closeRate = maxIdleClosesPerSecond ?? DEFAULT_MAX_CLOSES_PER_SECOND;
  if (typeof closeRate !== "number" || Number.isNaN(closeRate) || closeRate <= 0) {
    throw new InvalidArgumentError(
      `maxIdleClosesPerSecond must be a number > 0 (Infinity: no limit), got ${describeValue(closeRate)}`,
    );
  }
  const idleS = checkWaitSeconds("idleTimeoutS", idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_MS / 1000);
  return new ConnectionPool(maxIdle, true, closeRate, idleS * 1000);
}
