/**
 * The I/O of an attempt: getting a connection from the pool (an idle one, a
 * shared one, or a new one), and sending the request that asks for the lock,
 * with the one retry a stale pooled connection allows and the cancelling
 * rules of a shared connection. Phases and what a reply means for them are
 * the driver's (driver.ts); this class only moves requests and replies.
 *
 * @module
 */
import { abortError, checkSignal } from "./cancel.ts";
import { Connecting } from "./connecting.ts";
import type { LockDriver } from "./driver.ts";
import { ConnectionError, LockError, quote, ServerError } from "./errors.ts";
import { NotLeaderError } from "./leader.ts";
import type { Link } from "./link.ts";
import { explainMismatch, isBareMismatch } from "./mismatch.ts";
import { pickServer, type Settings, serverOf, type Target } from "./options.ts";
import { closedError } from "./pool.ts";
import { commandName } from "./protocol.ts";
import { sharedPatience } from "./renewals.ts";
import { backgroundTimer } from "./transport.ts";

/**
 * A request that cannot block, on a shared connection, whose reply is still
 * due: the connection is left when the reply arrives, and `reject` lets a
 * close() fail its caller at once.
 */
export interface PendingTry {
  readonly link: Link;
  readonly reject: (reason: LockError) => void;
  /** Given up while its reply is due: the pool counts it an orphan until then. */
  orphaned?: boolean;
}

/** What the attempt side (attempt.ts) keeps of a generation, read and given up when the generation ends. */
export interface AttemptSide {
  /** A request that cannot block, still due on a shared connection. */
  readonly pendingTry: PendingTry | undefined;
  /** The token of a grant whose reply arrived on a shared connection, not held yet: an ending gives it back. */
  readonly unheld: string | undefined;
  /** The generation ended: forget the try and the token. */
  forget(): void;
  /** The generation ended (`reason`, if not a plain release): cancel a connect, TLS handshake or auth in progress. */
  cancelConnect(reason: LockError | undefined): void;
}

/** How {@link Attempts.start} gets a connection: `any` (an idle or a shared one), `own` (idle or new), `fresh` (new). */
export type How = "any" | "own" | "fresh";

/** The requests an attempt sends. */
export type Op = "acquire" | "enqueue" | "wait";

/** A request of an attempt, and what judging its reply needs. */
export interface Asking<T> {
  readonly reply: Promise<T>;
  readonly epoch: number;
  readonly op: Op;
  readonly link: Link;
  readonly reused: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

/** What {@link Attempts.ask} returns when the request should be sent again on a new connection. */
export const RETRY: unique symbol = Symbol("retry");

/** Getting a connection for an instance's attempts, and asking on it. */
export class Attempts implements AttemptSide {
  readonly #d: LockDriver;
  /** A request that cannot block, still due on a shared connection: its reply leaves the connection. */
  #pendingTry: PendingTry | undefined;
  /** A grant's token that arrived on a shared connection and is not held yet. */
  #unheld: string | undefined;
  /** The connect in progress, its own or a wait on a shared one: ended with the generation. Made on first connect. */
  #connecting: Connecting | undefined;
  /** The connection came from the pool and has not yet answered this attempt: a failure before any reply may be retried. */
  #reused = false;
  /** The send time of the request the last {@link ask} sent (answered or not). */
  sentAt = 0;

  constructor(driver: LockDriver) {
    this.#d = driver;
    driver.bindAttempts(this);
  }

  get pendingTry(): PendingTry | undefined {
    return this.#pendingTry;
  }

  get unheld(): string | undefined {
    return this.#unheld;
  }

  forget(): void {
    this.#pendingTry = undefined;
    this.#unheld = undefined;
  }

  cancelConnect(reason: LockError | undefined): void {
    this.#connecting?.cancel(reason);
  }

  /**
   * Check state, pick a server (`to`, a leader an earlier try was sent to,
   * else the sharding's), and get a connection as `how` says. Leaves
   * the state `connecting` and `this.link` set; returns the attempt's epoch
   * (at once when the pool lends a connection, else once one is open).
   */
  start(signal: AbortSignal | undefined, how: How, to?: Target): number | Promise<number> {
    const d = this.#d;
    const state = d.state;
    if (state !== "released" && state !== "lost") throw busy(d.key, state);
    checkSignal(signal);
    const pool = d.pool;
    if (pool.closed) throw closedError();
    const target = to ?? pickServer(d.s);
    const lent = how === "fresh" ? undefined : pool.lend(target.poolKey, d.id, d, how === "any");
    const epoch = d.start();
    this.#reused = lent !== undefined;
    if (lent !== undefined) {
      // No await on this path: a pooled connection is ready now.
      d.use(lent, epoch);
      return epoch;
    }
    const dial = how === "any" ? pool.sharingDial(target.poolKey, target.open, d.id) : undefined;
    // Made only here: an instance that always finds a pooled connection never needs one.
    this.#connecting ??= new Connecting(d);
    const c = this.#connecting;
    const connecting = dial === undefined ? c.dial(target, epoch, signal) : c.join(dial, epoch, signal);
    return connecting.then((link) => {
      if (d.use(link, epoch)) return epoch;
      // Closed (or released) since: nothing was sent on it. One opened for sharing stays, for the others on it.
      const closed = new LockError(`${quote(d.key)} was closed while connecting`, "ABORTED");
      pool.leave(link, d.id, !link.exclusive, d.s.readTimeoutMs, closed);
      throw closed;
    });
  }

  /**
   * Send a request for the current attempt; returns its reply, and leaves its
   * send time in `sentAt`. On failure the attempt ends, and the error is
   * thrown, except once: a connection from the pool that the server closed
   * (or reset) before any reply to this first request. The server has then
   * either never read the request, or dropped whatever it did for it along
   * with the connection (dflockd releases a closed connection's holdings and
   * queue places; a server started with --auto-release-on-disconnect=false
   * keeps a holding until its lease ends, which delays the retry but never
   * lets two hold). And a grant only counts once its reply arrives. Then
   * {@link RETRY} is returned, for the caller to ask again on a new connection.
   */
  async ask<T>(
    epoch: number,
    bytes: string,
    op: Op,
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T | typeof RETRY> {
    const q = this.send(epoch, bytes, op, parse, timeoutMs, signal);
    try {
      return this.answered(q, await q.reply);
    } catch (err) {
      return this.failed(q, err);
    }
  }

  /** {@link ask} in three steps, in the caller's frame: `answered(q, await q.reply)`, else `failed(q, err)`. */
  send<T>(
    epoch: number,
    bytes: string,
    op: Op,
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Asking<T> {
    const d = this.#d;
    const command = commandName(d.s.kind, op);
    const link = d.link as Link;
    const conn = link.conn;
    const reused = this.#reused;
    this.#reused = false;
    const shared = !link.exclusive;
    // On a connection of its own, aborting closes it; on a shared one, see sharedRequest().
    const onAbort = signal === undefined || shared ? undefined : (): void => conn.close(abortError(signal));
    if (onAbort !== undefined) signal?.addEventListener("abort", onAbort, { once: true });
    let reply: Promise<T>;
    try {
      checkSignal(signal);
      reply = shared
        ? this.#sharedRequest(link, epoch, bytes, command, parse, timeoutMs, signal)
        : conn.request(bytes, command, parse, timeoutMs);
      // Its send time, as the connection read it just before the write: one clock read, not two.
      this.sentAt = conn.lastSendAt;
    } catch (err) {
      reply = Promise.reject(err);
    }
    return { reply, epoch, op, link, reused, signal, onAbort };
  }

  /** `q`'s reply, unless the attempt ended meanwhile. */
  answered<T>(q: Asking<T>, value: T): T {
    const d = this.#d;
    const conn = q.link.conn;
    // The connection may have closed (or close() been called) in the same tick the reply arrived.
    if (d.epoch !== q.epoch || conn.closed) {
      throw conn.closeError ?? new LockError(`${quote(d.key)} was closed during ${q.op}`, "ABORTED");
    }
    if (q.onAbort !== undefined) q.signal?.removeEventListener("abort", q.onAbort);
    return value;
  }

  /** End the attempt; throw what to report, or return {@link RETRY}. */
  async failed(q: Asking<unknown>, err: unknown): Promise<typeof RETRY> {
    const { epoch, op, link, signal, onAbort } = q;
    const d = this.#d;
    try {
      // This call reports the failure; do not report it again from a later wait().
      d.takeFailure();
      const retry = q.reused && d.epoch === epoch && signal?.aborted !== true && staleConnection(err);
      // Ended meanwhile (a close() between the reply and this continuation): no stats are asked.
      const ended = d.epoch !== epoch;
      d.endAttempt(
        epoch,
        err instanceof NotLeaderError ? "notLeader" : err instanceof ServerError ? "refused" : "failed",
      );
      if (retry) return RETRY;
      // A close() in the tick the follower's answer came: the call ends, and is not redirected to the leader.
      if (ended && err instanceof NotLeaderError) {
        throw new LockError(`${quote(d.key)} was closed during ${op}`, "ABORTED", { cause: err });
      }
      if (!isBareMismatch(err)) throw err;
      // Told in full: the key, the server, and both limits where the server's stats tell them. The attempt
      // is over, and its connection may be lent again meanwhile: the caller's signal no longer closes it.
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      // Asked of the server this attempt talked to; the caller's signal and a close() cut it short.
      throw await explainMismatch({
        s: d.s,
        poolKey: link.poolKey,
        server: link.conn.server,
        ended,
        signal,
        pool: d.pool,
        owner: d,
      });
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A request that cannot block, on a connection shared with other holdings,
   * which must not be closed to cancel it. close() or `signal` reject the
   * caller at once; the reply is still awaited, and a grant it brings for an
   * attempt given up is released. The connection is left only then.
   */
  #sharedRequest<T>(
    link: Link,
    epoch: number,
    bytes: string,
    command: string,
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const d = this.#d;
    // The others' holdings on this connection are provable while a slow server works through the queue: the
    // caller gives up at `timeoutMs`, the connection (closing it would take them all) only a read timeout later.
    const reply = link.conn.request(bytes, command, parse, sharedPatience(d.s));
    return new Promise<T>((resolve, reject) => {
      const mine: PendingTry = { link, reject };
      this.#pendingTry = mine;
      const giveUp = (err: LockError, event: "abort" | "failed"): void => {
        d.endAttempt(epoch, event, err);
        reject(err);
      };
      const onAbort = (): void => giveUp(abortError(signal), "abort");
      signal?.addEventListener("abort", onAbort, { once: true });
      const timer = backgroundTimer(() => {
        // A connection this slow takes no new tries; the holdings on it stay.
        d.pool.retire(link);
        giveUp(lateTry(d.s, link, command, timeoutMs), "failed");
      }, timeoutMs);
      const settle = (): boolean => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (mine.orphaned) d.pool.adopt(link);
        const current = this.#pendingTry === mine;
        if (current) this.#pendingTry = undefined;
        // Still this attempt's: its caller goes on. Else given up meanwhile.
        return current && d.epoch === epoch;
      };
      reply.then(
        (value) => {
          if (settle()) {
            // A close() before the caller resumes must give this grant back.
            this.#unheld = tokenOf(value);
            resolve(value);
            return;
          }
          // Given up meanwhile: hand back a grant, then leave (unless teardown already did).
          if (link.users.get(d.id) === d) d.leaveLink(link, undefined, "drop", tokenOf(value));
          reject(new LockError(`${quote(d.key)} was closed`, "ABORTED"));
        },
        (err: unknown) => {
          // A server's refusal leaves the connection in a known state, for the others on it; a wire error does not.
          const how = err instanceof ServerError ? "clean" : "broken";
          if (!settle() && link.users.get(d.id) === d) d.leaveLink(link, undefined, how, undefined);
          reject(err);
        },
      );
    });
  }
}

/** A try on a shared connection unanswered in time: the caller gives up, the connection stays for the others. */
function lateTry(s: Settings, link: Link, command: string, timeoutMs: number): ConnectionError {
  return new ConnectionError(
    `${serverOf(s, link.conn)}: no reply to "${command}" within ${timeoutMs} ms on a connection shared with other holdings (kept open for them: a slow server is not a lost lock)`,
    { code: "TIMEOUT" },
  );
}

/** A request failed because the server closed or reset the connection (not a timeout, not the client). */
function staleConnection(err: unknown): boolean {
  return err instanceof ConnectionError && err.code === "CONNECTION";
}

/** The token of a grant reply, if it is one. */
function tokenOf(value: unknown): string | undefined {
  const token = (value as { token?: unknown } | null)?.token;
  return typeof token === "string" ? token : undefined;
}

/** The error for a second acquisition on an instance that is not free: what it is doing, and what to do instead. */
function busy(key: string, state: string): LockError {
  const doing =
    state === "held" || state === "renewing"
      ? "already holds it: release() it first"
      : state === "queued"
        ? "is queued for it: wait() for the grant, or release() to give the place up"
        : `is already acquiring it (${state}): await that call first`;
  return new LockError(
    `this instance of ${quote(key)} ${doing}. Concurrent callers can share one instance through withLock(), which serves them in turn, or use an instance each`,
    "BUSY",
  );
}
