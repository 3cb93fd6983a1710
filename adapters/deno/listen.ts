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
 *   order, each repeated with the rest until all is taken.
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
import type { ConnEvents, Listen, Listening, ListenOptions, ServerConn } from "../../src/server/listen.ts";
import { acceptAll, closeQuietly, innerTlsListener, READ_SIZE, type Relay, relayTls } from "./tls-relay.ts";

/** A TLS peer's FIN without close_notify: Deno throws where Node reports the end. */
function isEof(err: unknown): boolean {
  return err instanceof Error && err.name === "UnexpectedEof";
}

/** Where one connection is: with the server, closing after its queue, gone. */
type Phase = "open" | "closing" | "gone";

/** One Deno connection (TCP, or TLS behind a relay), seen by the server as a {@link ServerConn}. */
class Link implements ServerConn {
  readonly #conn: Deno.Conn;
  readonly #relay: Relay | undefined;
  #events: ConnEvents | undefined;
  #phase: Phase = "open";
  /** Bytes not yet taken by `write()`, in order; the first is being written while `#writing`. */
  #queue: Uint8Array[] = [];
  #writing = false;
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
        const n = await this.#conn.read(buf);
        if (this.#phase === "gone") return;
        if (n === null) break;
        // While closing, bytes are read and dropped.
        if (this.#phase === "open") this.#events?.data(buf.slice(0, n));
      }
    } catch (err) {
      if (this.#phase !== "open") return;
      if (!isEof(err)) {
        this.destroy();
        return;
      }
    }
    if (this.#phase !== "open") return;
    try {
      this.#events?.end();
    } catch {
      this.destroy();
    }
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const next = this.#queue[0] as Uint8Array;
        const n = await this.#conn.write(next);
        if (this.#phase === "gone") return;
        if (n < next.length) this.#queue[0] = next.subarray(n);
        else this.#queue.shift();
      }
    } catch {
      this.destroy();
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#phase === "closing") this.#shut();
  }

  /** Close the connection; report `closed()` once the relay, if any, has closed its sockets too. */
  #shut(): void {
    if (this.#phase === "gone") return;
    this.#phase = "gone";
    this.#queue = [];
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

  write(bytes: Uint8Array): void {
    if (this.#phase !== "open" || bytes.length === 0) return;
    this.#queue.push(bytes);
    if (!this.#writing) void this.#pump();
  }

  close(): void {
    if (this.#phase !== "open") return;
    this.#phase = "closing";
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
  const loops = relayed?.loops ?? [acceptAll(front, (conn) => new Link(conn).handOver(accept), isClosing)];

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
