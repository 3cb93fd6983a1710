/**
 * `startTestServer()`: the dflockd-compatible server as an object a test
 * controls, with options named like the library's (`readTimeoutS`), and the
 * controls a test needs: stop, crash, restart on the same port, stats.
 *
 * @module
 */
import type { Stats } from "../replies.ts";
import { brand, hasInstance } from "./brand.ts";
import {
  applyVersion,
  ConfigError,
  checkConfig,
  defaultConfig,
  type IntKey,
  type ServerConfig,
  type ServerForms,
} from "./config.ts";
import type { Listen } from "./listen.ts";
import { type RunningServer, startServer } from "./server.ts";
import { isServerVersion, type ServerVersion, versionProblem } from "./versions.ts";

/**
 * Settings of a test server: dflockd's flags, named as options. Every one is
 * optional; the defaults are dflockd's, but the port, which is a free one.
 *
 * @example
 * ```ts
 * import { startTestServer, type TestServerOptions } from "dflockd-client/testing";
 *
 * const options: TestServerOptions = { defaultLeaseTtlS: 2, readTimeoutS: 5, maxWaiters: 10 };
 * await using server = await startTestServer(options);
 * ```
 */
export interface TestServerOptions {
  /** Address to listen on. Default `"127.0.0.1"`. */
  host?: string | undefined;
  /** Port to listen on; default `0`, a free port (read it from {@link TestServer.port}). */
  port?: number | undefined;
  /** Lease of a grant that names none, in seconds (`--default-lease-ttl`). Default `33`. */
  defaultLeaseTtlS?: number | undefined;
  /** How often leases that ran out are swept, in seconds (`--lease-sweep-interval`). Default `1`. */
  leaseSweepIntervalS?: number | undefined;
  /** A connection silent this long, in seconds, is closed (`--read-timeout`). Default `23`. */
  readTimeoutS?: number | undefined;
  /** Most keys at once (`--max-locks`). Default `1024`. */
  maxLocks?: number | undefined;
  /** Most waiters per key, `0` for no limit (`--max-waiters`). Default `0`. */
  maxWaiters?: number | undefined;
  /** Most connections at once, `0` for no limit (`--max-connections`). Default `0`. */
  maxConnections?: number | undefined;
  /** Require this token first on every connection (`--auth-token`). Default: none. */
  authToken?: string | undefined;
  /** Serve TLS with this PEM certificate chain and key (the text, not paths). Default: plain TCP. */
  tls?: { readonly cert: string; readonly key: string } | undefined;
  /** How often idle keys are collected, in seconds (`--gc-interval`). Default `5`. */
  gcIntervalS?: number | undefined;
  /** A key untouched this long, in seconds, is collected (`--gc-max-idle`). Default `60`. */
  gcMaxIdleS?: number | undefined;
  /** Release what a connection held when it closes (`--auto-release-on-disconnect`). Default `true`. */
  autoReleaseOnDisconnect?: boolean | undefined;
  /**
   * How long, in seconds, a connection whose replies back up unread (past 64 KiB) may leave them unread
   * before it is dropped, `0` for ever (`--write-timeout`). Default `5`.
   */
  writeTimeoutS?: number | undefined;
  /** How long {@link TestServer.shutdown} waits for connections, in seconds, `0` for ever (`--shutdown-timeout`). Default `30`. */
  shutdownTimeoutS?: number | undefined;
  /**
   * The dflockd generation to answer as (`--server-version`). Default `"1.10"`, checked against a real v1.10.0.
   * `"1.16"`: `ping`, lock and semaphore keys apart, seconds past 9223372036 refused, `auth` lines up to 64 KiB,
   * a peer that closes while blocked leaves the queue at once, `error_draining` then a close during a shutdown.
   * `"2.1"`: the same, without 1.16's `signal_channels` in stats, and every token carries a fence (its first 16
   * hex characters, a big-endian number that rises on every grant). The later two are modelled from upstream's
   * source.
   */
  version?: ServerVersion | undefined;
}

/**
 * A running test server. Stop it when done (`await using` does).
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 * import { startTestServer } from "dflockd-client/testing";
 *
 * await using server = await startTestServer();
 * await new DistributedLock({ key: "job", servers: server.servers }).withLock(async () => {
 *   console.log((await server.stats()).locks.length); // 1
 * });
 * ```
 */
export interface TestServer extends AsyncDisposable {
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on (the same after {@link TestServer.restart}). */
  readonly port: number;
  /** `[[host, port]]`, ready for the library's `servers` option. */
  readonly servers: readonly [readonly [string, number]];
  /** The server's `stats`, as a client's `stats()` would return them. */
  stats(): Promise<Stats>;
  /** Stop: stop listening and close every connection. Resolves once nothing listens or is connected. */
  stop(): Promise<void>;
  /**
   * Shut down as dflockd does on SIGTERM: stop listening, answer blocked
   * requests with `error`, serve open connections until they close or
   * `shutdownTimeoutS` passes. Resolves once every connection is gone.
   */
  shutdown(): Promise<void>;
  /** Crash: drop every connection at once and stop listening, with no reply. Everything held is forgotten. */
  kill(): Promise<void>;
  /** Start again on the same port with nothing held, as after a crash and a restart (kills it first if running). */
  restart(): Promise<void>;
  /** Same as {@link TestServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A stopped test server was asked for what only a running one has.
 *
 * @example
 * ```ts
 * import { startTestServer, TestServerStoppedError } from "dflockd-client/testing";
 *
 * const server = await startTestServer();
 * await server.kill();
 * await server.stats().catch((err) => console.log(err instanceof TestServerStoppedError)); // true
 * await server.restart();
 * await server.stop();
 * ```
 */
export class TestServerStoppedError extends Error {
  /**
   * `instanceof` that also recognises a `TestServerStoppedError` made by another copy of
   * `dflockd-client/testing` in the same process (its CommonJS build beside
   * its ESM build), by a brand registered with `Symbol.for()`, as for the
   * `LockError` family. A class of your own that extends it is checked by its
   * prototype chain only.
   *
   * @param value What is being tested.
   * @returns Whether `value` is a `TestServerStoppedError`, from any copy.
   * @example
   * ```ts
   * import { TestServerStoppedError } from "dflockd-client/testing";
   *
   * console.log(new TestServerStoppedError() instanceof TestServerStoppedError); // true
   * ```
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of `instanceof`, maybe a subclass.
    return hasInstance(this, value);
  }

  /** The error, with a message that names the fix. */
  constructor() {
    super("the test server is stopped: call restart() to start it again");
    this.name = "TestServerStoppedError";
  }
}
brand(TestServerStoppedError, "TestServerStoppedError");

/** The integer options: the settings' own names. */
const INT_OPTIONS: readonly IntKey[] = [
  "writeTimeoutS",
  "port",
  "defaultLeaseTtlS",
  "leaseSweepIntervalS",
  "gcIntervalS",
  "gcMaxIdleS",
  "maxLocks",
  "maxWaiters",
  "maxConnections",
  "readTimeoutS",
  "shutdownTimeoutS",
];
const OTHER_OPTIONS = ["host", "authToken", "tls", "autoReleaseOnDisconnect", "version"] as const;

/**
 * Check `options` and turn them into settings.
 * @throws ConfigError on an unknown option or a value dflockd would refuse.
 */
export function testServerConfig(options: TestServerOptions = {}, forms: ServerForms = {}): ServerConfig {
  if (typeof options !== "object" || options === null)
    throw new ConfigError("startTestServer options must be an object");
  const cfg = defaultConfig();
  cfg.port = 0;
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if ((INT_OPTIONS as readonly string[]).includes(name)) {
      if (typeof value !== "number" || !Number.isSafeInteger(value)) {
        throw new ConfigError(`${name} must be a whole number (got ${String(value)})`);
      }
      cfg[name as IntKey] = value;
    } else if (name === "host" || name === "authToken") {
      if (typeof value !== "string" || value === "") throw new ConfigError(`${name} must be a non-empty string`);
      if (name === "host") cfg.host = value;
      else cfg.authToken = value;
    } else if (name === "autoReleaseOnDisconnect") {
      if (typeof value !== "boolean") throw new ConfigError(`${name} must be true or false`);
      cfg.autoReleaseOnDisconnect = value;
    } else if (name === "version") {
      if (!isServerVersion(value)) throw new ConfigError(versionProblem(name, value));
      applyVersion(cfg, value);
    } else if (name === "tls") {
      const t = (typeof value === "object" && value !== null ? value : {}) as { cert?: unknown; key?: unknown };
      if (typeof t.cert !== "string" || typeof t.key !== "string") {
        throw new ConfigError("tls must be { cert, key }, each the PEM text (not a path)");
      }
      if (!t.cert.includes("-----BEGIN CERTIFICATE-----") || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(t.key)) {
        throw new ConfigError(
          "tls.cert and tls.key must be PEM text (-----BEGIN CERTIFICATE----- and -----BEGIN ... PRIVATE KEY-----), not paths: read the files first",
        );
      }
      cfg.tlsCert = t.cert;
      cfg.tlsKey = t.key;
    } else {
      const known = [...INT_OPTIONS, ...OTHER_OPTIONS].join(", ");
      throw new ConfigError(`unknown option ${JSON.stringify(name)} for startTestServer: expected one of ${known}`);
    }
  }
  checkConfig(cfg, (k) => k);
  return { ...cfg, ...forms };
}

/**
 * Start a test server on `listen` (the runtime's listener).
 *
 * @param listen The runtime's listener.
 * @param cfg Settings from {@link testServerConfig}.
 * @returns The server, once it accepts connections.
 */
export async function startTestServerOn(listen: Listen, cfg: ServerConfig): Promise<TestServer> {
  // The server alive now, serving or draining; undefined once stopped.
  let current: RunningServer | undefined = await startServer(cfg, listen);
  const port = current.port;
  const host = cfg.host;
  // The controls take effect one after another, in the order they were called.
  let queue: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(step: () => Promise<T>): Promise<T> => {
    const next = queue.then(step);
    queue = next.catch(() => {});
    return next;
  };
  /** End the current server with `how`; a shutdown's wait for its connections does not hold up later controls. */
  const end = (how: "stop" | "kill" | "shutdown"): Promise<void> =>
    inTurn(async () => {
      const r = current;
      const ended = r?.[how]().then(() => {
        if (current === r) current = undefined;
      });
      // Boxed, so that the queue moves on without waiting for a drain.
      return { ended };
    }).then(({ ended }) => ended);
  const server: TestServer = {
    host,
    port,
    servers: [[host, port]],
    stats: async () => {
      if (current === undefined) throw new TestServerStoppedError();
      return JSON.parse(current.statsJson()) as Stats;
    },
    stop: () => end("stop"),
    shutdown: () => end("shutdown"),
    kill: () => end("kill"),
    restart: () =>
      inTurn(async () => {
        const old = current;
        current = undefined; // stopped, even if the port cannot be had again
        await old?.kill();
        current = await startServer({ ...cfg, port }, listen);
      }),
    [Symbol.asyncDispose]: () => end("stop"),
  };
  return server;
}
