/**
 * Error types raised by dflockd-client.
 *
 * Every error the library raises on purpose is a {@link LockError}. Switch on
 * its {@link LockError.code | code} to tell the cases apart, or use
 * `instanceof` with one of the subclasses.
 *
 * @module
 */
import { brand, hasInstance } from "./brand.ts";
import { quote } from "./quote.ts";

/**
 * Machine-readable reason carried by every {@link LockError}.
 *
 * Server statuses map as follows: `error_max_locks` → `"MAX_LOCKS"`,
 * `error_max_waiters` → `"MAX_WAITERS"`, `error_limit_mismatch` →
 * `"LIMIT_MISMATCH"`, `error_already_enqueued` → `"ALREADY_ENQUEUED"`,
 * `error_not_enqueued` → `"NOT_ENQUEUED"`, `error_lease_expired` →
 * `"LEASE_EXPIRED"`, `error_draining` → `"DRAINING"`, `error_auth` →
 * `"AUTH"`, `error_not_leader` → `"NOT_LEADER"` (a `NotLeaderError`), a plain
 * `error` or any other `error*` status → `"SERVER_ERROR"`.
 * `"MAX_HOLD"` is the `cause` of a `LockLostError` for a holding ended by its `maxHoldS`.
 *
 * @example
 * ```ts
 * import { LockError } from "dflockd-client";
 *
 * function describe(err: unknown): string {
 *   if (!(err instanceof LockError)) return "not ours";
 *   switch (err.code) {
 *     case "MAX_LOCKS": return "server is full";
 *     case "CONNECTION": return "network trouble";
 *     default: return err.code;
 *   }
 * }
 * ```
 */
export type LockErrorCode =
  | "INVALID_ARGUMENT"
  | "ACQUIRE_TIMEOUT"
  | "CONNECTION"
  | "TIMEOUT"
  | "PROTOCOL"
  | "LOCK_LOST"
  | "MAX_HOLD"
  | "BUSY"
  | "ABORTED"
  | "SERVER_ERROR"
  | "MAX_LOCKS"
  | "MAX_WAITERS"
  | "LIMIT_MISMATCH"
  | "ALREADY_ENQUEUED"
  | "NOT_ENQUEUED"
  | "NOT_HELD"
  | "LEASE_EXPIRED"
  | "DRAINING"
  | "NOT_LEADER"
  | "AUTH";

/**
 * Base class of every error the library raises.
 *
 * @example
 * ```ts
 * import { DistributedLock, LockError } from "dflockd-client";
 *
 * try {
 *   await new DistributedLock({ key: "jobs" }).withLock(async () => {});
 * } catch (err) {
 *   if (err instanceof LockError) console.error(err.code, err.message);
 * }
 * ```
 */
export class LockError extends Error {
  /** Machine-readable reason; see {@link LockErrorCode}. */
  readonly code: LockErrorCode;

  /**
   * `instanceof` that also recognises an error made by another copy of this
   * library in the same process (its CommonJS build beside its ESM build, or
   * two subpaths bundled apart): besides the prototype chain, it looks for the
   * brand each class of the family puts on its prototype under a
   * `Symbol.for()` key. A class of your own that extends one of these is
   * checked by its prototype chain only. The brand is shared by every copy
   * and every version of this package loaded in one process, and an object
   * that carries the brand's symbol by hand passes too: where it matters
   * which error this is, check its `code` as well.
   *
   * @param value What is being tested.
   * @returns Whether `value` is an instance of this class, from any copy.
   * @example
   * ```ts
   * import { AcquireTimeoutError, LockError } from "dflockd-client";
   *
   * const err: unknown = new AcquireTimeoutError("jobs", 5);
   * console.log(err instanceof LockError, err instanceof AcquireTimeoutError); // true true
   * ```
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of `instanceof`, maybe a subclass.
    return hasInstance(this, value);
  }

  /**
   * Creates the error.
   *
   * @param message Human-readable description.
   * @param code Machine-readable reason (default `"SERVER_ERROR"`).
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, code: LockErrorCode = "SERVER_ERROR", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LockError";
    this.code = code;
  }
}

/**
 * The lock or semaphore slot was not granted within the requested time.
 *
 * Raised by `withLock()` and by the low-level `acquire()` / `waitForLock()`
 * family; `DistributedLock.acquire()` and `wait()` return `false` instead.
 *
 * @example
 * ```ts
 * import { DistributedLock, AcquireTimeoutError } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "report", acquireTimeoutS: 0 });
 * try {
 *   await lock.withLock(async () => {});
 * } catch (err) {
 *   if (err instanceof AcquireTimeoutError) console.log("busy, try later");
 * }
 * ```
 */
export class AcquireTimeoutError extends LockError {
  /** The key that could not be acquired. */
  readonly key: string;

  /**
   * Creates the error.
   *
   * @param key The key that could not be acquired.
   * @param timeoutS The timeout that ran out, in seconds.
   * @param why Why it waited, when the client knows (appended to the message).
   */
  constructor(key: string, timeoutS: number, why?: string) {
    const waited = `timed out after ${timeoutS}s waiting for ${quote(key)}`;
    super(why === undefined ? waited : `${waited}: ${why}`, "ACQUIRE_TIMEOUT");
    this.name = "AcquireTimeoutError";
    this.key = key;
  }
}

/**
 * An argument or option was rejected before anything was sent to the server.
 *
 * @example
 * ```ts
 * import { DistributedLock, InvalidArgumentError } from "dflockd-client";
 *
 * try {
 *   new DistributedLock({ key: "has space" });
 * } catch (err) {
 *   console.log(err instanceof InvalidArgumentError); // true
 * }
 * ```
 */
export class InvalidArgumentError extends LockError {
  /**
   * Creates the error.
   *
   * @param message What was wrong with the argument.
   */
  constructor(message: string) {
    super(message, "INVALID_ARGUMENT");
    this.name = "InvalidArgumentError";
  }
}

/**
 * Connecting failed, the connection dropped, or the server stopped answering.
 *
 * `code` is `"CONNECTION"` for refused, reset or closed connections and
 * `"TIMEOUT"` when the server did not answer in time. The runtime's original
 * error, if any, is in `cause`.
 *
 * @example
 * ```ts
 * import { stats, ConnectionError } from "dflockd-client";
 *
 * try {
 *   await stats({ host: "127.0.0.1", port: 1 });
 * } catch (err) {
 *   if (err instanceof ConnectionError) console.log("server unreachable:", err.cause);
 * }
 * ```
 */
export class ConnectionError extends LockError {
  /**
   * Creates the error.
   *
   * @param message What happened to the connection.
   * @param options `code` (`"CONNECTION"` by default, or `"TIMEOUT"`) and `cause`.
   */
  constructor(message: string, options?: { cause?: unknown; code?: "CONNECTION" | "TIMEOUT" }) {
    super(message, options?.code ?? "CONNECTION", options);
    this.name = "ConnectionError";
  }
}

/**
 * The server sent bytes that are not a valid reply (malformed line, invalid
 * UTF-8, overlong line, or a reply nobody asked for). The connection is closed.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "dflockd-client";
 *
 * const err = new ProtocolError("unexpected reply", "ok");
 * console.log(err.code, err.reply); // "PROTOCOL" "ok"
 * ```
 */
export class ProtocolError extends LockError {
  /** The offending reply line, if it could be decoded. */
  readonly reply: string | undefined;

  /**
   * Creates the error.
   *
   * @param message What was wrong.
   * @param reply The offending reply line, if known.
   */
  constructor(message: string, reply?: string) {
    super(message, "PROTOCOL");
    this.name = "ProtocolError";
    this.reply = reply;
  }
}

/**
 * The server answered with an `error*` status.
 *
 * `status` holds the raw status word (for example `"error_max_locks"`);
 * `code` its mapping (see {@link LockErrorCode}).
 *
 * @example
 * ```ts
 * import { ServerError } from "dflockd-client";
 *
 * const err = ServerError.fromStatus("error_max_waiters", "l");
 * console.log(err.code); // "MAX_WAITERS"
 * ```
 */
export class ServerError extends LockError {
  /** The status word the server sent, e.g. `"error_limit_mismatch"`. */
  readonly status: string;

  /**
   * Creates the error.
   *
   * @param message Human-readable description.
   * @param status The raw status word.
   * @param code Its mapped code.
   */
  constructor(message: string, status: string, code: LockErrorCode) {
    super(message, code);
    this.name = "ServerError";
    this.status = status;
  }

  /**
   * Build the error for a status word the server sent in reply to `command`.
   *
   * @param status The first word of the reply, starting with `error`.
   * @param command The command that was answered, for the message.
   * @returns The typed error (an {@link AuthError} for `error_auth`).
   * @example
   * ```ts
   * import { ServerError } from "dflockd-client";
   * ServerError.fromStatus("error", "r").code; // "SERVER_ERROR"
   * ```
   */
  static fromStatus(status: string, command: string): ServerError {
    return serverErrorOf(status, command);
  }
}

/**
 * {@link ServerError.fromStatus}, outside the class: a class body that names
 * its own class makes the bundler rename it (`_ServerError` in
 * `err.constructor.name`).
 */
function serverErrorOf(status: string, command: string): ServerError {
  const known = STATUS_CODES[status];
  if (known?.[0] === "AUTH") return new AuthError({ tokenSent: command === "auth" });
  const [code, meaning] = known ?? ["SERVER_ERROR", "the server rejected the request"];
  return new ServerError(`${meaning} (server replied ${quote(status)} to ${quote(command)})`, status, code);
}

/**
 * The server rejected the authentication secret, or required one that was not
 * sent. The message names the server and says which; it never contains the secret.
 *
 * @example
 * ```ts
 * import { AuthError, LockError } from "dflockd-client";
 * const err = new AuthError({ server: "127.0.0.1:6388", tokenSent: false });
 * console.log(err instanceof LockError, err.message); // true "127.0.0.1:6388: authentication failed: ..."
 * ```
 */
export class AuthError extends ServerError {
  /** The server's `host:port`, when known. */
  readonly server: string | undefined;
  /** `true`: a token was sent and refused; `false`: the server wants one and none was sent (no `auth` option). */
  readonly tokenSent: boolean | undefined;

  /**
   * Creates the error; it never contains the secret.
   * @param options `server` (`host:port`) and `tokenSent`, when known.
   */
  constructor(options?: { server?: string | undefined; tokenSent?: boolean | undefined }) {
    const sent = options?.tokenSent;
    const what =
      sent === undefined
        ? ""
        : sent
          ? ": the server refused the auth token; check the auth option against the server's --auth-token"
          : ": the server requires an auth token and none was sent; set the auth option to the server's --auth-token";
    const where = options?.server === undefined ? "" : `${options.server}: `;
    super(`${where}authentication failed${what} (server replied "error_auth")`, "error_auth", "AUTH");
    this.name = "AuthError";
    this.server = options?.server;
    this.tokenSent = sent;
  }
}

/**
 * A held lock or semaphore slot can no longer be proven held: a renewal
 * failed, the lease deadline passed without a confirmed renewal, or the
 * connection dropped; or its `maxHoldS` ran out (`cause` has code
 * `"MAX_HOLD"`). The reason is in `cause`.
 *
 * @example
 * ```ts
 * import { DistributedLock, LockLostError } from "dflockd-client";
 *
 * const lock = new DistributedLock({
 *   key: "leader",
 *   onLost: (err: LockLostError) => console.error("stop work now:", err.message),
 * });
 * ```
 */
export class LockLostError extends LockError {
  /** The key whose lock was lost. */
  readonly key: string;

  /**
   * Creates the error.
   *
   * @param key The key whose lock was lost.
   * @param reason Why it was lost.
   * @param cause The underlying error, if any.
   */
  constructor(key: string, reason: string, cause?: unknown) {
    super(`lost ${quote(key)}: ${reason}`, "LOCK_LOST", { cause });
    this.name = "LockLostError";
    this.key = key;
  }
}

brand(LockError, "LockError");
brand(AcquireTimeoutError, "AcquireTimeoutError");
brand(InvalidArgumentError, "InvalidArgumentError");
brand(ConnectionError, "ConnectionError");
brand(ProtocolError, "ProtocolError");
brand(ServerError, "ServerError");
brand(AuthError, "AuthError");
brand(LockLostError, "LockLostError");

const STATUS_CODES: Readonly<Record<string, readonly [LockErrorCode, string]>> = {
  error_max_locks: ["MAX_LOCKS", "the server holds its maximum number of keys"],
  error_max_waiters: ["MAX_WAITERS", "the key has its maximum number of waiters"],
  error_limit_mismatch: ["LIMIT_MISMATCH", "the semaphore already exists with a different limit"],
  error_already_enqueued: ["ALREADY_ENQUEUED", "this connection is already queued for the key"],
  error_not_enqueued: ["NOT_ENQUEUED", "this connection is not queued for the key"],
  error_lease_expired: ["LEASE_EXPIRED", "the lease expired"],
  error_draining: ["DRAINING", "the server is shutting down"],
  error_auth: ["AUTH", "authentication failed"],
};

/** Re-exported: every module that builds a message imports it from here. */
export { quote };
