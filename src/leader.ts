/**
 * `error_not_leader [host:port]`: the answer of a dflockd cluster follower
 * (upstream's cluster mode, unreleased) to a request that changes state. It
 * proves nothing about a lock: the leader may hold it, under the same token.
 * Here: its typed error, the parse of its reply line, and the one decision
 * it allows an acquisition, a retry against the address it names, only when
 * that is one of the configured servers and at most
 * {@link MAX_LEADER_REDIRECTS} times. What it means for a holding (renewal,
 * release) is the machine's `notLeader` event (machine.ts).
 *
 * @module
 */
import { brand } from "./brand.ts";
import { quote, ServerError } from "./errors.ts";
import type { Target } from "./options.ts";
import { splitHostPort } from "./servers.ts";

/**
 * How many times one acquisition (`acquire()`, `enqueue()`, a `withLock()`
 * or `hold()`) follows `error_not_leader` to the leader it names: a follower
 * names the leader it knows, so in a three-node cluster the first try and two
 * redirects reach every member, even while a new leader is being elected.
 */
export const MAX_LEADER_REDIRECTS = 2;

/**
 * A cluster follower answered `error_not_leader`: it does not take requests
 * that change state, and names the leader it knows, if any. It says nothing
 * about whether a lock is held: a renewal answered this way is tried again
 * while the lease is provable, and is never taken as a loss.
 *
 * An acquisition is sent on to {@link NotLeaderError.leader} when that
 * address is one of the configured servers, written the same way (no name is
 * resolved), at most twice; this error is what it rejects with otherwise.
 *
 * @example
 * ```ts
 * import { DistributedLock, NotLeaderError } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "k", servers: ["10.0.0.1:6388", "10.0.0.2:6388", "10.0.0.3:6388"] });
 * try {
 *   await lock.acquire();
 * } catch (err) {
 *   if (err instanceof NotLeaderError) console.log(err.code, "leader:", err.leader ?? "none known"); // "NOT_LEADER"
 * }
 * ```
 */
export class NotLeaderError extends ServerError {
  /** The leader's `host:port` as the follower sent it; `undefined` when it knows none. */
  readonly leader: string | undefined;

  /**
   * Creates the error.
   *
   * @param command The command the follower answered (`"l"`, `"n"`, ...).
   * @param leader The leader's address it named, if any.
   */
  constructor(command: string, leader: string | undefined) {
    const where = leader === undefined ? "it knows no leader yet" : `the leader is ${quote(leader)}`;
    super(
      `the server is a cluster follower and does not take ${quote(command)}: ${where} (server replied "error_not_leader")`,
      "error_not_leader",
      "NOT_LEADER",
    );
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

brand(NotLeaderError, "NotLeaderError");

const STATUS = "error_not_leader";

/**
 * The error for a reply line that is `error_not_leader`, bare or followed by
 * one space and the leader's address (trimmed; empty means none), else
 * `undefined`.
 */
export function notLeaderOf(line: string, command: string): NotLeaderError | undefined {
  if (line === STATUS) return new NotLeaderError(command, undefined);
  if (!line.startsWith(`${STATUS} `)) return undefined;
  const leader = line.slice(STATUS.length + 1).trim();
  return new NotLeaderError(command, leader === "" ? undefined : leader);
}

/**
 * Where an acquisition that failed with `err` may be sent again, having
 * followed `redirects` redirects so far: the configured server `err` names
 * (host as written, or in brackets for IPv6, and port), else `undefined`.
 */
export function leaderTarget(err: unknown, targets: ReadonlyArray<Target>, redirects: number): Target | undefined {
  if (!(err instanceof NotLeaderError) || err.leader === undefined || redirects >= MAX_LEADER_REDIRECTS) {
    return undefined;
  }
  const named = splitHostPort(err.leader);
  if (!named.ok) return undefined;
  const host = named.host.toLowerCase();
  return targets.find((t) => t.open.port === named.port && t.open.host.toLowerCase() === host);
}
