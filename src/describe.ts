/**
 * The one-line descriptions `toString()` gives of locks, semaphores,
 * holdings and clients, for logs and template strings: what it is, its key,
 * where, and its state. Never a token or a secret. The fields are those of
 * `toJSON()`, which `console.log` shows.
 *
 * @module
 */
import { LockLostError } from "./errors.ts";
import type { LeaseState } from "./machine.ts";
import { quote } from "./quote.ts";

/** Longest key shown, in code points: a description stays one short line. */
const KEY_CHARS = 60;
/** Most keys a {@link describeHeldLocks} names before "and N more". */
const MAX_KEYS = 8;

/** The key and where it goes: `key "k" on 127.0.0.1:6388`, `key "k" limit 3 on ...` for a semaphore. */
function keyOn(key: string, limit: number | undefined, server: string): string {
  return `key ${quote(key, KEY_CHARS)}${limit === undefined ? "" : ` limit ${limit}`} on ${server}`;
}

/** `, fence 17` when there is a fence. */
function fenced(fence: string | undefined): string {
  return fence === undefined ? "" : `, fence ${fence}`;
}

/**
 * `DistributedLock(key "k" on 127.0.0.1:6388, held, fence 17)`, or
 * `DistributedSemaphore(key "k" limit 3 on 127.0.0.1:6388, released)`.
 */
export function describeLock(
  limit: number | undefined,
  s: { readonly key: string; readonly state: LeaseState; readonly server: string; readonly fence?: string | undefined },
): string {
  const name = limit === undefined ? "DistributedLock" : "DistributedSemaphore";
  return `${name}(${keyOn(s.key, limit, s.server)}, ${s.state}${fenced(s.fence)})`;
}

/**
 * A holding's state as its owner can tell it without reading the clock:
 * `released` by its owner, `lost` (the signal's reason is a `LockLostError`),
 * `ended` (closed), or `held`.
 */
function holdingState(released: boolean, signal: AbortSignal): string {
  if (released) return "released";
  if (!signal.aborted) return "held";
  return signal.reason instanceof LockLostError ? "lost" : "ended";
}

/** `HeldLock(key "k" on 127.0.0.1:6388, held, fence 17)`. */
export function describeHeld(
  key: string,
  limit: number | undefined,
  server: string,
  fence: string | undefined,
  released: boolean,
  signal: AbortSignal,
): string {
  return `HeldLock(${keyOn(key, limit, server)}, ${holdingState(released, signal)}${fenced(fence)})`;
}

/**
 * `HeldLocks(3 keys, held: "a", "b" on 127.0.0.1:6388; "c" on 10.0.0.2:6388)`:
 * the keys in the order they were taken, those on one server together.
 */
export function describeHeldLocks(
  locks: ReadonlyArray<{ readonly key: string; readonly server: string }>,
  released: boolean,
  signal: AbortSignal,
): string {
  const groups: string[] = [];
  let keys: string[] = [];
  let server: string | undefined;
  const shown = locks.slice(0, MAX_KEYS);
  for (const h of shown) {
    if (server !== undefined && h.server !== server) {
      groups.push(`${keys.join(", ")} on ${server}`);
      keys = [];
    }
    server = h.server;
    keys.push(quote(h.key, KEY_CHARS));
  }
  if (server !== undefined) groups.push(`${keys.join(", ")} on ${server}`);
  const more = locks.length > shown.length ? `; and ${locks.length - shown.length} more` : "";
  const n = locks.length === 1 ? "1 key" : `${locks.length} keys`;
  return `HeldLocks(${n}, ${holdingState(released, signal)}: ${groups.join("; ")}${more})`;
}

/** `DflockdClient(servers 10.0.0.1:6388 10.0.0.2:6388, open)`. */
export function describeClient(targets: ReadonlyArray<{ readonly server: string }>, closed: boolean): string {
  const servers = targets.map((t) => t.server).join(" ");
  return `DflockdClient(servers ${servers}, ${closed ? "closed" : "open"})`;
}
