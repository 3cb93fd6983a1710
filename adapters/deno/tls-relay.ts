/**
 * The TLS side of the Deno listener (listen.ts), and the accept loop both sides use.
 *
 * A `Deno.listenTls` connection still in its TLS handshake cannot be
 * dropped: `close()` on it ends nothing but JavaScript's handle (its
 * `handshake()` rejects, `closeWrite()` never settles), and Deno's TLS stream
 * keeps the socket open until the peer speaks or hangs up, which a silent
 * client never does. So for TLS the public port is a plain `Deno.listen`
 * listener; each connection is relayed, byte for byte, to a `Deno.listenTls`
 * listener of this process on 127.0.0.1 and a free port, where TLS
 * terminates. Dropping a handshake closes the public socket and the relay's
 * own socket, both plain TCP. Connections on that inner port that did not
 * come through the relay (another local process) are refused: closed
 * unheard after `handshakeTimeoutMs` (as far as Deno lets them be closed).
 * The relay costs one more loopback socket pair and a copy of each byte.
 *
 * @module
 */

/** The size of each read. */
export const READ_SIZE = 16 * 1024;

/** The relay's inner TLS listener binds here. */
const LOOPBACK = "127.0.0.1";

/** Close, ignoring that it is closed already. */
export function closeQuietly(closable: { close(): void } | undefined): void {
  try {
    closable?.close();
  } catch {
    // Already closed.
  }
}

/** Accept from `listener` until it is closed, giving each connection to `take`. */
export async function acceptAll<C extends Deno.Conn>(
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

/**
 * Copies bytes both ways between the public socket (`front`) and the socket
 * this process opened to its own TLS listener (`back`), carrying each side's
 * FIN to the other. `done` resolves once both are closed.
 */
export class Relay {
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

/** A TLS connection from its arrival on the public port until its handshake is done or it is dropped. */
interface Handshake {
  readonly front: Deno.TcpConn;
  back?: Deno.TcpConn;
  relay?: Relay;
  tls?: Deno.TlsConn;
  timer?: ReturnType<typeof setTimeout>;
  dropped: boolean;
}

/** The public listener's connections and the inner TLS listener's, matched up. */
export interface RelayedTls {
  /** The accept loops; they end once both listeners are closed. */
  readonly loops: Promise<void>[];
  /** Drop every connection still in its handshake, and every inner one not yet matched. */
  dropAll(): void;
}

/** The inner TLS listener: on 127.0.0.1, a free port. */
export function innerTlsListener(tls: { readonly cert: string; readonly key: string }): Deno.TlsListener {
  return Deno.listenTls({ hostname: LOOPBACK, port: 0, cert: tls.cert, key: tls.key });
}

/**
 * Relay each connection of `front` to `inner`; `hand` gets each TLS
 * connection whose handshake is done, with its relay.
 */
export function relayTls(
  front: Deno.TcpListener,
  inner: Deno.TlsListener,
  handshakeTimeoutMs: number,
  isClosing: () => boolean,
  hand: (conn: Deno.TlsConn, relay: Relay) => void,
): RelayedTls {
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
        hand(conn, h.relay);
      },
      () => drop(h),
    );
  };

  const innerPort = inner.addr.port;
  const loops = [
    acceptAll(
      front,
      (conn) => {
        const h: Handshake = { front: conn, dropped: false };
        handshaking.add(h);
        h.timer = setTimeout(() => drop(h), handshakeTimeoutMs);
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
        }, handshakeTimeoutMs);
        early.set(port, { conn, timer });
      },
      isClosing,
    ),
  ];
  return {
    loops,
    dropAll: () => {
      for (const h of [...handshaking]) drop(h);
      for (const { conn, timer } of early.values()) {
        clearTimeout(timer);
        closeQuietly(conn);
      }
      early.clear();
    },
  };
}
