/**
 * One client connection: writes encoded requests, matches reply lines to
 * requests in FIFO order, and turns every failure into a typed error.
 *
 * @module
 */
import { ConnectionError, LockError, ProtocolError } from "./errors.ts";
import { fail, InFlight, type Pending, pending, type ReplyCallback } from "./inflight.ts";
import { DEFAULT_MAX_REPLY_BYTES, LineDecoder } from "./protocol.ts";
import { type ByteStream, backgroundTimer } from "./transport.ts";
import {
  lostConnectionReason,
  named,
  noReplyError,
  replyError,
  serverClosedMessage,
  unsolicitedError,
} from "./wording.ts";

/** Default server host. */
export const DEFAULT_HOST = "127.0.0.1";
/** Default server port. */
export const DEFAULT_PORT = 6388;
/** Default time allowed to open a connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default time allowed for a non-blocking request (release, renew, stats, enqueue). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

/**
 * Why a {@link Connection} closed, given to {@link Connection.onClose} listeners.
 *
 * @example
 * ```ts
 * import { connect, type CloseInfo } from "dflockd-client";
 *
 * const conn = await connect();
 * conn.onClose((info: CloseInfo) => {
 *   if (!info.byClient) console.warn("server went away:", info.error.message);
 * });
 * ```
 */
export interface CloseInfo {
  /** `true` when the client closed it on purpose with {@link Connection.close}. */
  readonly byClient: boolean;
  /** The error pending and later requests fail with. */
  readonly error: LockError;
}

/**
 * An open connection to a dflockd server, for the low-level functions.
 * Requests may be issued concurrently; they are pipelined and answered in
 * order. Obtain one with {@link connect}; close it with {@link Connection.close}.
 *
 * @example
 * ```ts
 * import { connect, acquire, release } from "dflockd-client";
 *
 * const conn = await connect({ host: "127.0.0.1", port: 6388 });
 * try {
 *   const { token } = await acquire(conn, "my-key", 10);
 *   await release(conn, "my-key", token);
 * } finally {
 *   conn.close();
 * }
 * ```
 */
export class Connection {
  readonly #stream: ByteStream;
  readonly #decoder: LineDecoder;
  readonly #inflight = new InFlight();
  /** One reply timer, re-armed only if it would fire too late (early, it re-arms for what is left). */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  #timerAt = 0;
  /** When the request at the head of the queue became next in line for a reply. */
  #headSince = 0;
  /** When the last request was written. */
  #lastSendAt = 0;
  /** The one internal owner told of a close (see {@link Connection.bindOwner}). */
  #owner: ((info: CloseInfo) => void) | undefined;
  /** Whether the stream may keep the process alive: only while a request waits (unref'd from `start()`). */
  #refd = false;
  #closed: CloseInfo | undefined;
  #listeners: Array<(info: CloseInfo) => void> = [];
  /** Whether any byte has arrived yet. */
  #answered = false;
  /** When this connection was opened (or adopted), for the wording of an early close. */
  readonly #openedAt = performance.now();
  /** `host:port`, when known. */
  readonly #server: string | undefined;
  /** How long the connection had been idle when the server sent its parting `error` unprompted (its read timeout). */
  #idleAtTimeoutMs: number | undefined;

  /**
   * Wrap a connected stream. Most users call {@link connect} instead.
   * @param stream A stream from a runtime adapter.
   * @param tls Whether the stream is TLS (only changes the wording of errors).
   * @param server The server's `host:port`, named in every error of this
   * connection (unknown for a socket the user opened).
   */
  constructor(stream: ByteStream, tls = false, server?: string) {
    this.#stream = stream;
    this.#server = server;
    this.#decoder = new LineDecoder(DEFAULT_MAX_REPLY_BYTES, stream.latin1);
    stream.start({
      data: (chunk) => this.#onData(chunk),
      end: (error) =>
        this.#shutdown(
          false,
          new ConnectionError(
            named(
              this.#server,
              serverClosedMessage(this.#answered, tls, this.pending, Math.round(performance.now() - this.#openedAt)),
            ),
            { cause: error },
          ),
        ),
    });
  }

  /** The server's `host:port`, or `undefined` for a socket the user opened. */
  get server(): string | undefined {
    return this.#server;
  }

  /** `true` once the connection is closed, by either side. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Why the connection closed, or `undefined` while it is open. */
  get closeError(): LockError | undefined {
    return this.#closed?.error;
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#inflight.size;
  }

  /**
   * @internal Why a holding on this connection was lost to its close by the
   * server, worded for a client that assumed `assumedMs` of read timeout.
   */
  lossReason(assumedMs: number): string {
    return lostConnectionReason(this.#idleAtTimeoutMs, assumedMs);
  }

  /** `performance.now()` when the last request was written (0 if none was). */
  get lastSendAt(): number {
    return this.#lastSendAt;
  }

  /**
   * @internal Set (or clear) the one internal owner told when the connection
   * closes, after the {@link onClose} listeners: a lock's holding, which
   * changes when a pooled connection changes hands. Cheaper than a listener
   * added and removed per use.
   */
  bindOwner(owner: ((info: CloseInfo) => void) | undefined): void {
    this.#owner = owner;
  }

  /**
   * Send one encoded request and resolve with its parsed reply.
   *
   * `timeoutMs` counts from the moment the request is next in line for a
   * reply; if it passes, the connection is closed (its state is unknown) and
   * every pending request fails with a `TIMEOUT` {@link ConnectionError}.
   *
   * @param bytes The request: its bytes, or its text (sent as UTF-8).
   * @param command Command word, for error messages.
   * @param parse Turns the reply line (and the command word) into the result,
   * or throws a typed error.
   * @param timeoutMs Longest wait for the reply.
   * @param background For the pool's keepalive `ping`, not part of the
   * public API: `true`, the wait for this reply does not keep the process
   * alive; a request sent without it does, until every reply has come.
   * @returns The parsed reply.
   */
  request<T>(
    bytes: Uint8Array | string,
    command: string,
    parse: (line: string, command: string) => T,
    timeoutMs: number,
    background = false,
  ): Promise<T> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed.error);
    return new Promise<T>((resolve, reject) => {
      this.#enqueue(pending(command, parse, resolve, reject, timeoutMs, undefined, 0), bytes, background);
    });
  }

  /**
   * @internal {@link request} with callbacks (inflight.ts), given `ctx` and
   * `tag` back, so that they need not be closures.
   */
  send<C extends object>(
    bytes: string,
    command: string,
    parse: (line: string, command: string) => unknown,
    timeoutMs: number,
    onReply: ReplyCallback<C>,
    onFail: ReplyCallback<C>,
    ctx: C,
    tag: number,
  ): void {
    const p = pending(command, parse, onReply, onFail, timeoutMs, ctx, tag);
    if (this.#closed !== undefined) fail(p, this.#closed.error);
    else this.#enqueue(p, bytes, false);
  }

  #enqueue(p: Pending, bytes: Uint8Array | string, background: boolean): void {
    const inflight = this.#inflight;
    inflight.push(p);
    const sentAt = performance.now();
    this.#lastSendAt = sentAt;
    if (!background) this.#keepAlive(true);
    if (inflight.size === 1) {
      this.#headSince = sentAt;
      this.#armTimer(sentAt + p.timeoutMs);
    }
    inflight.writing = true;
    try {
      const stream = this.#stream;
      if (typeof bytes !== "string") stream.write(bytes);
      else if (stream.writeText !== undefined) stream.writeText(bytes);
      else stream.write(encoder.encode(bytes));
    } catch (cause) {
      this.#shutdown(false, new ConnectionError("writing to the connection failed", { cause }));
    } finally {
      inflight.writing = false;
    }
  }

  /**
   * Run `fn` when the connection closes (at once if it already has).
   * @returns A function that removes the listener.
   */
  onClose(fn: (info: CloseInfo) => void): () => void {
    if (this.#closed !== undefined) {
      fn(this.#closed);
      return () => {};
    }
    this.#listeners.push(fn);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== fn);
    };
  }

  /**
   * Close the connection now. Synchronous and idempotent. Pending requests
   * fail with `reason` (by default a {@link ConnectionError}). With the
   * server's default settings, closing releases everything this connection
   * holds and drops its place in any queue.
   *
   * @param reason The error pending requests fail with.
   */
  close(reason?: LockError): void {
    this.#shutdown(true, reason ?? new ConnectionError("the connection was closed by the client"));
  }

  /**
   * Mark the connection closed, fail its requests, tell the listeners and
   * the owner (every holding on it learns of the loss here), and only then
   * close the stream.
   */
  #shutdown(byClient: boolean, error: LockError): void {
    if (this.#closed !== undefined) return;
    const info: CloseInfo = { byClient, error };
    this.#closed = info;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const p of this.#inflight.drain()) fail(p, error);
    const listeners = this.#listeners;
    this.#listeners = [];
    const owner = this.#owner;
    this.#owner = undefined;
    if (owner !== undefined) listeners.push(owner);
    for (const l of listeners) {
      try {
        l(info);
      } catch (err) {
        // A throwing listener must not stop the others, nor escape into the runtime's socket code.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    // Only now, with everyone told (I1): closing lets the server free what this connection holds.
    this.#stream.close();
  }

  /**
   * Let the stream keep the process alive, or not. Only a request waiting for
   * its reply should: a connection that merely holds a lock must not stop a
   * script from ending (the OS closes the socket at exit and the server frees
   * the lock). Reply timers are unref'd, so this is what keeps a blocked
   * acquire alive.
   */
  #keepAlive(on: boolean): void {
    if (on === this.#refd || this.#closed !== undefined) return;
    this.#refd = on;
    try {
      if (on) this.#stream.ref?.();
      else this.#stream.unref?.();
    } catch {
      // A stream that is going away: its end() follows.
    }
  }

  /** Make sure the reply timer fires no later than `deadline`. */
  #armTimer(deadline: number): void {
    if (this.#timer !== undefined) {
      if (this.#timerAt <= deadline) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = deadline;
    this.#timer = backgroundTimer(this.#onTimer, deadline - performance.now());
  }

  /** The reply timer: time out the head request if its time is up, else wait for what is left. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const p = this.#inflight.head;
    if (p === undefined || this.#closed !== undefined) return;
    const deadline = this.#headSince + p.timeoutMs;
    if (performance.now() < deadline) {
      this.#armTimer(deadline);
      return;
    }
    this.#shutdown(false, noReplyError(this.#server, p.command, p.timeoutMs, this.#answered));
  };

  #onData(chunk: Uint8Array): void {
    if (this.#closed !== undefined) return;
    if (!this.#answered) {
      this.#answered = true;
      // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where a reply line should be.
      if ((chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03) {
        this.#shutdown(
          false,
          new ConnectionError(named(this.#server, "the server answered with TLS: set the tls option")),
        );
        return;
      }
    }
    try {
      this.#decoder.push(chunk, this.#emitLine);
    } catch (err) {
      this.#shutdown(false, err instanceof LockError ? err : new ProtocolError(String(err)));
    } finally {
      this.#inflight.handOver();
    }
  }

  /** {@link Connection.#onLine} bound once, not per chunk. */
  readonly #emitLine = (line: string): void => this.#onLine(line);

  #onLine(line: string): void {
    if (this.#closed !== undefined) return;
    const inflight = this.#inflight;
    const p = inflight.head;
    if (p === undefined) {
      // Nobody asked. Never hand it to a later request: report it and close.
      // The server's read deadline runs from its last reply, which came a round trip after our last request:
      // timed from that request (no clock read per reply), the idle time is over by at most that round trip.
      if (line === "error") this.#idleAtTimeoutMs = performance.now() - (this.#lastSendAt || this.#openedAt);
      const err = unsolicitedError(this.#server, line);
      this.#shutdown(false, err);
      return;
    }
    if (inflight.shift()) this.#keepAlive(false);
    else {
      const since = performance.now();
      this.#headSince = since;
      this.#armTimer(since + (inflight.head as Pending).timeoutMs);
    }
    let value: unknown;
    try {
      value = p.parse(line, p.command);
    } catch (caught) {
      const err = replyError(this.#server, line, caught);
      fail(p, err);
      // A malformed reply means the stream can no longer be trusted.
      if (err instanceof ProtocolError) this.#shutdown(false, err);
      else if (err instanceof LockError && err.code === "AUTH") this.#shutdown(false, err);
      return;
    }
    inflight.answer(p, value);
  }
}

const encoder = new TextEncoder();
