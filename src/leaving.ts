/**
 * How an instance leaves a pooled connection when its attempt or holding
 * ends: the `leave*` actions of the lock's machine (machine.ts).
 *
 * @module
 */
import type { PendingTry } from "./attempt.ts";
import { ConnectionError, LockError, quote } from "./errors.ts";
import type { Link } from "./link.ts";
import type { Settings } from "./options.ts";
import type { ConnectionPool } from "./pool.ts";
import { commandName, parseOkReply, releaseRequest } from "./protocol.ts";
import { sharedPatience } from "./renewals.ts";

/**
 * `clean`: in a known state (released, refused), for the pool to keep;
 * `broken`: closed, as it can no longer be trusted (everyone else on it is
 * told first); `drop`: abandon what is held there (closed when this is its
 * only user, else a release is sent and the connection stays with the others).
 */
export type Leave = "clean" | "broken" | "drop";

const ignore = (): void => {};

/**
 * Lock `id` (of `s`) leaves `link` as `how` says; `token` is what it holds
 * there, if anything; `reason` why, if it is not a clean end.
 */
export function leaveLink(
  pool: ConnectionPool,
  s: Settings,
  id: string,
  link: Link,
  reason: LockError | undefined,
  how: Leave,
  token: string | undefined,
): void {
  if (pool.closed) how = "broken";
  if (how === "drop" && !link.exclusive && link.users.size > 1) {
    // Others hold on this connection: give back what this instance has, and stay clean.
    if (token !== undefined && !link.conn.closed) {
      const command = commandName(s.kind, "release");
      const timeoutMs = sharedPatience(s);
      link.conn.request(releaseRequest(s.kind, s.key, token), command, parseOkReply, timeoutMs).catch(ignore);
    }
    how = "clean";
  }
  // Others on a connection closed for this instance's sake (those still on it, and requests of
  // those that left, such as a release still due) learn why, not as their own loss.
  const others =
    (link.users.size > 1 || (!link.exclusive && link.conn.pending > 0)) && how !== "clean" && !link.conn.closed;
  const why = others
    ? new ConnectionError(
        `the connection was closed because another holding on it could not be trusted: ${reason?.message ?? "closed"}`,
        { cause: reason },
      )
    : reason;
  pool.leave(link, id, how === "clean", s.readTimeoutMs, why);
}

/** What {@link leaveGeneration} reads of the driver. */
export interface LeaveHost {
  readonly key: string;
  readonly pool: ConnectionPool;
  leaveLink(link: Link, reason: LockError | undefined, how: Leave, token: string | undefined): void;
}

/**
 * The `leave*` actions: an ending generation of `d` leaves `link` as `how`
 * says; `token` is what it held there, `pending` a try still due on it.
 */
export function leaveGeneration(
  d: LeaveHost,
  link: Link | undefined,
  token: string | undefined,
  pending: PendingTry | undefined,
  reason: LockError | undefined,
  how: Leave,
): void {
  if (pending !== undefined) {
    pending.reject(reason ?? new LockError(`${quote(d.key)} was closed`, "ABORTED"));
    // Its reply still leaves the connection (attempt.ts); until then, a client's close() must still reach it.
    if (pending.link === link) {
      pending.orphaned = true;
      d.pool.orphan(link);
    }
  }
  // A request still due on a shared connection: its reply leaves the connection (unless the pool is closing).
  if (link !== undefined && (pending?.link !== link || d.pool.closed)) d.leaveLink(link, reason, how, token);
}
