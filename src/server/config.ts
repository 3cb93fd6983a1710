/**
 * Settings of the dflockd-compatible server: dflockd v1.10.0's flags and
 * `DFLOCKD_*` environment variables, read as dflockd reads them, with its
 * defaults and its checks; plus the reply forms of later builds, which a real
 * server's version decides and this server takes as options.
 *
 * @module
 */
import { brand, hasInstance } from "./brand.ts";
import { durationString, parseAtoi, parseFlagBool, parseFlagInt, secondsToNanos } from "./goflag.ts";
import { DEFAULT_VERSION, isServerVersion, type ServerVersion, versionForms, versionProblem } from "./versions.ts";
import { trimSpace } from "./wire.ts";

/** Everything that changes how the server behaves. Durations are whole seconds, as dflockd's flags give them. */
export interface ServerConfig {
  host: string;
  port: number;
  defaultLeaseTtlS: number;
  leaseSweepIntervalS: number;
  gcIntervalS: number;
  gcMaxIdleS: number;
  maxLocks: number;
  maxWaiters: number;
  maxConnections: number;
  readTimeoutS: number;
  writeTimeoutS: number;
  /** How long a graceful shutdown waits for connections before closing them; 0 waits for ever. */
  shutdownTimeoutS: number;
  autoReleaseOnDisconnect: boolean;
  authToken: string | undefined;
  /** PEM text of the certificate chain (not a path). */
  tlsCert: string | undefined;
  /** PEM text of the private key (not a path). */
  tlsKey: string | undefined;
  /** Append a fence number to token and renew replies, and the extra stats fields of such builds. */
  fence: boolean;
  /** Answer `ping` with `ok` (v1.14+); else it is an unknown command. */
  ping: boolean;
  /** While shutting down, answer the next request with `error_draining`, then close (v1.16+). */
  draining: boolean;
  /**
   * Once the sweep has removed an `e` grant whose lease ran out, `w` says
   * `error_lease_expired` (newer builds), not `error_not_enqueued`. Before the
   * sweep, every server says `error_lease_expired`.
   * Also `n` on a lapsed, unswept lease says `error_lease_expired` (v1.10.0: `error`).
   */
  leaseExpired: boolean;
  /** Every `\r` in a request line is deleted before anything else (later builds); v1.10.0 trims trailing ones. */
  crAnywhere: boolean;
  /** Timeouts and leases above 9223372036 s are refused (later builds); v1.10.0 lets them wrap. */
  secondsCap: boolean;
  /**
   * A blocked `l`/`w` cut by a shutdown closes its connection with no reply
   * (later builds); v1.10.0 answers `error` and keeps serving it.
   */
  shutdownCloses: boolean;
  /** The dflockd generation answered as; {@link applyVersion} sets the switches below (and `ping`, …) from it. */
  version: ServerVersion;
  /** Lock and semaphore keys live apart (v1.14+): `l k` and `sl k 2` do not collide, `r` frees no slot. */
  namespaces: boolean;
  /** The argument line of `auth` may be up to 64 KiB (v1.15+); else 256 bytes, as every line. */
  longAuth: boolean;
  /** A peer that closes while blocked in `l`/`w` leaves the queue at once, with no reply (v1.15+). */
  dropOnPeerClose: boolean;
  /** Queued waiters and `e` state go on disconnect even without auto-release (v1.15+). */
  dropWaiters: boolean;
  /** An `e` grant swept before `w` collected it is forgotten: `w` says `error_not_enqueued` (v1.10.1+). */
  forgetSwept: boolean;
  /** `stats` ends with `"signal_channels":[]` (pub/sub's, v1.11 to v1.16). */
  signalChannels: boolean;
  /** A token's first 16 hex characters are a big-endian fence that rises on every grant (v2.1+). */
  tokenFence: boolean;
}

/** The reply forms of later builds; each matches some real server build. */
export type ServerForms = Partial<
  Omit<ServerConfig, IntKey | "host" | "authToken" | "tlsCert" | "tlsKey" | "autoReleaseOnDisconnect" | "version">
>;

/**
 * `cfg` answering as `version`: the version and every switch it decides.
 *
 * @param cfg The settings, changed in place.
 * @param version The generation.
 * @returns `cfg`.
 */
export function applyVersion(cfg: ServerConfig, version: ServerVersion): ServerConfig {
  return Object.assign(cfg, versionForms(version), { version });
}

/** dflockd v1.10.0's defaults. */
export function defaultConfig(): ServerConfig {
  return {
    host: "127.0.0.1",
    port: 6388,
    defaultLeaseTtlS: 33,
    leaseSweepIntervalS: 1,
    gcIntervalS: 5,
    gcMaxIdleS: 60,
    maxLocks: 1024,
    maxWaiters: 0,
    maxConnections: 0,
    readTimeoutS: 23,
    writeTimeoutS: 5,
    shutdownTimeoutS: 30,
    autoReleaseOnDisconnect: true,
    authToken: undefined,
    tlsCert: undefined,
    tlsKey: undefined,
    fence: false,
    ping: false,
    draining: false,
    leaseExpired: false,
    crAnywhere: false,
    secondsCap: false,
    shutdownCloses: false,
    version: DEFAULT_VERSION,
    namespaces: false,
    longAuth: false,
    dropOnPeerClose: false,
    dropWaiters: false,
    forgetSwept: false,
    signalChannels: false,
    tokenFence: false,
  };
}

/**
 * A setting dflockd would refuse (from `startTestServer()` options or `serve`
 * flags); the message names the setting and the rule.
 *
 * @example
 * ```ts
 * import { ConfigError, startTestServer } from "dflockd-client/testing";
 *
 * await startTestServer({ readTimeoutS: 0 }).catch((err) => {
 *   if (err instanceof ConfigError) console.error(err.message); // readTimeoutS must be > 0 (got 0s)
 * });
 * ```
 */
export class ConfigError extends Error {
  /**
   * `instanceof` that also recognises a `ConfigError` made by another copy of
   * `dflockd-client/testing` in the same process (its CommonJS build beside
   * its ESM build), by a brand registered with `Symbol.for()`, as for the
   * `LockError` family. A class of your own that extends it is checked by its
   * prototype chain only.
   *
   * @param value What is being tested.
   * @returns Whether `value` is a `ConfigError`, from any copy.
   * @example
   * ```ts
   * import { ConfigError } from "dflockd-client/testing";
   *
   * console.log(new ConfigError("readTimeoutS must be > 0") instanceof ConfigError); // true
   * ```
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of `instanceof`, maybe a subclass.
    return hasInstance(this, value);
  }

  /**
   * A refused setting.
   * @param message What is wrong, naming the flag or option.
   */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
brand(ConfigError, "ConfigError");

/** The settings that are integers. */
export type IntKey = {
  [K in keyof ServerConfig]: ServerConfig[K] extends number ? K : never;
}[keyof ServerConfig];

/** Integer flags: the setting and the environment variable dflockd reads when the flag is not given. */
const INT_FLAGS: Readonly<Record<string, readonly [IntKey, string]>> = {
  port: ["port", "DFLOCKD_PORT"],
  "default-lease-ttl": ["defaultLeaseTtlS", "DFLOCKD_DEFAULT_LEASE_TTL_S"],
  "lease-sweep-interval": ["leaseSweepIntervalS", "DFLOCKD_LEASE_SWEEP_INTERVAL_S"],
  "gc-interval": ["gcIntervalS", "DFLOCKD_GC_LOOP_SLEEP"],
  "gc-max-idle": ["gcMaxIdleS", "DFLOCKD_GC_MAX_UNUSED_TIME"],
  "max-locks": ["maxLocks", "DFLOCKD_MAX_LOCKS"],
  "max-connections": ["maxConnections", "DFLOCKD_MAX_CONNECTIONS"],
  "max-waiters": ["maxWaiters", "DFLOCKD_MAX_WAITERS"],
  "read-timeout": ["readTimeoutS", "DFLOCKD_READ_TIMEOUT_S"],
  "write-timeout": ["writeTimeoutS", "DFLOCKD_WRITE_TIMEOUT_S"],
  "shutdown-timeout": ["shutdownTimeoutS", "DFLOCKD_SHUTDOWN_TIMEOUT_S"],
};
const STRING_FLAGS = ["host", "auth-token", "auth-token-file", "tls-cert", "tls-key", "server-version"] as const;
const BOOL_FLAGS = ["auto-release-on-disconnect", "debug", "version"] as const;

/** Every flag `parseFlags` takes, for help texts. */
export const FLAG_NAMES: readonly string[] = [...Object.keys(INT_FLAGS), ...STRING_FLAGS, ...BOOL_FLAGS];

/** Flags as given, before files are read: paths stay paths. */
export interface ParsedFlags {
  /** The settings, with `tlsCert`/`tlsKey` unset and `authToken` set only if given directly. */
  config: ServerConfig;
  /** `--auth-token-file` (or `DFLOCKD_AUTH_TOKEN_FILE`), to read when no token was given directly. */
  authTokenFile: string | undefined;
  /** `--tls-cert` path. */
  tlsCertFile: string | undefined;
  /** `--tls-key` path. */
  tlsKeyFile: string | undefined;
  /** `--version` was given. */
  version: boolean;
}

/** The settings dflockd holds as a `time.Duration` (seconds that wrap as int64 nanoseconds). */
const DURATIONS: ReadonlySet<IntKey> = new Set<IntKey>([
  "defaultLeaseTtlS",
  "leaseSweepIntervalS",
  "gcIntervalS",
  "gcMaxIdleS",
  "readTimeoutS",
  "writeTimeoutS",
  "shutdownTimeoutS",
]);

/**
 * Parse dflockd's flags as Go's flag package does (`--name value`,
 * `--name=value`, one or two dashes; booleans only as `--name` or
 * `--name=<bool>`; integers in any base Go writes; `--` or the first
 * non-flag argument ends them), then fill what no flag set from `env` as
 * dflockd does (`DFLOCKD_PORT`, `DFLOCKD_AUTH_TOKEN`, …; a value that does not
 * parse is ignored), and check the result as dflockd does. One flag is this
 * server's own: `--server-version 1.10|1.16|2.1`, the generation to answer as.
 *
 * @param args The flags.
 * @param env An environment variable, or undefined.
 * @throws ConfigError on a flag or value dflockd would refuse, in dflockd's words.
 */
export function parseFlags(
  args: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): ParsedFlags {
  const cfg = defaultConfig();
  const set = new Set<string>();
  const ints = new Map<IntKey, bigint>();
  let tokenFlag = "";
  let tokenFile = "";
  let certFile = "";
  let keyFile = "";
  let version = false;
  let serverVersion: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--" || arg === "-" || !arg.startsWith("-")) break;
    const m = /^--?([^-=][^=]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(`bad flag syntax: ${arg}`);
    const name = m[1] as string;
    let value = m[2];
    const isBool = (BOOL_FLAGS as readonly string[]).includes(name);
    if (!isBool && !(name in INT_FLAGS) && !(STRING_FLAGS as readonly string[]).includes(name)) {
      throw new ConfigError(`flag provided but not defined: -${name}`);
    }
    set.add(name);
    if (isBool) {
      const on = value === undefined ? true : parseFlagBool(value);
      if (on === undefined)
        throw new ConfigError(`invalid boolean value ${JSON.stringify(value)} for -${name}: parse error`);
      if (name === "auto-release-on-disconnect") cfg.autoReleaseOnDisconnect = on;
      if (name === "version") version = on;
      continue;
    }
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(`flag needs an argument: -${name}`);
    }
    const int = INT_FLAGS[name];
    if (int !== undefined) {
      const n = parseFlagInt(value);
      if (typeof n === "string")
        throw new ConfigError(`invalid value ${JSON.stringify(value)} for flag -${name}: ${n}`);
      ints.set(int[0], n);
    } else if (name === "host") cfg.host = value;
    else if (name === "auth-token") tokenFlag = value;
    else if (name === "auth-token-file") tokenFile = value;
    else if (name === "tls-cert") certFile = value;
    else if (name === "server-version") serverVersion = value;
    else keyFile = value;
  }
  const fromEnv = (flag: string, variable: string): string | undefined => {
    if (set.has(flag)) return undefined;
    const v = env(variable);
    return v === "" ? undefined : v;
  };
  for (const [flag, [key, variable]] of Object.entries(INT_FLAGS)) {
    const n = parseAtoi(fromEnv(flag, variable) ?? "");
    if (n !== undefined) ints.set(key, n);
  }
  // A duration's seconds become int64 nanoseconds, wrapping as dflockd's do; messages show what came out.
  const nanos = new Map<IntKey, bigint>();
  for (const [key, n] of ints) {
    if (DURATIONS.has(key)) {
      const ns = secondsToNanos(n);
      nanos.set(key, ns);
      cfg[key] = Number(ns) / 1e9;
    } else cfg[key] = Number(n);
  }
  cfg.host = fromEnv("host", "DFLOCKD_HOST") ?? cfg.host;
  certFile = fromEnv("tls-cert", "DFLOCKD_TLS_CERT") ?? certFile;
  keyFile = fromEnv("tls-key", "DFLOCKD_TLS_KEY") ?? keyFile;
  const release = fromEnv("auto-release-on-disconnect", "DFLOCKD_AUTO_RELEASE_ON_DISCONNECT")?.toLowerCase();
  if (release === "1" || release === "yes" || release === "true") cfg.autoReleaseOnDisconnect = true;
  if (release === "0" || release === "no" || release === "false") cfg.autoReleaseOnDisconnect = false;
  // dflockd: DFLOCKD_AUTH_TOKEN, then --auth-token, then --auth-token-file, then DFLOCKD_AUTH_TOKEN_FILE.
  const envToken = env("DFLOCKD_AUTH_TOKEN");
  const token = envToken !== undefined && envToken !== "" ? envToken : tokenFlag;
  if (token !== "") cfg.authToken = token;
  const file = token !== "" ? "" : tokenFile !== "" ? tokenFile : (env("DFLOCKD_AUTH_TOKEN_FILE") ?? "");
  checkConfig(
    cfg,
    (k) => FLAG_OF[k] ?? k,
    (k) =>
      DURATIONS.has(k)
        ? durationString(nanos.get(k) ?? BigInt(Math.round(cfg[k] * 1e9)))
        : String(ints.get(k) ?? cfg[k]),
  );
  if ((certFile === "") !== (keyFile === "")) {
    throw new ConfigError("both --tls-cert and --tls-key must be provided together");
  }
  if (serverVersion !== undefined) {
    if (!isServerVersion(serverVersion)) throw new ConfigError(versionProblem("--server-version", serverVersion));
    applyVersion(cfg, serverVersion);
  }
  return {
    config: cfg,
    authTokenFile: file === "" ? undefined : file,
    tlsCertFile: certFile === "" ? undefined : certFile,
    tlsKeyFile: keyFile === "" ? undefined : keyFile,
    version,
  };
}

/** The auth token from a token file's text, as dflockd reads it: trimmed at both ends; none if that leaves nothing. */
export function tokenFromFile(text: string): string | undefined {
  const token = trimSpace(text);
  return token === "" ? undefined : token;
}

/** Integer settings and the flag that sets each, for messages. */
const FLAG_OF: Readonly<Partial<Record<IntKey, string>>> = Object.fromEntries(
  Object.entries(INT_FLAGS).map(([flag, [key]]) => [key, `--${flag}`]),
);

/**
 * dflockd's own checks of its settings.
 *
 * @param cfg The settings.
 * @param name How to name a setting in a message (default: its flag, `--max-locks`).
 * @param show How to show a setting's value (default: a duration's seconds, `5s`; a number as it is).
 * @throws ConfigError naming the first setting out of range.
 */
export function checkConfig(
  cfg: ServerConfig,
  name: (key: IntKey) => string = (k) => FLAG_OF[k] ?? k,
  show: (key: IntKey) => string = (k) => (DURATIONS.has(k) ? `${cfg[k]}s` : String(cfg[k])),
): void {
  // dflockd's own wording: some checks say what they got, some do not.
  const need = (key: IntKey, ok: boolean, rule: string, got = true): void => {
    const shown = !got ? "" : ` (got ${show(key)})`;
    if (!ok) throw new ConfigError(`${name(key)} must be ${rule}${shown}`);
  };
  need("maxLocks", cfg.maxLocks > 0, "> 0");
  need("defaultLeaseTtlS", cfg.defaultLeaseTtlS > 0, "> 0", false);
  need("leaseSweepIntervalS", cfg.leaseSweepIntervalS > 0, "> 0", false);
  need("gcIntervalS", cfg.gcIntervalS > 0, "> 0", false);
  need("readTimeoutS", cfg.readTimeoutS > 0, "> 0", false);
  need("writeTimeoutS", cfg.writeTimeoutS >= 0, ">= 0");
  need("shutdownTimeoutS", cfg.shutdownTimeoutS >= 0, ">= 0");
  need("port", cfg.port >= 0 && cfg.port <= 65535, "0-65535");
  need("maxConnections", cfg.maxConnections >= 0, ">= 0");
  need("maxWaiters", cfg.maxWaiters >= 0, ">= 0");
  need("gcMaxIdleS", cfg.gcMaxIdleS > 0, "> 0");
}
