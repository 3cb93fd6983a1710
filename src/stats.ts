/**
 * {@link stats}: one server's runtime statistics, on a connection of its
 * own or on one the caller owns. The server is given in any form the rest of
 * the API takes (`"host:port"`, `[host, port]`, `{ server }`, a one-server
 * `{ servers }`), or as the `{ host, port }` options it has always taken.
 *
 * @module
 */
import { asConnection, type SocketLike } from "./adopt.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./connection.ts";
import { InvalidArgumentError } from "./errors.ts";
import { CONNECT_KEYS, type ConnectOptions, connect } from "./open.ts";
import { encodeStats, parseStatsReply, type Stats } from "./protocol.ts";
import { readServer, type ServerAddress } from "./servers.ts";
import { checkKnownKeys, checkOptionMillis, describeValue } from "./validate.ts";

/**
 * Options of {@link stats}: which server (`server`, a one-server `servers`,
 * or the older `host` and `port`), how to connect, and how long to wait.
 *
 * @example
 * ```ts
 * import { stats, type StatsOptions } from "dflockd-client";
 *
 * const opts: StatsOptions = { host: "127.0.0.1", port: 6388, requestTimeoutMs: 1000 };
 * const s = await stats(opts);
 * const t = await stats({ server: "127.0.0.1:6388", connectTimeoutMs: 2000 });
 * ```
 */
export interface StatsOptions extends ConnectOptions {
  /** The server to ask, as `"host:port"` or `[host, port]`; instead of `host` and `port`. */
  server?: ServerAddress | undefined;
  /**
   * A `servers` list of exactly one server, so that one options object can
   * serve a `DflockdClient` and `stats()`. Statistics are per server: for
   * several, use `new DflockdClient({ servers }).stats()`, which asks each.
   */
  servers?: ReadonlyArray<ServerAddress> | undefined;
  /** Milliseconds allowed for the reply. Default `5000`. */
  requestTimeoutMs?: number | undefined;
}

const STATS_KEYS: ReadonlySet<string> = new Set([...CONNECT_KEYS, "server", "servers", "requestTimeoutMs"]);

/**
 * Fetch one server's runtime statistics. Opens its own connection unless you
 * pass one with `stats(conn)` (a `Connection` from `connect()`, or on Node a
 * `net.Socket`). The server may be given as the rest of the API gives servers:
 * `stats("10.0.0.1:6388")`, `stats(["10.0.0.1", 6388])`,
 * `stats({ server: "10.0.0.1:6388", tls: true })` or a one-server
 * `stats({ servers: ["10.0.0.1:6388"] })`; `stats({ host, port })` keeps
 * working. For every server of a list, use `DflockdClient.stats()`.
 *
 * @param target Where to ask (default `127.0.0.1:6388`): a server, options, or an open connection.
 * @returns Connection count, held locks, active semaphores and idle keys.
 * @throws InvalidArgumentError before connecting, for a bad server or option,
 *   `server` together with `host`/`port`, or a `servers` list of more than one server.
 * @example
 * ```ts
 * import { stats } from "dflockd-client";
 *
 * const s = await stats({ host: "127.0.0.1", port: 6388 });
 * console.log(s.connections, s.locks.length, s.semaphores.length);
 * const same = await stats("127.0.0.1:6388");
 * console.log(same.connections);
 * ```
 */
export async function stats(target: ServerAddress | StatsOptions | SocketLike = {}): Promise<Stats> {
  if (isAddress(target)) return fetchStats({ server: target });
  if (!isOptions(target)) {
    return asConnection(target).request(encodeStats(), "stats", parseStatsReply, DEFAULT_REQUEST_TIMEOUT_MS);
  }
  return fetchStats(target);
}

async function fetchStats(target: StatsOptions): Promise<Stats> {
  checkKnownKeys("stats() options", target, STATS_KEYS);
  const { requestTimeoutMs, server, servers, ...where } = target;
  const timeoutMs = checkOptionMillis("requestTimeoutMs", requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  const pair = serverOf(server, servers);
  if (pair !== undefined) {
    if (where.host !== undefined || where.port !== undefined) {
      const given = server !== undefined ? "server" : "servers";
      throw new InvalidArgumentError(`stats(): give either ${given} or host/port, not both`);
    }
    [where.host, where.port] = pair;
  }
  const conn = await connect(where);
  try {
    return await conn.request(encodeStats(), "stats", parseStatsReply, timeoutMs);
  } finally {
    conn.close();
  }
}

/** The one server named by `server` or `servers`, checked; `undefined` if neither is given. */
function serverOf(
  server: ServerAddress | undefined,
  servers: ReadonlyArray<ServerAddress> | undefined,
): readonly [string, number] | undefined {
  if (servers !== undefined) {
    if (server !== undefined) throw new InvalidArgumentError("stats(): give either server or servers, not both");
    if (!Array.isArray(servers) || servers.length !== 1) {
      const n = Array.isArray(servers) ? `${servers.length} servers` : describeValue(servers);
      throw new InvalidArgumentError(
        `stats() asks one server: servers must list exactly one, got ${n}; ` +
          "for every server of a list, use new DflockdClient({ servers }).stats()",
      );
    }
    return readServer(servers[0], "stats() servers[0]");
  }
  return server === undefined ? undefined : readServer(server, "stats() server");
}

/** A server as a string or an array (a `readonly` one included, which `Array.isArray` does not narrow). */
function isAddress(value: unknown): value is ServerAddress {
  return typeof value === "string" || Array.isArray(value);
}

/** A plain object (options), as opposed to a connection or socket. */
function isOptions(value: unknown): value is StatsOptions {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
