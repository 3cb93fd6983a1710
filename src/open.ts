/**
 * TLS and authentication options, in runtime-neutral terms, and the one
 * routine that opens a ready-to-use connection: TCP or TLS through the
 * runtime adapter, then `auth` if a secret is configured, all within one
 * connect timeout. The secret is kept where no `JSON.stringify`, `inspect`,
 * `console.log` or error message can reach it.
 *
 * @module
 */
import { abortError } from "./cancel.ts";
import { Connection, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HOST, DEFAULT_PORT } from "./connection.ts";
import { dial } from "./dial.ts";
import { ConnectionError, InvalidArgumentError, LockError, ServerError } from "./errors.ts";
import { parseOkReply } from "./protocol.ts";
import { hostPort, type Runtime, runtime, type TlsSettings } from "./transport.ts";
import { checkHost, checkKnownKeys, checkOptionMillis, checkPort, checkSecret, describeValue } from "./validate.ts";

/**
 * TLS settings. `tls: true` (or `{}`) means: verify the server against the
 * runtime's default trusted CAs and the host name you connect to.
 *
 * @example
 * ```ts
 * import { readFileSync } from "node:fs";
 * import { DistributedLock, type TlsOptions } from "dflockd-client";
 *
 * const tls: TlsOptions = { ca: readFileSync("ca.pem", "utf8"), serverName: "locks.internal" };
 * const lock = new DistributedLock({ key: "k", servers: [["10.0.0.5", 6388]], tls });
 * ```
 */
export interface TlsOptions {
  /**
   * PEM certificate(s) of the CA(s) to trust. On Node and Bun they replace the
   * default CAs; on Deno they are trusted in addition to them.
   */
  ca?: string | string[] | undefined;
  /** PEM client certificate (sent only if the server asks for one). Needs `key`. */
  cert?: string | undefined;
  /** PEM private key for `cert`. */
  key?: string | undefined;
  /**
   * Name to verify the server's certificate against (and to send as SNI).
   * Default: the host. Deno can only verify against the host itself.
   */
  serverName?: string | undefined;
  /**
   * UNSAFE: accept any certificate, so anyone on the network path can
   * impersonate the server and read the secret. For throwaway tests only.
   * Not supported on Deno.
   */
  insecureSkipVerify?: boolean | undefined;
}

const REDACTED = "[redacted]";
/** The encoded `auth` request of each {@link Secret}: outside the object, so no inspector can print it. */
const secrets = new WeakMap<object, Uint8Array>();

/**
 * An authentication secret, held so that printing or serialising anything
 * of the library never shows it: the value lives outside the object, and the
 * object has no properties to print. Built from the `auth` option.
 */
export class Secret {
  /** Wraps `value`, checking it can be sent on one protocol line. */
  constructor(value: unknown) {
    secrets.set(this, new TextEncoder().encode(`auth\n_\n${checkSecret(value)}\n`));
    Object.freeze(this);
  }

  /** @internal The encoded `auth` request. */
  static request(secret: Secret): Uint8Array {
    return secrets.get(secret) as Uint8Array;
  }

  /** Always `"[redacted]"`. */
  toString(): string {
    return REDACTED;
  }

  /** Always `"[redacted]"`. */
  toJSON(): string {
    return REDACTED;
  }
}

/** The keys of {@link TlsOptions}. */
const TLS_KEYS: ReadonlySet<string> = new Set(["ca", "cert", "key", "serverName", "insecureSkipVerify"]);

/** The keys of {@link ConnectOptions}. */
export const CONNECT_KEYS: ReadonlySet<string> = new Set([
  "host",
  "port",
  "connectTimeoutMs",
  "tls",
  "auth",
  "runtime",
]);

/**
 * Check the `runtime` option: `undefined` (the default runtime, chosen when a
 * connection opens), or a {@link Runtime} such as `nodeRuntime`.
 */
export function checkRuntime(value: unknown): Runtime | undefined {
  if (value === undefined) return undefined;
  const r = value as Partial<Runtime> | null;
  if (
    typeof r !== "object" ||
    r === null ||
    typeof r.name !== "string" ||
    typeof r.connect !== "function" ||
    typeof r.stream !== "function" ||
    typeof r.close !== "function"
  ) {
    throw new InvalidArgumentError(
      `runtime must be a Runtime (nodeRuntime, bunRuntime or denoRuntime), got ${describeValue(value)}`,
    );
  }
  return r as Runtime;
}

/** Check and normalise the `tls` option. */
export function resolveTls(tls: unknown): TlsSettings | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return { ca: undefined, cert: undefined, key: undefined, serverName: undefined, verify: true };
  if (typeof tls !== "object" || tls === null) {
    throw new InvalidArgumentError("tls must be true, false, or an options object");
  }
  const t = tls as TlsOptions;
  checkKnownKeys("tls", t, TLS_KEYS);
  // Each field read once: what is checked is what is kept.
  const { ca: caGiven, serverName, insecureSkipVerify } = t;
  const pem = (what: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !v.includes("-----BEGIN "))
      throw new InvalidArgumentError(`tls.${what} must be a PEM string`);
    return v;
  };
  const caPem = (c: unknown): string => {
    if (c === undefined) throw new InvalidArgumentError("tls.ca must be a PEM string or a list of them, with no gaps");
    return pem("ca", c) as string;
  };
  // Array.from() visits a list's holes too (as undefined), where map() skips them.
  const ca = caGiven === undefined ? undefined : Array.isArray(caGiven) ? Array.from(caGiven, caPem) : [caPem(caGiven)];
  const cert = pem("cert", t.cert);
  const key = pem("key", t.key);
  if ((cert === undefined) !== (key === undefined)) throw new InvalidArgumentError("tls.cert and tls.key go together");
  if (serverName !== undefined) checkHost(serverName, "tls.serverName");
  if (insecureSkipVerify !== undefined && typeof insecureSkipVerify !== "boolean") {
    throw new InvalidArgumentError("tls.insecureSkipVerify must be a boolean");
  }
  return { ca, cert, key, serverName, verify: insecureSkipVerify !== true };
}

/** Everything needed to open a connection. */
export interface OpenSettings {
  host: string;
  port: number;
  connectTimeoutMs: number;
  tls: TlsSettings | undefined;
  auth: Secret | undefined;
  /** The runtime to connect through; the default runtime when `undefined`. */
  runtime?: Runtime | undefined;
}

/** Validate the connection-related options shared by every entry point. */
export function openSettings(
  host: unknown,
  port: unknown,
  options: { connectTimeoutMs?: unknown; tls?: unknown; auth?: unknown; runtime?: unknown },
  defaultTimeoutMs: number,
): OpenSettings {
  return {
    host: checkHost(host),
    port: checkPort(port),
    connectTimeoutMs: checkOptionMillis("connectTimeoutMs", options.connectTimeoutMs ?? defaultTimeoutMs),
    tls: resolveTls(options.tls),
    auth:
      options.auth === undefined ? undefined : options.auth instanceof Secret ? options.auth : new Secret(options.auth),
    runtime: checkRuntime(options.runtime),
  };
}

/**
 * Open a connection: TCP (or TLS), then `auth` if configured, all within
 * `connectTimeoutMs`. A rejected secret is an {@link AuthError}; either way
 * nothing is left open on failure. Aborting `signal` gives up at once: the
 * call rejects with its reason, and a connection that opens later, or is in
 * the middle of `auth`, is closed.
 */
export async function openConnection(s: OpenSettings, signal?: AbortSignal): Promise<Connection> {
  const started = performance.now();
  if (signal?.aborted) throw abortError(signal);
  // dial() rejects at once when `signal` aborts, and closes what opens later.
  const stream = await dial(s.runtime ?? runtime(), {
    host: s.host,
    port: s.port,
    timeoutMs: s.connectTimeoutMs,
    tls: s.tls,
    signal,
  });
  if (signal?.aborted) {
    stream.close();
    throw abortError(signal);
  }
  const conn = new Connection(stream, s.tls !== undefined, hostPort(s.host, s.port));
  if (s.auth === undefined) return conn;
  const left = Math.max(1, s.connectTimeoutMs - (performance.now() - started));
  const onAbort = (): void => conn.close(abortError(signal));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await conn.request(Secret.request(s.auth), "auth", parseOkReply, left);
  } catch (err) {
    conn.close();
    if (err instanceof LockError && err.code === "TIMEOUT") {
      throw new ConnectionError(`${s.host}:${s.port} did not answer the auth command within ${s.connectTimeoutMs} ms`, {
        code: "TIMEOUT",
        cause: err,
      });
    }
    // dflockd started without --auth-token knows no `auth` command.
    if (err instanceof ServerError && err.status === "error") {
      const why = `${conn.server} answered "error" to "auth": it takes no auth token (started without --auth-token?); leave out the auth option`;
      throw new ServerError(why, "error", "SERVER_ERROR");
    }
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return conn;
}

/**
 * Where and how to connect, for {@link connect} and {@link stats}.
 *
 * @example
 * ```ts
 * import { connect, type ConnectOptions } from "dflockd-client";
 *
 * const where: ConnectOptions = {
 *   host: "127.0.0.1",
 *   port: 6388,
 *   connectTimeoutMs: 2000,
 *   auth: process.env.DFLOCKD_AUTH_TOKEN,
 * };
 * const conn = await connect(where);
 * ```
 */
export interface ConnectOptions {
  /** Server host (default `"127.0.0.1"`). */
  host?: string | undefined;
  /** Server port (default `6388`). */
  port?: number | undefined;
  /**
   * Milliseconds allowed to be ready: TCP connect, TLS handshake and the auth
   * exchange together (default 10 000).
   */
  connectTimeoutMs?: number | undefined;
  /** Use TLS: `true` for the runtime's default CAs, or {@link TlsOptions}. Default: plain TCP. */
  tls?: boolean | TlsOptions | undefined;
  /** The server's `--auth-token`, sent first on the connection. Never printed or logged. */
  auth?: string | undefined;
  /**
   * The runtime to connect through (`nodeRuntime`, `bunRuntime`,
   * `denoRuntime`). Default: the process's default, the runtime of the first
   * entry point loaded.
   */
  runtime?: Runtime | undefined;
}

/**
 * Open a connection for the low-level functions, over the runtime's native
 * sockets (TLS and auth included if configured). Close it with
 * {@link Connection.close} when done; closing releases whatever it holds.
 *
 * @param options Host, port, timeout, TLS and auth.
 * @returns The open, authenticated connection.
 * @throws InvalidArgumentError for bad options; ConnectionError if the server
 * cannot be reached in time; AuthError if it rejects the secret.
 * @example
 * ```ts
 * import { connect } from "dflockd-client";
 *
 * const conn = await connect({ host: "127.0.0.1", port: 6388 });
 * conn.close();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<Connection> {
  if (typeof options !== "object" || options === null)
    throw new InvalidArgumentError(`connect() options must be an object, got ${describeValue(options)}`);
  checkKnownKeys("connect() options", options, CONNECT_KEYS);
  return openConnection(
    openSettings(options.host ?? DEFAULT_HOST, options.port ?? DEFAULT_PORT, options, DEFAULT_CONNECT_TIMEOUT_MS),
  );
}

const decoder = new TextDecoder();

/** Interned identities of TLS settings and secrets, so pool keys compare values without holding them in strings. */
const identities = new Map<string, number>();

function identity(value: string): number {
  let id = identities.get(value);
  if (id === undefined) {
    id = identities.size + 1;
    identities.set(value, id);
  }
  return id;
}

/**
 * A string naming where and how `s` connects (host, port, TLS settings and
 * secret): connections opened with equal settings are interchangeable, so
 * a pool keeps them together. Secrets and TLS keys appear as opaque numbers.
 */
export function poolKey(s: OpenSettings): string {
  return `${s.host}\u0000${s.port}\u0000${securityKey(s.tls, s.auth, s.runtime)}`;
}

/** The part of {@link poolKey} after host and port: the TLS settings and the secret, as opaque numbers. */
export function securityKey(tls: TlsSettings | undefined, auth: Secret | undefined, rt?: Runtime | undefined): string {
  const r = rt === undefined ? "" : `\u0000${runtimeId(rt)}`;
  if (tls === undefined && auth === undefined) return `0\u00000${r}`;
  const t = tls === undefined ? 0 : identity(JSON.stringify(tls));
  const a = auth === undefined ? 0 : identity(`auth:${decoder.decode(Secret.request(auth))}`);
  return `${t}\u0000${a}${r}`;
}

/** A number for each runtime given explicitly, so that connections of two runtimes never share a pool key. */
const runtimeIds = new WeakMap<Runtime, number>();
let runtimeCount = 0;

function runtimeId(rt: Runtime): number {
  let id = runtimeIds.get(rt);
  if (id === undefined) {
    id = ++runtimeCount;
    runtimeIds.set(rt, id);
  }
  return id;
}
