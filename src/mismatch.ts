/**
 * `error_limit_mismatch` told in full: the key, the server, the limit asked
 * for and, where the server's `stats` can tell it, the limit the server has.
 * dflockd keeps locks and semaphores in one table (a lock is limit 1), so a
 * lock and a semaphore of one key mismatch too. `stats` lists a lock's key
 * (held or idle) and a held or waited-for semaphore's key with its limit,
 * but an idle semaphore's key without it.
 *
 * @module
 */
import { quote, ServerError } from "./errors.ts";
import { openConnection } from "./open.ts";
import { pickServer, type Settings, serverOf } from "./options.ts";
import { encodeStats, parseStatsReply, type Stats } from "./protocol.ts";
import { backgroundTimer } from "./transport.ts";

/** Longest wait for the `stats` that tell the server's limit (connect included). */
const STATS_WAIT_MS = 2000;

/**
 * A semaphore (or lock) was asked for with a limit other than the one the
 * server has for its key: every holder of a key must use the same limit.
 * `code` is `"LIMIT_MISMATCH"`, `status` `"error_limit_mismatch"`.
 *
 * @example
 * ```ts
 * import { DistributedSemaphore, LimitMismatchError } from "dflockd-client";
 *
 * try {
 *   await new DistributedSemaphore({ key: "pool", limit: 3 }).withLock(async () => {});
 * } catch (err) {
 *   if (err instanceof LimitMismatchError) console.error(err.limit, "asked;", err.serverLimit, "on the server");
 * }
 * ```
 */
export class LimitMismatchError extends ServerError {
  /** The key asked for. */
  readonly key: string;
  /** The server's `host:port`, when known. */
  readonly server: string | undefined;
  /** The limit asked for (1 for a lock). */
  readonly limit: number;
  /** The limit the server has for the key (1: it is a lock), or `undefined` when its stats could not tell. */
  readonly serverLimit: number | undefined;

  /**
   * Creates the error.
   *
   * @param key The key asked for.
   * @param limit The limit asked for (1 for a lock).
   * @param server The server's `host:port`, when known.
   * @param serverLimit The limit the server has, when known.
   */
  constructor(key: string, limit: number, server?: string, serverLimit?: number) {
    const asked = limit === 1 ? "as a lock (limit 1)" : `with limit ${limit}`;
    const has =
      serverLimit === undefined
        ? "with another limit (stats list a held semaphore's limit)"
        : serverLimit === 1
          ? "as a lock (limit 1)"
          : `as a semaphore with limit ${serverLimit}`;
    const where = server === undefined ? "" : `${server}: `;
    super(
      `${where}${quote(key)} was asked for ${asked}, but the server has it ${has} (server replied "error_limit_mismatch"): every holder of a key must use the same limit`,
      "error_limit_mismatch",
      "LIMIT_MISMATCH",
    );
    this.name = "LimitMismatchError";
    this.key = key;
    this.server = server;
    this.limit = limit;
    this.serverLimit = serverLimit;
  }
}

/** The limit `stats` shows for `key`: 1 for a lock, a semaphore's limit, or `undefined`. */
export function limitInStats(s: Stats, key: string): number | undefined {
  if (s.locks.some((l) => l.key === key) || s.idle_locks.some((l) => l.key === key)) return 1;
  const limit = s.semaphores.find((m) => m.key === key)?.limit;
  return typeof limit === "number" ? limit : undefined;
}

/** Whether `err` is the server's `error_limit_mismatch`, not yet told in full. */
export function isBareMismatch(err: unknown): err is ServerError {
  return err instanceof ServerError && err.code === "LIMIT_MISMATCH" && !(err instanceof LimitMismatchError);
}

/**
 * `parse`, with a bare `error_limit_mismatch` it throws told in full: the
 * key, the limit asked for and the server (for the low-level functions,
 * which ask no stats on a connection the caller owns).
 */
export function namingMismatch<T>(
  parse: (line: string, command: string) => T,
  key: string,
  limit: number,
  server: string | undefined,
): (line: string, command: string) => T {
  return (line, command) => {
    try {
      return parse(line, command);
    } catch (err) {
      throw isBareMismatch(err) ? new LimitMismatchError(key, limit, server) : err;
    }
  };
}

/**
 * The full error for an instance's `error_limit_mismatch`: asks the server's
 * `stats` on a connection of its own, for {@link STATS_WAIT_MS} at most, and
 * words the error without the server's limit if that fails.
 */
export async function explainMismatch(s: Settings): Promise<LimitMismatchError> {
  const limit = s.limit ?? 1;
  const server = serverOf(s);
  let serverLimit: number | undefined;
  const give = new AbortController();
  const timer = backgroundTimer(() => give.abort(), STATS_WAIT_MS);
  const started = performance.now();
  try {
    const conn = await openConnection(pickServer(s).open, give.signal);
    try {
      const left = Math.max(1, STATS_WAIT_MS - (performance.now() - started));
      give.signal.addEventListener("abort", () => conn.close(), { once: true });
      serverLimit = limitInStats(await conn.request(encodeStats(), "stats", parseStatsReply, left), s.key);
    } finally {
      conn.close();
    }
  } catch {
    // No stats in time: the error says less, and is still the mismatch.
  } finally {
    clearTimeout(timer);
  }
  return new LimitMismatchError(s.key, limit, server, serverLimit);
}
