/**
 * The dflockd-compatible server's listener on Deno: `Deno.listen` for TCP,
 * `Deno.listenTls` (PEM certificate and key) for TLS, never Deno's `node:net`
 * or `node:tls` emulation.
 *
 * What Deno's connections do, and what this file does about it (checked on Deno 2.9):
 * - `read()` resolving to `null` is the peer's FIN; the connection can still
 *   be written to. Over TLS, a peer that sends its FIN without a TLS
 *   close_notify makes `read()` throw `UnexpectedEof` instead, and the
 *   connection stays writable: that is reported as `end()` too, as Node does.
 * - `write()` may take part of the bytes; writes go out one at a time, in
 *   order, each repeated with the rest until all is taken. Chunks queued
 *   meanwhile are joined (up to 64 KiB) into the next call. `queued` is what
 *   no call has taken yet; for TLS, "taken" is taken by the TLS connection,
 *   whose socket is the relay's loopback pair (tls-relay.ts).
 * - Accepted TCP connections get TCP_NODELAY (`setNoDelay(true)`), so that a
 *   reply written while an earlier one is unacknowledged is not held for the
 *   peer's delayed ACK (about 40 ms on Linux). A `Deno.TlsConn` has no
 *   `setNoDelay` and Deno leaves Nagle on for it (seen with strace): over TLS,
 *   what the server writes in one turn of the event loop is written in one
 *   call after that turn (`setImmediate`), which is what keeps pipelined replies
 *   from waiting. A write in a later turn, made while an earlier one is
 *   unacknowledged and with no bytes from the peer between to carry the ACK,
 *   still waits for it (a reply written 2 ms after another arrived 43 ms after it).
 * - `pause()` stops calling `read()`, so the kernel's buffers fill and the peer
 *   is held back (over TLS once the relay's pair is full too); the bytes of a
 *   read already under way, and the FIN, wait for `resume()`.
 * - `close()` closes the connection both ways; bytes whose `write()` has
 *   resolved still go. Reading stops being reported at `close()`, but the
 *   connection keeps reading (and dropping) until it is closed, so that the
 *   kernel does not answer the final close with a reset for unread bytes.
 * - Closing a listener rejects its pending `accept()`, and the port is only
 *   free once that rejection has come (a new listener made before it fails
 *   with AddrInUse): `Listening.close()` waits for it.
 * - For TLS the public port is a plain `Deno.listen` listener whose connections
 *   are relayed to an inner `Deno.listenTls` listener (tls-relay.ts), since a
 *   Deno TLS connection still in its handshake cannot be dropped.
 *
 * @module
 */
import {
  type ConnEvents,
  type Listen,
  type Listening,
  type ListenOptions,
  type ServerConn,
  WriteLedger,
} from "../../src/server/listen.ts";
import { acceptAll, closeQuietly, innerTlsListener, READ_SIZE, type Relay, relayTls } from "./tls-relay.ts";

/** A TLS peer's FIN without close_notify: Deno throws where Node reports the end. */
function isEof(err: unknown): boolean {
  return err instanceof Error && err.name === "UnexpectedEof";
}

/** Where one connection is: with the server, closing after its queue, gone. */
type Phase = "open" | "closing" | "gone";

/** At most this many queued bytes are joined into one `write()` call. */
const JOIN_LIMIT = 64 * 1024;

/**
 * Run `fn` once this turn of the event loop, microtasks included, is over:
 * Deno's global `setImmediate` (about 0.02 ms later), where there is none a
 * 0 ms timer (which Deno runs about 2 ms later).
 */
const afterThisTurn: (fn: () => void) => void = (() => {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  return immediate !== undefined ? (fn) => void immediate(fn) : (fn) => void setTimeout(fn, 0);
})();

/** One Deno connection (TCP, or TLS behind a relay), seen by the server as a {@link ServerConn}. */
class Link implements ServerConn {
  readonly #conn: Deno.Conn;
  readonly #relay: Relay | undefined;
  #events: ConnEvents | undefined;
  #phase: Phase = "open";
  /** Bytes given to `write()` and not yet handed to the connection, in order. */
  #queue: Uint8Array[] = [];
  /** A pump is scheduled or running. */
  #writing = false;
  /** Bytes given to `write()` and taken, for `queued` and `flushed()`. */
  readonly #ledger = new WriteLedger();
  #paused = false;
  /** Wakes the read loop held by `pause()`. */
  #wake: (() => void) | undefined;
  #reported = false;

  constructor(conn: Deno.Conn, relay?: Relay) {
    this.#conn = conn;
    this.#relay = relay;
  }

  /** @internal Give the connection to the server, then read. */
  handOver(accept: (conn: ServerConn) => ConnEvents): void {
    try {
      this.#events = accept(this);
    } catch {
      this.destroy();
      return;
    }
    void this.#read();
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(READ_SIZE);
    try {
      for (;;) {
        while (this.#paused) await this.#resumed();
        const n = await this.#conn.read(buf);
        if (this.#phase === "gone") return;
        if (n === null) break;
        // While closing, bytes are read and dropped.
        if (this.#phase !== "open") continue;
        const chunk = buf.slice(0, n);
        // A read already under way when pause() came: its bytes wait for resume().
        while (this.#paused) await this.#resumed();
        if (this.#phase === "open") this.#events?.data(chunk);
      }
    } catch (err) {
      if (this.#phase !== "open") return;
      if (!isEof(err)) {
        this.destroy();
        return;
      }
    }
    while (this.#paused) await this.#resumed();
    if (this.#phase !== "open") return;
    try {
      this.#events?.end();
    } catch {
      this.destroy();
    }
  }

  /** Resolves on `resume()`, or once the connection is closing or gone. */
  #resumed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #unpause(): void {
    this.#paused = false;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        let rest = this.#next();
        while (rest.length > 0) {
          const n = await this.#conn.write(rest);
          if (this.#phase === "gone") return;
          rest = rest.subarray(n);
          this.#ledger.take(n);
        }
      }
    } catch {
      this.destroy();
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#phase === "closing") this.#shut();
  }

  /** The first queued chunk, joined with the small ones after it: one `write()` call where the server made several. */
  #next(): Uint8Array {
    const first = this.#queue.shift() as Uint8Array;
    let size = first.length;
    let count = 0;
    for (const chunk of this.#queue) {
      if (size + chunk.length > JOIN_LIMIT) break;
      size += chunk.length;
      count++;
    }
    if (count === 0) return first;
    const joined = new Uint8Array(size);
    joined.set(first);
    let at = first.length;
    for (const chunk of this.#queue.splice(0, count)) {
      joined.set(chunk, at);
      at += chunk.length;
    }
    return joined;
  }

  /** Close the connection; report `closed()` once the relay, if any, has closed its sockets too. */
  #shut(): void {
    if (this.#phase === "gone") return;
    this.#phase = "gone";
    this.#queue = [];
    this.#unpause();
    // Nothing more will be taken: whoever waits in flushed() is released.
    this.#ledger.settle();
    closeQuietly(this.#conn);
    void (this.#relay?.done ?? Promise.resolve()).then(() => {
      if (this.#reported) return;
      this.#reported = true;
      try {
        this.#events?.closed();
      } catch {
        // The server's own failure; the connection is gone either way.
      }
    });
  }

  get queued(): number {
    return this.#ledger.queued;
  }

  flushed(): Promise<void> {
    return this.#ledger.flushed();
  }

  pause(): void {
    if (this.#phase === "open") this.#paused = true;
  }

  resume(): void {
    if (this.#paused) this.#unpause();
  }

  write(bytes: Uint8Array): void {
    if (this.#phase !== "open" || bytes.length === 0) return;
    this.#queue.push(bytes);
    this.#ledger.give(bytes.length);
    if (this.#writing) return;
    this.#writing = true;
    // Plain TCP has TCP_NODELAY and writes at once. The TLS connection's
    // socket keeps Nagle on (Deno cannot turn it off on a TlsConn), so a small
    // write made while the one before is unacknowledged waits for the peer's
    // delayed ACK (40 ms): there, what the server writes in one turn of the
    // event loop is written after it, in one call.
    if (this.#relay === undefined) void this.#pump();
    else afterThisTurn(() => void this.#pump());
  }

  close(): void {
    if (this.#phase !== "open") return;
    this.#phase = "closing";
    // Reading goes on (bytes are dropped), paused or not.
    this.#unpause();
    if (!this.#writing) this.#shut();
  }

  destroy(): void {
    if (this.#reported) return;
    this.#relay?.drop();
    this.#shut();
  }
}

/** Listen with `Deno.listen`, or for TLS `Deno.listen` in front of a relayed `Deno.listenTls`. */
export const denoListen: Listen = async (options: ListenOptions, accept): Promise<Listening> => {
  const tls = options.tls;
  let closing = false;
  const isClosing = (): boolean => closing;
  const inner = tls === undefined ? undefined : innerTlsListener(tls);
  let front: Deno.TcpListener;
  try {
    front = Deno.listen({ hostname: options.host, port: options.port });
  } catch (err) {
    closeQuietly(inner);
    throw err;
  }
  const relayed =
    inner === undefined
      ? undefined
      : relayTls(front, inner, options.handshakeTimeoutMs, isClosing, (conn, relay) =>
          new Link(conn, relay).handOver(accept),
        );
  const plain = (conn: Deno.TcpConn): void => {
    conn.setNoDelay(true);
    new Link(conn).handOver(accept);
  };
  const loops = relayed?.loops ?? [acceptAll(front, plain, isClosing)];

  return {
    port: front.addr.port,
    close: async () => {
      if (!closing) {
        closing = true;
        closeQuietly(front);
        closeQuietly(inner);
        relayed?.dropAll();
      }
      // The port is free once the pending accept() has failed.
      await Promise.all(loops);
    },
  };
};
