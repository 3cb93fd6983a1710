/**
 * The dflockd double for this project's own tests: the shipped
 * dflockd-compatible server (src/server, the same one `startTestServer()` and
 * `dflockd-client serve` run), started in this process from a real server's
 * flags, with the reply forms of later builds as options.
 *
 * @example
 * ```ts
 * const server = await startDouble(["--read-timeout", "2"]);
 * // ... connect to server.port ...
 * await server.stop();
 * ```
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { bunListen } from "../../adapters/bun/listen.ts";
import { denoListen } from "../../adapters/deno/listen.ts";
import { nodeListen } from "../../adapters/node/listen.ts";
import { parseFlags, type ServerConfig, type ServerForms, tokenFromFile } from "../../src/server/config.ts";
import { startServer } from "../../src/server/server.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
/** The listener of the runtime the tests run on, as `startTestServer()` picks it. */
const listen = g.Deno !== undefined ? denoListen : g.Bun !== undefined ? bunListen : nodeListen;

/** The reply forms of later builds (see ServerConfig). */
export type DoubleOptions = ServerForms;

/** A running double. */
export interface DoubleServer {
  readonly host: string;
  readonly port: number;
  /** `[host, port]`, ready for the `servers` option. */
  readonly address: [string, number];
  /** The settings in force. */
  readonly config: ServerConfig;
  /** Open client connections. */
  connections(): number;
  /** Begin a graceful shutdown, as on SIGTERM, without waiting for it (see `shutdown()`). */
  drain(): void;
  /** Shut down as on SIGTERM; resolves when every connection is gone. */
  shutdown(): Promise<void>;
  /** Stop: stop accepting, close every connection, resolve when done. */
  stop(): Promise<void>;
  /** Stop as on SIGKILL: every connection dropped at once. */
  kill(): Promise<void>;
}

/**
 * Start a double with real-server `flags` (`--port 0` or no `--port`: a free
 * port is picked) and the reply forms in `options`. The generation is the
 * flags' `--server-version`, else `DFLOCKD_DOUBLE_VERSION`, else 1.10.
 */
export async function startDouble(flags: readonly string[] = [], options: DoubleOptions = {}): Promise<DoubleServer> {
  const hasPort = flags.some((f) => /^--?port(=|$)/.test(f));
  // DFLOCKD_DOUBLE_VERSION (1.10, 1.16, 2.1) runs a suite against another generation, unless the flags name one.
  const version = process.env.DFLOCKD_DOUBLE_VERSION;
  const pick = version !== undefined && !flags.some((f) => /^--?server-version(=|$)/.test(f));
  const parsed = parseFlags([
    ...flags,
    ...(hasPort ? [] : ["--port", "0"]),
    ...(pick ? ["--server-version", version] : []),
  ]);
  const cfg: ServerConfig = { ...parsed.config, ...options };
  if (parsed.authTokenFile !== undefined) cfg.authToken = tokenFromFile(readFileSync(parsed.authTokenFile, "utf8"));
  if (parsed.tlsCertFile !== undefined && parsed.tlsKeyFile !== undefined) {
    cfg.tlsCert = readFileSync(parsed.tlsCertFile, "utf8");
    cfg.tlsKey = readFileSync(parsed.tlsKeyFile, "utf8");
  }
  const s = await startServer(cfg, listen);
  return {
    host: s.host,
    port: s.port,
    address: [s.host, s.port],
    config: cfg,
    connections: () => s.connections(),
    drain: () => void s.shutdown(),
    shutdown: () => s.shutdown(),
    stop: () => s.stop(),
    kill: () => s.kill(),
  };
}
