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
 * - A `Deno.listenTls` connection still in its TLS handshake cannot be
 *   dropped: `close()` on it ends nothing but JavaScript's handle (its
 *   `handshake()` rejects, `closeWrite()` never settles), and Deno's TLS stream
 *   keeps the socket open until the peer speaks or hangs up, which a silent
 *   client never does. So for TLS the public port is a plain `Deno.listen`
 *   listener; each connection is relayed, byte for byte, to a `Deno.listenTls`
 *   listener of this process on 127.0.0.1 and a free port, where TLS
 *   terminates. Dropping a handshake closes the public socket and the relay's
 *   own socket, both plain TCP. Connections on that inner port that did not
 *   come through the relay (another local process) are refused: closed
 *   unheard after `handshakeTimeoutMs` (as far as Deno lets them be closed).
 *   The relay costs one more loopback socket pair and a copy of each byte.
 *
 * @module
 */
import type { ConnEvents, Listen, Listening, ListenOptions, ServerConn } from "../../src/server/listen.ts";

/** The size of each read. */
const READ_SIZE = 16 * 1024;

/** The relay's inner TLS listener binds here. */
const LOOPBACK = "127.0.0.1";

function closeQuietly(closable: { close(): void } | undefined): void {
  try {
    closable?.close();
  } catch {
    // Already closed.
  }
}

/** A TLS peer's FIN without close_notify: Deno throws where Node reports the end. */
function isEof(err: unknown): boolean {
  return err instanceof Error && err.name === "UnexpectedEof";
}

/**
 * Copies bytes both ways between the public socket (`front`) and the socket
 * this process opened to its own TLS listener (`back`), carrying each side's
 * FIN to the other. `done` resolves once both are closed.
 */
class Relay {
  readonly done: Promise<void>;

  constructor(
    readonly front: Deno.TcpConn,
    readonly back: Deno.TcpConn,
  ) {
    front.setNoDelay(true);
    back.setNoDelay(true);
    void this.#pipe(front, back).then((eof) => {
      if (eof) return back.closeWrite().catch(() => this.drop());
      this.drop();
    });
    // The TLS side closed (or failed): what it sent is written, then the peer is closed both ways.
    this.done = this.#pipe(back, front).then(() => this.drop());
  }

  /** Copy `from` to `to` until `from` ends (`true`) or either fails (`false`). */
  async #pipe(from: Deno.Conn, to: Deno.Conn): Promise<boolean> {
    const buf = new Uint8Array(READ_SIZE);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) return true;
        let rest = buf.subarray(0, n);
        while (rest.length > 0) rest = rest.subarray(await to.write(rest));
      }
    } catch {
      return false;
    }
  }

  /** Close both sockets now. */
  drop(): void {
    closeQuietly(this.front);
    closeQuietly(this.back);
  }
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

/** Accept from `listener` until it is closed, giving each connection to `take`. */
async function acceptAll<C extends Deno.Conn>(
  listener: { accept(): Promise<C> },
  take: (conn: C) => void,
  closing: () => boolean,
): Promise<void> {
  for (;;) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch {
      if (closing()) return;
      // Out of file descriptors, say: try again shortly, not in a tight loop.
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    if (closing()) closeQuietly(conn);
    else take(conn);
  }
}

/** A TLS connection from its arrival on the public port until its handshake is done or it is dropped. */
interface Handshake {
  readonly front: Deno.TcpConn;
  back?: Deno.TcpConn;
  relay?: Relay;
  tls?: Deno.TlsConn;
  timer?: ReturnType<typeof setTimeout>;
  dropped: boolean;
}

/** Listen with `Deno.listen`, or for TLS `Deno.listen` in front of a relayed `Deno.listenTls`. */
export const denoListen: Listen = async (options: ListenOptions, accept): Promise<Listening> => {
  const tls = options.tls;
  let closing = false;
  const isClosing = (): boolean => closing;
  const inner =
    tls === undefined ? undefined : Deno.listenTls({ hostname: LOOPBACK, port: 0, cert: tls.cert, key: tls.key });
  let front: Deno.TcpListener;
  try {
    front = Deno.listen({ hostname: options.host, port: options.port });
  } catch (err) {
    closeQuietly(inner);
    throw err;
  }
  const loops: Promise<void>[] = [];
  const handshaking = new Set<Handshake>();
  // The relay's sockets to the inner listener, by local port, and inner
  // connections that came before their relay socket's connect() resolved.
  const byPort = new Map<number, Handshake>();
  const early = new Map<number, { conn: Deno.TlsConn; timer: ReturnType<typeof setTimeout> }>();

  const drop = (h: Handshake): void => {
    if (h.dropped) return;
    h.dropped = true;
    clearTimeout(h.timer);
    handshaking.delete(h);
    if (h.back !== undefined) byPort.delete(h.back.localAddr.port);
    closeQuietly(h.tls);
    closeQuietly(h.front);
    closeQuietly(h.back);
  };
  const secure = (h: Handshake, conn: Deno.TlsConn): void => {
    h.tls = conn;
    conn.handshake().then(
      () => {
        if (h.dropped || h.relay === undefined) return;
        clearTimeout(h.timer);
        handshaking.delete(h);
        new Link(conn, h.relay).handOver(accept);
      },
      () => drop(h),
    );
  };

  if (inner === undefined) {
    loops.push(acceptAll(front, (conn) => new Link(conn).handOver(accept), isClosing));
  } else {
    const innerPort = inner.addr.port;
    loops.push(
      acceptAll(
        front,
        (conn) => {
          const h: Handshake = { front: conn, dropped: false };
          handshaking.add(h);
          h.timer = setTimeout(() => drop(h), options.handshakeTimeoutMs);
          Deno.connect({ hostname: LOOPBACK, port: innerPort }).then(
            (back) => {
              h.back = back;
              if (h.dropped) {
                closeQuietly(back);
                return;
              }
              h.relay = new Relay(conn, back);
              const port = back.localAddr.port;
              const arrived = early.get(port);
              if (arrived === undefined) byPort.set(port, h);
              else {
                early.delete(port);
                clearTimeout(arrived.timer);
                secure(h, arrived.conn);
              }
            },
            () => drop(h),
          );
        },
        isClosing,
      ),
      acceptAll(
        inner,
        (conn) => {
          const port = conn.remoteAddr.port;
          const h = byPort.get(port);
          if (h !== undefined) {
            byPort.delete(port);
            secure(h, conn);
            return;
          }
          const timer = setTimeout(() => {
            early.delete(port);
            closeQuietly(conn);
          }, options.handshakeTimeoutMs);
          early.set(port, { conn, timer });
        },
        isClosing,
      ),
    );
  }

  return {
    port: front.addr.port,
    close: async () => {
      if (!closing) {
        closing = true;
        closeQuietly(front);
        closeQuietly(inner);
        for (const h of [...handshaking]) drop(h);
        for (const { conn, timer } of early.values()) {
          clearTimeout(timer);
          closeQuietly(conn);
        }
        early.clear();
      }
      // The port is free once the pending accept() has failed.
      await Promise.all(loops);
    },
  };
};
