/**
 * Low-level functions: one request, one reply, on a connection the caller
 * owns. Nothing is renewed for you; closing the connection releases what it
 * holds. Every argument is checked before a byte is written.
 *
 * The first argument is a `Connection` from `connect()`, or a `net.Socket`
 * you created.
 *
 * @module
 */
import { asConnection, type SocketLike } from "./adopt.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./connection.ts";
import { AcquireTimeoutError } from "./errors.ts";
import { isPingRefusal } from "./keepalive.ts";
import { namingMismatch } from "./mismatch.ts";
import {
  commandName,
  type EnqueueResult,
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeRenew,
  encodeWait,
  type Grant,
  type Kind,
  PING_REQUEST,
  parseEnqueueReply,
  parseGrantReply,
  parseOkReply,
  parseRenewReply,
} from "./protocol.ts";

const GRACE_MS = 5_000;

function send<T>(
  sock: SocketLike,
  bytes: string,
  command: string,
  parse: (line: string, command: string) => T,
  timeoutMs: number,
): Promise<T> {
  return asConnection(sock).request(bytes, command, parse, timeoutMs);
}

function grantOrTimeout(
  kind: Kind,
  op: "acquire" | "wait",
  sock: SocketLike,
  key: string,
  bytes: string,
  timeoutS: number,
  limit = 1,
): Promise<Grant> {
  const conn = asConnection(sock);
  // A parser that throws the timeout itself: cheaper than a then() per request.
  const grant = (line: string, command: string): Grant => parseGrantReply(line, command) ?? timedOut(key, timeoutS);
  const parse = namingMismatch(grant, key, limit, conn.server);
  return conn.request(bytes, commandName(kind, op), parse, timeoutS * 1000 + GRACE_MS);
}

/** `e`/`se`, a mismatch told in full. */
function enqueueOn(sock: SocketLike, kind: Kind, key: string, limit: number, ttl?: number): Promise<EnqueueResult> {
  const bytes = encodeEnqueue(kind, key, ttl, kind === "semaphore" ? limit : undefined);
  const conn = asConnection(sock);
  const parse = namingMismatch(parseEnqueueReply, key, limit, conn.server);
  return conn.request(bytes, commandName(kind, "enqueue"), parse, DEFAULT_REQUEST_TIMEOUT_MS);
}

function timedOut(key: string, timeoutS: number): never {
  throw new AcquireTimeoutError(key, timeoutS);
}

/**
 * Run `fn`, turning a synchronous throw (bad arguments, detected before any
 * byte is sent) into a rejection: the functions below are not `async`, which
 * saves a promise and its turns per request, but must fail the same way.
 */
function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Acquire a lock, blocking up to `acquireTimeoutS` seconds (`l`).
 *
 * @param sock Connection (or, on Node, a `net.Socket`).
 * @param key Lock name.
 * @param acquireTimeoutS Whole seconds to wait; `0` tries once.
 * @param leaseTtlS Lease TTL in whole seconds; default: the server's.
 * @returns The token, the applied lease and, from newer servers, the fence.
 * @throws AcquireTimeoutError if not granted in time.
 * @example
 * ```ts
 * import { connect, acquire, release } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token, lease } = await acquire(conn, "my-key", 10);
 * await release(conn, "my-key", token);
 * conn.close();
 * ```
 */
export function acquire(sock: SocketLike, key: string, acquireTimeoutS: number, leaseTtlS?: number): Promise<Grant> {
  try {
    const bytes = encodeAcquire("lock", key, acquireTimeoutS, leaseTtlS);
    return grantOrTimeout("lock", "acquire", sock, key, bytes, acquireTimeoutS);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Join a lock's queue without blocking (`e`).
 *
 * @param sock Connection (or, on Node, a `net.Socket`).
 * @param key Lock name.
 * @param leaseTtlS Lease TTL in whole seconds; default: the server's.
 * @returns `{ status: "acquired", token, lease }` if it was free, else
 * `{ status: "queued", token: null, lease: null }`.
 * @example
 * ```ts
 * import { connect, enqueue, waitForLock } from "dflockd-client";
 *
 * const conn = await connect();
 * const r = await enqueue(conn, "k");
 * const { token } = r.status === "queued" ? await waitForLock(conn, "k", 10) : r;
 * ```
 */
export function enqueue(sock: SocketLike, key: string, leaseTtlS?: number): Promise<EnqueueResult> {
  return rejecting(() => enqueueOn(sock, "lock", key, 1, leaseTtlS));
}

/**
 * Block until a lock enqueued on this connection is granted (`w`).
 *
 * @param sock The connection that called {@link enqueue}.
 * @param key Lock name.
 * @param waitTimeoutS Whole seconds to wait.
 * @returns The token and lease.
 * @throws AcquireTimeoutError if not granted in time.
 * @example
 * ```ts
 * import { connect, enqueue, waitForLock } from "dflockd-client";
 *
 * const conn = await connect();
 * if ((await enqueue(conn, "k")).status === "queued") {
 *   const { token } = await waitForLock(conn, "k", 10);
 * }
 * ```
 */
export function waitForLock(sock: SocketLike, key: string, waitTimeoutS: number): Promise<Grant> {
  return rejecting(() =>
    grantOrTimeout("lock", "wait", sock, key, encodeWait("lock", key, waitTimeoutS), waitTimeoutS),
  );
}

/**
 * Extend a held lock's lease (`n`). Pass `leaseTtlS`: without it the server
 * resets the lease to its default TTL.
 *
 * @param sock The connection holding the lock.
 * @param key Lock name.
 * @param token Token from the grant.
 * @param leaseTtlS New lease TTL in whole seconds.
 * @returns The lease TTL the server applied, in seconds (for an older server that answers a bare `ok`: the TTL asked for, else 33).
 * @example
 * ```ts
 * import { connect, acquire, renew } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token } = await acquire(conn, "k", 10, 30);
 * const ttl = await renew(conn, "k", token, 30);
 * ```
 */
export async function renew(sock: SocketLike, key: string, token: string, leaseTtlS?: number): Promise<number> {
  const r = await send(
    sock,
    encodeRenew("lock", key, token, leaseTtlS),
    "n",
    parseRenewReply,
    DEFAULT_REQUEST_TIMEOUT_MS,
  );
  return r.lease ?? leaseTtlS ?? SERVER_DEFAULT_LEASE_S;
}

/** What a server applies to a renewal without a TTL, unless configured otherwise. */
const SERVER_DEFAULT_LEASE_S = 33;

/**
 * Release a held lock (`r`).
 *
 * @param sock The connection holding the lock.
 * @param key Lock name.
 * @param token Token from the grant.
 * @throws ServerError if the server does not recognise the token (e.g. the lease expired).
 * @example
 * ```ts
 * import { connect, acquire, release } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token } = await acquire(conn, "k", 10);
 * await release(conn, "k", token);
 * ```
 */
export function release(sock: SocketLike, key: string, token: string): Promise<void> {
  try {
    return send(sock, encodeRelease("lock", key, token), "r", parseOkReply, DEFAULT_REQUEST_TIMEOUT_MS);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Send `ping` and tell whether the server answers it: dflockd v1.14 and
 * later do (`ok`); older servers answer `error`, for an unknown command, and
 * the connection stays usable. Either way the request restarts the server's
 * read timeout for this connection. The pool pings its idle connections
 * itself (`idleTimeoutS`); this is for a connection of your own.
 *
 * @param sock Connection (or, on Node, a `net.Socket`).
 * @returns `true` for a server that answers `ping`, `false` for one that does not.
 * @throws ServerError for any other refusal (such as `error_draining` from a server shutting down).
 * @example
 * ```ts
 * import { connect, ping } from "dflockd-client";
 *
 * const conn = await connect();
 * console.log((await ping(conn)) ? "dflockd v1.14 or later" : "dflockd before v1.14");
 * conn.close();
 * ```
 */
export async function ping(sock: SocketLike): Promise<boolean> {
  try {
    await send(sock, PING_REQUEST, "ping", parseOkReply, DEFAULT_REQUEST_TIMEOUT_MS);
    return true;
  } catch (err) {
    if (isPingRefusal(err)) return false;
    throw err;
  }
}

/**
 * Acquire a semaphore slot, blocking up to `acquireTimeoutS` seconds (`sl`).
 *
 * @param sock Connection (or, on Node, a `net.Socket`).
 * @param key Semaphore name.
 * @param acquireTimeoutS Whole seconds to wait; `0` tries once.
 * @param limit Most concurrent holders; must match the key's existing limit.
 * @param leaseTtlS Lease TTL in whole seconds; default: the server's.
 * @returns The token and applied lease.
 * @throws AcquireTimeoutError if not granted in time; ServerError `LIMIT_MISMATCH`.
 * @example
 * ```ts
 * import { connect, semAcquire, semRelease } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token } = await semAcquire(conn, "pool", 10, 5);
 * await semRelease(conn, "pool", token);
 * ```
 */
export function semAcquire(
  sock: SocketLike,
  key: string,
  acquireTimeoutS: number,
  limit: number,
  leaseTtlS?: number,
): Promise<Grant> {
  return rejecting(() =>
    grantOrTimeout(
      "semaphore",
      "acquire",
      sock,
      key,
      encodeAcquire("semaphore", key, acquireTimeoutS, leaseTtlS, limit),
      acquireTimeoutS,
      limit,
    ),
  );
}

/**
 * Join a semaphore's queue without blocking (`se`).
 *
 * @param sock Connection (or, on Node, a `net.Socket`).
 * @param key Semaphore name.
 * @param limit Most concurrent holders.
 * @param leaseTtlS Lease TTL in whole seconds; default: the server's.
 * @returns `acquired` with token and lease, or `queued`.
 * @example
 * ```ts
 * import { connect, semEnqueue, semWaitForLock } from "dflockd-client";
 *
 * const conn = await connect();
 * if ((await semEnqueue(conn, "pool", 5)).status === "queued") {
 *   await semWaitForLock(conn, "pool", 10);
 * }
 * ```
 */
export function semEnqueue(sock: SocketLike, key: string, limit: number, leaseTtlS?: number): Promise<EnqueueResult> {
  return rejecting(() => enqueueOn(sock, "semaphore", key, limit, leaseTtlS));
}

/**
 * Block until a slot enqueued on this connection is granted (`sw`).
 *
 * @param sock The connection that called {@link semEnqueue}.
 * @param key Semaphore name.
 * @param waitTimeoutS Whole seconds to wait.
 * @returns The token and lease.
 * @throws AcquireTimeoutError if not granted in time.
 * @example
 * ```ts
 * import { connect, semEnqueue, semWaitForLock } from "dflockd-client";
 *
 * const conn = await connect();
 * await semEnqueue(conn, "pool", 5);
 * const { token } = await semWaitForLock(conn, "pool", 10);
 * ```
 */
export function semWaitForLock(sock: SocketLike, key: string, waitTimeoutS: number): Promise<Grant> {
  return rejecting(() =>
    grantOrTimeout("semaphore", "wait", sock, key, encodeWait("semaphore", key, waitTimeoutS), waitTimeoutS),
  );
}

/**
 * Extend a held slot's lease (`sn`). Pass `leaseTtlS`, or the server resets
 * the lease to its default TTL.
 *
 * @param sock The connection holding the slot.
 * @param key Semaphore name.
 * @param token Token from the grant.
 * @param leaseTtlS New lease TTL in whole seconds.
 * @returns The lease TTL the server applied, in seconds (for an older server that answers a bare `ok`: the TTL asked for, else 33).
 * @example
 * ```ts
 * import { connect, semAcquire, semRenew } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token } = await semAcquire(conn, "pool", 10, 5, 30);
 * await semRenew(conn, "pool", token, 30);
 * ```
 */
export async function semRenew(sock: SocketLike, key: string, token: string, leaseTtlS?: number): Promise<number> {
  const bytes = encodeRenew("semaphore", key, token, leaseTtlS);
  const r = await send(sock, bytes, "sn", parseRenewReply, DEFAULT_REQUEST_TIMEOUT_MS);
  return r.lease ?? leaseTtlS ?? SERVER_DEFAULT_LEASE_S;
}

/**
 * Release a held slot (`sr`).
 *
 * @param sock The connection holding the slot.
 * @param key Semaphore name.
 * @param token Token from the grant.
 * @example
 * ```ts
 * import { connect, semAcquire, semRelease } from "dflockd-client";
 *
 * const conn = await connect();
 * const { token } = await semAcquire(conn, "pool", 10, 5);
 * await semRelease(conn, "pool", token);
 * ```
 */
export function semRelease(sock: SocketLike, key: string, token: string): Promise<void> {
  return rejecting(() =>
    send(sock, encodeRelease("semaphore", key, token), "sr", parseOkReply, DEFAULT_REQUEST_TIMEOUT_MS),
  );
}

export { type StatsOptions, stats } from "./stats.ts";
