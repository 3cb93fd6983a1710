/**
 * Settings of the dflockd double, read from the same command-line flags the
 * harness passes to a real dflockd, plus the reply forms of newer servers,
 * which a real server's version decides and the double takes as options.
 */
import { trimSpace } from "./wire.ts";

/** Everything that changes how the double behaves. */
export interface DoubleConfig {
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
  shutdownTimeoutS: number;
  autoReleaseOnDisconnect: boolean;
  authToken: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Append a fence number to token and renew replies, and the extra stats fields of such builds. */
  fence: boolean;
  /** Answer `ping` with `ok` (v1.14+); else it is an unknown command. */
  ping: boolean;
  /** While stopping gracefully, answer requests with `error_draining` (v1.16+). */
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
  /** Timeouts and leases above 9223372036 s are refused (later builds). */
  secondsCap: boolean;
}

/** The reply forms a double can take on; each matches some real server build. */
export interface DoubleOptions {
  /** See {@link DoubleConfig.fence}. */
  fence?: boolean;
  /** See {@link DoubleConfig.ping}. */
  ping?: boolean;
  /** See {@link DoubleConfig.draining}. */
  draining?: boolean;
  /** See {@link DoubleConfig.leaseExpired}. */
  leaseExpired?: boolean;
  /** See {@link DoubleConfig.crAnywhere}. */
  crAnywhere?: boolean;
  /** See {@link DoubleConfig.secondsCap}. */
  secondsCap?: boolean;
}

/** The real server's defaults. */
export function defaultConfig(): DoubleConfig {
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
  };
}

type IntKey = {
  [K in keyof DoubleConfig]: DoubleConfig[K] extends number ? K : never;
}[keyof DoubleConfig];

const INT_FLAGS: Record<string, IntKey> = {
  port: "port",
  "default-lease-ttl": "defaultLeaseTtlS",
  "lease-sweep-interval": "leaseSweepIntervalS",
  "gc-interval": "gcIntervalS",
  "gc-max-idle": "gcMaxIdleS",
  "max-locks": "maxLocks",
  "max-waiters": "maxWaiters",
  "max-connections": "maxConnections",
  "read-timeout": "readTimeoutS",
  "write-timeout": "writeTimeoutS",
  "shutdown-timeout": "shutdownTimeoutS",
};

const STRING_FLAGS = ["host", "auth-token", "auth-token-file", "tls-cert", "tls-key"] as const;
const BOOL_FLAGS = ["auto-release-on-disconnect", "debug"] as const;

/**
 * Parse real-server flags (`--name value`, `--name=value`, one or two dashes;
 * booleans only as `--name` or `--name=true|false`), as dflockd's own flag
 * parsing does. `readFile` reads `--auth-token-file` (first line, trailing
 * whitespace stripped). Throws on a flag dflockd would refuse.
 */
export function parseFlags(
  args: readonly string[],
  options: DoubleOptions = {},
  readFile: (path: string) => string = () => {
    throw new Error("--auth-token-file needs a file reader");
  },
): DoubleConfig {
  const cfg = defaultConfig();
  let tokenFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new Error(`dflockd double: unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1] as string;
    let value = m[2];
    if ((BOOL_FLAGS as readonly string[]).includes(name)) {
      if (value !== undefined && value !== "true" && value !== "false") {
        throw new Error(`dflockd double: invalid boolean value ${JSON.stringify(value)} for -${name}`);
      }
      if (name === "auto-release-on-disconnect") cfg.autoReleaseOnDisconnect = value !== "false";
      continue;
    }
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new Error(`dflockd double: flag needs an argument: -${name}`);
    }
    const intKey = INT_FLAGS[name];
    if (intKey !== undefined) {
      if (!/^[+-]?\d+$/.test(value))
        throw new Error(`dflockd double: invalid value ${JSON.stringify(value)} for -${name}`);
      cfg[intKey] = Number(value);
    } else if ((STRING_FLAGS as readonly string[]).includes(name)) {
      if (name === "host") cfg.host = value;
      else if (name === "auth-token") cfg.authToken = value;
      else if (name === "auth-token-file") tokenFile = value;
      else if (name === "tls-cert") cfg.tlsCert = value;
      else cfg.tlsKey = value;
    } else {
      throw new Error(`dflockd double: flag provided but not defined: -${name}`);
    }
  }
  // The file's content is trimmed at both ends (a flag's value is taken as it is).
  if (tokenFile !== undefined) cfg.authToken = trimSpace(readFile(tokenFile));
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined)) {
    throw new Error("dflockd double: --tls-cert and --tls-key go together");
  }
  cfg.fence = options.fence ?? false;
  cfg.ping = options.ping ?? false;
  cfg.draining = options.draining ?? false;
  cfg.leaseExpired = options.leaseExpired ?? false;
  cfg.crAnywhere = options.crAnywhere ?? false;
  cfg.secondsCap = options.secondsCap ?? false;
  return cfg;
}
