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
 * own socket, both plain TCP. The relay costs one more loopback socket pair
 * and a copy of each byte.
 *
 * An inner connection is matched to its relay socket by the relay socket's
 * address (127.0.0.1 and its port), whichever of the two is seen first.
 * Connections on the inner port that did not come through the relay (another
 * local process) are refused: one from another address at once, one from
 * 127.0.0.1 after `handshakeTimeoutMs` unmatched. Refused means closed as far
 * as Deno lets a `TlsConn` be closed: not at all mid-handshake, so such a
 * process holds a file descriptor of this one until it hangs up.
 *
 * TLS needs IPv4 loopback (127.0.0.1) to be up: without it the listener cannot start.
 *
 * @module
 */

/** The size of each read. */
export const READ_SIZE = 16 * 1024;

/** The relay's inner TLS listener binds here, and the relay connects from here. */
const LOOPBACK = "127.0.0.1";

/** A connection's end as a key: `host:port`. */
function addressOf(addr: Deno.NetAddr): string {
  return `${addr.hostname}:${addr.port}`;
}

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

/** An inner connection not yet matched to its relay socket, and the timer that refuses it. */
interface Early {
  readonly conn: Deno.TlsConn;
  readonly timer: ReturnType<typeof setTimeout>;
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
  // The relay's sockets to the inner listener, by local address, and inner
  // connections from 127.0.0.1 that came before a relay socket's connect()
  // resolved (another process's among them), by remote address.
  const byAddress = new Map<string, Handshake>();
  const early = new Map<string, Early>();
  const forget = (address: string, e: Early): void => {
    clearTimeout(e.timer);
    if (early.get(address) === e) early.delete(address);
  };

  const drop = (h: Handshake): void => {
    if (h.dropped) return;
    h.dropped = true;
    clearTimeout(h.timer);
    handshaking.delete(h);
    if (h.back !== undefined) {
      const address = addressOf(h.back.localAddr);
      if (byAddress.get(address) === h) byAddress.delete(address);
    }
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
            const address = addressOf(back.localAddr);
            const arrived = early.get(address);
            if (arrived === undefined) byAddress.set(address, h);
            else {
              forget(address, arrived);
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
        // Not from the relay, which connects from 127.0.0.1.
        if (conn.remoteAddr.hostname !== LOOPBACK) {
          closeQuietly(conn);
          return;
        }
        const address = addressOf(conn.remoteAddr);
        const h = byAddress.get(address);
        if (h !== undefined) {
          byAddress.delete(address);
          secure(h, conn);
          return;
        }
        // Two live connections cannot share an address: one still waiting here from it is gone.
        const stale = early.get(address);
        if (stale !== undefined) {
          forget(address, stale);
          closeQuietly(stale.conn);
        }
        const e: Early = {
          conn,
          timer: setTimeout(() => {
            forget(address, e);
            closeQuietly(conn);
          }, handshakeTimeoutMs),
        };
        early.set(address, e);
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
