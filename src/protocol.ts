/**
 * The dflockd wire format, and nothing else: requests are built from typed,
 * validated arguments as text (three lines), and reply bytes are decoded into
 * lines; replies.ts turns the lines into typed results or typed errors (and
 * is re-exported here). No I/O happens here.
 *
 * A request is three `\n`-terminated lines (command, key, argument); a reply
 * is one line. Replies come in request order.
 *
 * @module
 */
import { InvalidArgumentError, ProtocolError } from "./errors.ts";
import { checkKey, checkLease, checkLimit, checkTimeout, checkToken, MAX_LINE_BYTES } from "./validate.ts";

/** Which family of commands a request belongs to. */
export type Kind = "lock" | "semaphore";

/**
 * A granted lock or semaphore slot, as the server reported it.
 *
 * @example
 * ```ts
 * import { connect, acquire, type Grant } from "dflockd-client";
 *
 * const conn = await connect();
 * const grant: Grant = await acquire(conn, "k", 10);
 * console.log(grant.token, grant.lease, grant.fence ?? "no fence");
 * ```
 */
export interface Grant {
  /** Opaque token identifying this holding; needed to renew and release. */
  token: string;
  /** Lease TTL the server applied, in seconds. */
  lease: number;
  /** Fencing token, when the server sends one (newer builds); otherwise absent. */
  fence?: string;
}

/**
 * Result of a low-level two-phase enqueue: a grant, or `queued` with null fields.
 *
 * @example
 * ```ts
 * import { connect, enqueue, type EnqueueResult } from "dflockd-client";
 *
 * const conn = await connect();
 * const r: EnqueueResult = await enqueue(conn, "k");
 * if (r.status === "acquired") console.log(r.token);
 * ```
 */
export type EnqueueResult = ({ status: "acquired" } & Grant) | { status: "queued"; token: null; lease: null };

/** Renewal result: the TTL the server applied, and the fence if it sent one. */
export interface Renewal {
  /** Lease TTL the server applied, in seconds; `undefined` for a bare `ok` (older servers). */
  lease?: number;
  /** Fencing token, when the server sends one. */
  fence?: string;
}

/** The three lines of a request, as text: sent as UTF-8. */
const CMD = {
  lock: { acquire: "l", enqueue: "e", wait: "w", release: "r", renew: "n" },
  semaphore: { acquire: "sl", enqueue: "se", wait: "sw", release: "sr", renew: "sn" },
} as const;

function frame(cmd: string, key: string, arg: string): string {
  if (arg.length > MAX_LINE_BYTES) {
    throw new InvalidArgumentError(
      `the argument line would be ${arg.length} bytes; the server accepts ${MAX_LINE_BYTES}`,
    );
  }
  return `${cmd}\n${key}\n${arg}\n`;
}

function withLease(arg: string, leaseS: number | undefined): string {
  return leaseS === undefined ? arg : `${arg} ${leaseS}`;
}

/** Command word for an operation of the given kind (e.g. `"sl"`). */
export function commandName(kind: Kind, op: keyof (typeof CMD)["lock"]): string {
  return CMD[kind][op];
}

/**
 * `l key <timeout> [<lease>]` or `sl key <timeout> <limit> [<lease>]`.
 * @throws InvalidArgumentError on any bad argument.
 */
export function encodeAcquire(
  kind: Kind,
  key: string,
  timeoutS: number,
  leaseS: number | undefined,
  limit?: number,
): string {
  checkKey(key);
  checkTimeout("timeout", timeoutS);
  checkLease(leaseS);
  if (kind === "semaphore") checkLimit(limit);
  return acquireRequest(kind, key, timeoutS, leaseS, limit);
}

/**
 * The seconds sent for a wait without limit (`Infinity`): 2^31 - 1, some 68
 * years, which dflockd reads without overflow (it counts in int64
 * nanoseconds, so up to 9223372036 s) and which fits any 32-bit reader.
 */
export const WAIT_FOREVER_S = 2_147_483_647;

/** A wait's seconds as sent: {@link WAIT_FOREVER_S} for `Infinity`. */
function waitOnWire(timeoutS: number): number {
  return timeoutS === Number.POSITIVE_INFINITY ? WAIT_FOREVER_S : timeoutS;
}

/**
 * {@link encodeAcquire} without the checks, for arguments checked once
 * already: a lock instance's own key and settings, on every acquire.
 */
export function acquireRequest(
  kind: Kind,
  key: string,
  timeoutS: number,
  leaseS: number | undefined,
  limit: number | undefined,
): string {
  const t = waitOnWire(timeoutS);
  const base = kind === "semaphore" ? `${t} ${limit}` : `${t}`;
  return frame(CMD[kind].acquire, key, withLease(base, leaseS));
}

/**
 * `e key [<lease>]` or `se key <limit> [<lease>]`.
 * @throws InvalidArgumentError on any bad argument.
 */
export function encodeEnqueue(kind: Kind, key: string, leaseS: number | undefined, limit?: number): string {
  checkKey(key);
  checkLease(leaseS);
  if (kind === "semaphore") return frame("se", key, withLease(`${checkLimit(limit)}`, leaseS));
  return frame("e", key, leaseS === undefined ? "" : `${leaseS}`);
}

/**
 * `w key <timeout>` or `sw key <timeout>`.
 * @throws InvalidArgumentError on any bad argument.
 */
export function encodeWait(kind: Kind, key: string, timeoutS: number): string {
  checkKey(key);
  checkTimeout("timeout", timeoutS);
  return waitRequest(kind, key, timeoutS);
}

/** {@link encodeWait} without the checks, for a lock instance's own key; `Infinity` waits without limit. */
export function waitRequest(kind: Kind, key: string, timeoutS: number): string {
  return frame(CMD[kind].wait, key, `${waitOnWire(timeoutS)}`);
}

/**
 * `n key <token> [<lease>]` or `sn ...`. Send the lease: a bare renew resets
 * the TTL to the server's default.
 * @throws InvalidArgumentError on any bad argument.
 */
export function encodeRenew(kind: Kind, key: string, token: string, leaseS: number | undefined): string {
  checkKey(key);
  checkToken(token);
  checkLease(leaseS);
  return frame(CMD[kind].renew, key, withLease(token, leaseS));
}

/**
 * `r key <token>` or `sr key <token>`.
 * @throws InvalidArgumentError on any bad argument.
 */
export function encodeRelease(kind: Kind, key: string, token: string): string {
  checkKey(key);
  checkToken(token);
  return releaseRequest(kind, key, token);
}

/**
 * {@link encodeRelease} without the checks: for a lock instance's own key and
 * a token its grant's parser has checked.
 */
export function releaseRequest(kind: Kind, key: string, token: string): string {
  return frame(CMD[kind].release, key, token);
}

const STATS = frame("stats", "_", "");
/** `ping _ _`: answered `ok` by dflockd v1.14 and later, `error` (and nothing else) by older servers. */
export const PING_REQUEST: string = frame("ping", "_", "_");
/** `stats _ ` (empty argument). */
export function encodeStats(): string {
  return STATS;
}

// ---------------------------------------------------------------- decoding

/** Default cap on one reply line (stats replies can be large). */
export const DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024;

const NL = 0x0a;
const CR = 0x0d;

/**
 * Decodes `bytes[start, end)` one character per byte (Latin-1), which for
 * ASCII is exactly UTF-8, or returns `undefined` if it cannot. An adapter
 * whose chunks can do this natively (a Node `Buffer`) offers it to skip a
 * strict UTF-8 decode of every reply.
 *
 * @example
 * ```ts
 * import type { Latin1Decoder } from "dflockd-client";
 *
 * const none: Latin1Decoder = () => undefined; // always leave it to the core's UTF-8 decoder
 * ```
 */
export type Latin1Decoder = (bytes: Uint8Array, start: number, end: number) => string | undefined;

/**
 * Splits a byte stream into reply lines, whatever the chunk boundaries.
 * Accepts `\n` and `\r\n`. Lines are decoded as strict UTF-8 only once they are
 * complete, so a character split across chunks decodes intact.
 */
export class LineDecoder {
  readonly #max: number;
  readonly #latin1: Latin1Decoder | undefined;
  // ignoreBOM: a byte-order mark is kept, so a line starting with one is refused like any other stray byte.
  readonly #utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  #parts: Uint8Array[] = [];
  #partBytes = 0;

  /**
   * @param maxLineBytes Longest line accepted; a longer one is a {@link ProtocolError}.
   * @param latin1 The stream's own decoder for the chunks it delivers, if it
   * has a fast one. A line it decodes is kept only if it is all ASCII.
   */
  constructor(maxLineBytes: number = DEFAULT_MAX_REPLY_BYTES, latin1?: Latin1Decoder) {
    this.#max = maxLineBytes;
    this.#latin1 = latin1;
  }

  /** Bytes held while waiting for the end of a line. */
  get pendingBytes(): number {
    return this.#partBytes;
  }

  /**
   * Feed one chunk; `emit` is called once per complete line, in order.
   * @throws ProtocolError for an overlong line or invalid UTF-8. After that the
   * decoder must not be used again.
   */
  push(chunk: Uint8Array, emit: (line: string) => void): void {
    const size = chunk.length;
    // The usual case: whole lines, nothing held over. No multi-byte
    // character spans a line feed, so the whole chunk decodes as one text
    // (no subarray per line) and splits on "\n" there.
    if (this.#partBytes === 0 && size > 0 && size <= this.#max + 1 && chunk[size - 1] === NL) {
      let text = this.#latin1?.(chunk, 0, size);
      if (text === undefined || !isAscii(text)) text = this.#tryStrict(chunk);
      // Invalid UTF-8 somewhere: the line-by-line path below reports it after the lines before it.
      if (text !== undefined) {
        for (let from = 0; from < text.length; ) {
          const nl = text.indexOf("\n", from);
          emit(text.slice(from, nl > from && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl));
          from = nl + 1;
        }
        return;
      }
    }
    let start = 0;
    let nl = chunk.indexOf(NL);
    if (this.#partBytes > 0 && nl !== -1) {
      const head = chunk.subarray(0, nl);
      this.#checkSize(this.#partBytes + head.length);
      this.#parts.push(head);
      const line = concat(this.#parts, this.#partBytes + head.length);
      this.#parts = [];
      this.#partBytes = 0;
      emit(this.#decode(line, 0, line.length, false));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    while (nl !== -1) {
      this.#checkSize(nl - start);
      emit(this.#decode(chunk, start, nl, true));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      this.#checkSize(this.#partBytes + rest);
      // Copy: the runtime may reuse the chunk's memory after this call. (A
      // Node Buffer's own slice() is a view, hence Uint8Array's.)
      this.#parts.push(Uint8Array.prototype.slice.call(chunk, start));
      this.#partBytes += rest;
    }
  }

  #checkSize(bytes: number): void {
    // The limit counts the line without its terminator; allow one byte for a `\r`.
    if (bytes > this.#max + 1) {
      throw new ProtocolError(`reply line longer than ${this.#max} bytes`);
    }
  }

  /** `bytes[start, end)` as text, a trailing `\r` dropped; `own` when `bytes` is a chunk the stream delivered. */
  #decode(bytes: Uint8Array, start: number, end: number, own: boolean): string {
    if (end > start && bytes[end - 1] === CR) end--;
    if (end - start > this.#max) throw new ProtocolError(`reply line longer than ${this.#max} bytes`);
    if (own && this.#latin1 !== undefined) {
      const text = this.#latin1(bytes, start, end);
      if (text !== undefined && isAscii(text)) return text;
    }
    return this.#strict(bytes.subarray(start, end));
  }

  /** Strict UTF-8, or `undefined` for invalid bytes. */
  #tryStrict(bytes: Uint8Array): string | undefined {
    try {
      return this.#utf8.decode(bytes);
    } catch {
      return undefined;
    }
  }

  /** Strict UTF-8: invalid bytes are a {@link ProtocolError}. */
  #strict(bytes: Uint8Array): string {
    try {
      return this.#utf8.decode(bytes);
    } catch (cause) {
      const err = new ProtocolError("reply is not valid UTF-8");
      (err as { cause?: unknown }).cause = cause;
      throw err;
    }
  }
}

/** Whether every character of `text` is ASCII (so its Latin-1 and UTF-8 readings agree). */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export * from "./replies.ts";
