/**
 * dflockd's reply lines, parsed into typed results or typed errors: grants,
 * queue places, renewals, plain `ok`, and `stats`. Every other form is a
 * {@link ProtocolError}; every `error*` status a {@link ServerError}.
 *
 * @module
 */
import { ProtocolError, ServerError } from "./errors.ts";
import { notLeaderOf } from "./leader.ts";
import type { EnqueueResult, Grant, Renewal } from "./protocol.ts";
import { isPrintableAscii, MAX_TOKEN_CHARS } from "./validate.ts";

function fail(command: string, line: string): never {
  throw new ProtocolError(`malformed reply to "${command}": ${JSON.stringify(line.slice(0, 120))}`, line);
}

/**
 * Throws the typed error for an `error*` status (`status`, the first word of
 * `line`); returns if it is not one. `error_not_leader` carries an address.
 */
function throwIfError(status: string, command: string, line: string): void {
  if (!status.startsWith("error")) return;
  throw (
    (status === "error_not_leader" ? notLeaderOf(line, command) : undefined) ?? ServerError.fromStatus(status, command)
  );
}

/** The first word of a reply line. */
function statusOf(line: string): string {
  const end = line.indexOf(" ");
  return end < 0 ? line : line.slice(0, end);
}

/** Whether `line[from, to)` is a token or fence: 1 to 256 printable ASCII characters, no space. */
function isToken(line: string, from: number, to: number): boolean {
  return to - from <= MAX_TOKEN_CHARS && isPrintableAscii(line, from, to);
}

/**
 * The whole number in `line[from, to)`: 1 to 10 digits without a leading
 * zero; -1 for anything else. Scanned in place, without a substring.
 */
function uintAt(line: string, from: number, to: number): number {
  const n = to - from;
  if (n < 1 || n > 10 || (n > 1 && line.charCodeAt(from) === 0x30)) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = line.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * `<token> <lease>[ <fence>]`, from `from` to the end of `line`. Read with
 * index arithmetic: this runs for every grant, so no split and no pattern.
 */
function grantAt(line: string, from: number, command: string): Grant {
  const tokenEnd = line.indexOf(" ", from);
  if (tokenEnd < 0 || !isToken(line, from, tokenEnd)) fail(command, line);
  const leaseEnd = line.indexOf(" ", tokenEnd + 1);
  const lease = uintAt(line, tokenEnd + 1, leaseEnd < 0 ? line.length : leaseEnd);
  // A grant of no time at all cannot be held: no server sends one.
  if (lease < 1) fail(command, line);
  const token = line.slice(from, tokenEnd);
  if (leaseEnd < 0) return { token, lease };
  // The fence runs to the end: a further space fails the token check.
  if (!isToken(line, leaseEnd + 1, line.length)) fail(command, line);
  return { token, lease, fence: line.slice(leaseEnd + 1) };
}

/**
 * Reply to `l`/`sl`/`w`/`sw`: a {@link Grant}, or `null` for `timeout`.
 * @throws ServerError for `error*`, ProtocolError for anything malformed.
 */
export function parseGrantReply(line: string, command: string): Grant | null {
  if (line.startsWith("ok ")) return grantAt(line, 3, command);
  if (line === "timeout") return null;
  throwIfError(statusOf(line), command, line);
  return fail(command, line);
}

/**
 * Reply to `e`/`se`.
 * @throws ServerError for `error*`, ProtocolError for anything malformed.
 */
export function parseEnqueueReply(line: string, command: string): EnqueueResult {
  if (line.startsWith("acquired ")) return { status: "acquired", ...grantAt(line, 9, command) };
  if (line === "queued") return QUEUED;
  throwIfError(statusOf(line), command, line);
  return fail(command, line);
}

const QUEUED: EnqueueResult = Object.freeze({ status: "queued", token: null, lease: null });

/**
 * Reply to `n`/`sn`: `ok <lease> [<fence>]`, or a bare `ok` from older servers.
 * @throws ServerError for `error*`, ProtocolError for anything malformed.
 */
export function parseRenewReply(line: string, command: string): Renewal {
  const fields = line.split(" ");
  const status = fields[0] as string;
  // Older servers confirm with a bare `ok`: the TTL asked for applies.
  if (status === "ok" && line === "ok") return {};
  if (status === "ok" && (fields.length === 2 || fields.length === 3)) {
    const field = fields[1] as string;
    const lease = uintAt(field, 0, field.length);
    if (lease < 0) fail(command, line);
    if (fields.length === 3) {
      const fence = fields[2] as string;
      if (!isToken(fence, 0, fence.length)) fail(command, line);
      return { lease, fence };
    }
    return { lease };
  }
  throwIfError(status, command, line);
  return fail(command, line);
}

/**
 * A reply that must be exactly `ok` (`r`, `sr`, `auth`, `ping`).
 * @throws ServerError for `error*`, ProtocolError for anything else.
 */
export function parseOkReply(line: string, command: string): void {
  if (line === "ok") return;
  throwIfError(statusOf(line), command, line);
  fail(command, line);
}

/**
 * A held lock as reported by `stats`.
 *
 * @example
 * ```ts
 * import { stats } from "dflockd-client";
 *
 * const s = await stats();
 * for (const l of s.locks) console.log(l.key, l.owner_conn_id, l.lease_expires_in_s, l.waiters);
 * for (const m of s.semaphores) console.log(m.key, `${m.holders}/${m.limit}`, m.waiters);
 * for (const i of s.idle_locks) console.log(i.key, i.idle_s);
 * ```
 */
export interface StatsLock {
  /** The lock's key. */
  key: string;
  /** Server-side id of the connection holding it. */
  owner_conn_id: number;
  /** Seconds until the lease expires unless renewed. */
  lease_expires_in_s: number;
  /** Connections queued for it. */
  waiters: number;
}

/**
 * An active semaphore as reported by `stats`.
 *
 * @example
 * ```ts
 * import { stats } from "dflockd-client";
 *
 * const s = await stats();
 * for (const l of s.locks) console.log(l.key, l.owner_conn_id, l.lease_expires_in_s, l.waiters);
 * for (const m of s.semaphores) console.log(m.key, `${m.holders}/${m.limit}`, m.waiters);
 * for (const i of s.idle_locks) console.log(i.key, i.idle_s);
 * ```
 */
export interface StatsSemaphore {
  /** The semaphore's key. */
  key: string;
  /** Its limit, fixed by its first holder. */
  limit: number;
  /** Current holders. */
  holders: number;
  /** Connections queued for a slot. */
  waiters: number;
}

/**
 * A key with no holders that the server still remembers.
 *
 * @example
 * ```ts
 * import { stats } from "dflockd-client";
 *
 * const s = await stats();
 * for (const l of s.locks) console.log(l.key, l.owner_conn_id, l.lease_expires_in_s, l.waiters);
 * for (const m of s.semaphores) console.log(m.key, `${m.holders}/${m.limit}`, m.waiters);
 * for (const i of s.idle_locks) console.log(i.key, i.idle_s);
 * ```
 */
export interface StatsIdle {
  /** The key. */
  key: string;
  /** Seconds since it was last used. */
  idle_s: number;
}

/**
 * Server statistics. Empty lists are always arrays (some servers send `null`).
 * Fields a newer server adds are kept as they came.
 *
 * @example
 * ```ts
 * import { stats } from "dflockd-client";
 *
 * const s = await stats();
 * for (const l of s.locks) console.log(l.key, l.owner_conn_id, l.lease_expires_in_s, l.waiters);
 * for (const m of s.semaphores) console.log(m.key, `${m.holders}/${m.limit}`, m.waiters);
 * for (const i of s.idle_locks) console.log(i.key, i.idle_s);
 * ```
 */
export interface Stats {
  /** Open client connections. */
  connections: number;
  /** Held locks. */
  locks: StatsLock[];
  /** Semaphores with holders. */
  semaphores: StatsSemaphore[];
  /** Idle lock keys awaiting garbage collection. */
  idle_locks: StatsIdle[];
  /** Idle semaphore keys awaiting garbage collection. */
  idle_semaphores: StatsIdle[];
  /** Anything else the server reported. */
  [extra: string]: unknown;
}

const LIST_FIELDS = ["locks", "semaphores", "idle_locks", "idle_semaphores"] as const;

/**
 * Reply to `stats`: `ok <json>`.
 * @throws ServerError for `error*`, ProtocolError for anything malformed.
 */
export function parseStatsReply(line: string): Stats {
  if (!line.startsWith("ok ")) {
    throwIfError(line.split(" ")[0] as string, "stats", line);
    fail("stats", line);
  }
  let data: unknown;
  try {
    data = JSON.parse(line.slice(3));
  } catch {
    fail("stats", line);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) fail("stats", line);
  const out = data as Record<string, unknown>;
  if (typeof out.connections !== "number") fail("stats", line);
  for (const f of LIST_FIELDS) {
    const v = out[f];
    if (v === null || v === undefined) out[f] = [];
    else if (!Array.isArray(v)) fail("stats", line);
  }
  return out as Stats;
}
