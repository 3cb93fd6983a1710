/**
 * The dflockd-compatible server's listener on Bun: `Bun.listen`, with its
 * `tls` option for TLS, never Bun's `node:net` emulation.
 *
 * What Bun's sockets do, and what this file does about it (checked on Bun 1.4):
 * - The listener is made with `allowHalfOpen: true`, so a peer's FIN calls
 *   `end` and leaves the socket writable: a reply can still reach the peer.
 * - `socket.write()` takes what the kernel (or Bun's TLS layer) accepts and
 *   returns that count; the rest is kept here, in order, and written on
 *   `drain`. `queued` is what is kept here. Over TLS, Bun's TLS layer can hold
 *   bytes it reported taken that the kernel has not (before a peer that did
 *   not read, about 128 KiB more than the kernel's queues held, once, on Bun
 *   1.4.5): `queued` and `flushed()` cannot see those, so `flushed()` may
 *   resolve while they still wait.
 * - Accepted sockets have TCP_NODELAY set by Bun already (seen with strace,
 *   plain and TLS); `open` sets it again so that replies never wait for Nagle.
 * - `socket.pause()` stops reading (the kernel's buffers fill and the peer is
 *   held back, plain and TLS); `socket.resume()` reads again. No `data` or
 *   `end` came while paused on Bun 1.4.5; any that did would be kept until `resume()`.
 * - Closing after the queue is written uses `socket.close()`, not `end()`: on a
 *   TLS socket `end()` only half-closes (the socket stays open, and keeps
 *   reading, until the peer closes), while `close()`, plain or TLS, sends
 *   the bytes Bun has taken and closes both ways. Bun may call the `close`
 *   handler from inside `close()` (it does for TCP); a connection closed while
 *   `accept` still runs reports `closed()` once `accept` has returned its handlers.
 * - With a `handshake` handler, `open` comes as soon as TCP connects and
 *   `handshake` when TLS is done (`success` false when it failed: a TLS 1.0
 *   or 1.1 client, which Bun refuses by default, or a peer that hung up), so
 *   connections still in their handshake are known and can be dropped.
 *   `Bun.listen` has no handshake timeout option; a timer here drops them (`terminate()`).
 * - `destroy()` is `terminate()` (a reset): `close()` on a TLS socket waits
 *   for the bytes Bun's TLS layer holds to go out, which a peer that does not
 *   read never lets happen.
 * - `listener.stop()` stops accepting and frees the port at once; without its
 *   `closeActiveConnections` flag it leaves accepted sockets alone.
 * - A handler that throws makes Bun call `error`; the connection is then
 *   dropped, so no error escapes to the process.
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

/**
 * The part of Bun's socket API used here, declared so that this file needs
 * no Bun type definitions (`deno check` and the JSR package have none).
 */
interface BunSocket {
  data: Link | undefined;
  write(bytes: Uint8Array): number;
  close(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
}

interface BunListener {
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

interface BunListenApi {
  listen(options: {
    hostname: string;
    port: number;
    allowHalfOpen: boolean;
    data: undefined;
    tls?: { cert: string; key: string };
    socket: {
      binaryType: "uint8array";
      open(sock: BunSocket): void;
      handshake(sock: BunSocket, success: boolean, authorizationError: Error | null): void;
      data(sock: BunSocket, chunk: Uint8Array): void;
      drain(sock: BunSocket): void;
      end(sock: BunSocket): void;
      close(sock: BunSocket, error?: Error): void;
      error(sock: BunSocket, error: Error): void;
    };
  }): BunListener;
}

/** Where one connection is: TLS handshake, handed to `accept`, closing after its queue, gone. */
type Phase = "handshake" | "open" | "closing" | "gone";

/** One Bun socket, seen by the server as a {@link ServerConn}. */
class Link implements ServerConn {
  readonly #sock: BunSocket;
  #phase: Phase = "handshake";
  #events: ConnEvents | undefined;
  #accepting = false;
  #reported = false;
  /** Bytes Bun's `write()` has not taken yet, in order. */
  #backlog: Uint8Array[] = [];
  /** Bytes given to `write()` and taken, for `queued` and `flushed()`. */
  readonly #ledger = new WriteLedger();
  #paused = false;
  /** What Bun delivered while paused (none seen so far), for `resume()`: chunks, then `null` for the FIN. */
  #held: (Uint8Array | null)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(sock: BunSocket) {
    this.#sock = sock;
  }

  /** @internal Still in the TLS handshake. */
  get handshaking(): boolean {
    return this.#phase === "handshake";
  }

  /** @internal Drop this handshake if it is not done within `ms`. */
  limit(ms: number, onExpire: () => void): void {
    this.#timer = setTimeout(onExpire, ms);
  }

  /** @internal Give the connection to the server. */
  handOver(accept: (conn: ServerConn) => ConnEvents): void {
    clearTimeout(this.#timer);
    this.#phase = "open";
    this.#accepting = true;
    try {
      this.#events = accept(this);
    } finally {
      this.#accepting = false;
    }
    // Closed while `accept` ran (it may close at once): report it now.
    if ((this.#phase as Phase) === "gone") this.#report();
  }

  /** @internal Bytes from the peer. */
  onData(chunk: Uint8Array): void {
    if (this.#phase !== "open") return;
    if (this.#paused) this.#held.push(chunk);
    else this.#events?.data(chunk);
  }

  /** @internal The peer's FIN. */
  onEnd(): void {
    if (this.#phase === "open") {
      if (this.#paused) this.#held.push(null);
      else this.#events?.end();
    } else if (this.#phase === "handshake") this.drop();
  }

  /** @internal The socket can take more bytes. */
  onDrain(): void {
    while (this.#backlog.length > 0) {
      const next = this.#backlog[0] as Uint8Array;
      const n = this.#sock.write(next);
      if (n < 0) {
        this.#forget();
        return;
      }
      this.#ledger.take(n);
      if (n < next.length) {
        this.#backlog[0] = next.subarray(n);
        return;
      }
      this.#backlog.shift();
    }
    this.#forget();
    if (this.#phase === "closing") this.#sock.close();
  }

  /** @internal The socket is closed. */
  onClose(): void {
    clearTimeout(this.#timer);
    this.#phase = "gone";
    this.#held = [];
    this.#forget();
    if (!this.#accepting) this.#report();
  }

  #report(): void {
    if (this.#reported || this.#events === undefined) return;
    this.#reported = true;
    this.#events.closed();
  }

  /** Let go of the backlog (written, or never to be) and release whoever waits in `flushed()`. */
  #forget(): void {
    this.#backlog = [];
    this.#ledger.settle();
  }

  /** @internal Drop a connection still in its handshake (or one whose handler threw). */
  drop(): void {
    this.#forget();
    this.#sock.terminate();
  }

  get queued(): number {
    return this.#ledger.queued;
  }

  flushed(): Promise<void> {
    return this.#ledger.flushed();
  }

  pause(): void {
    if (this.#phase !== "open" || this.#paused) return;
    this.#paused = true;
    this.#sock.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#phase === "gone") return;
    this.#sock.resume();
    // Anything kept while paused comes after resume() has returned, as Bun's own reads do.
    if (this.#held.length > 0) queueMicrotask(() => this.#release());
  }

  #release(): void {
    while (this.#held.length > 0 && !this.#paused && this.#phase === "open") {
      const next = this.#held.shift();
      if (next === null) this.#events?.end();
      else if (next !== undefined) this.#events?.data(next);
    }
  }

  write(bytes: Uint8Array): void {
    if (this.#phase !== "open" || bytes.length === 0) return;
    this.#ledger.give(bytes.length);
    if (this.#backlog.length > 0) {
      this.#backlog.push(bytes);
      return;
    }
    const n = this.#sock.write(bytes);
    if (n < 0) {
      this.#forget();
      return;
    }
    this.#ledger.take(n);
    if (n < bytes.length) this.#backlog.push(bytes.subarray(n));
  }

  close(): void {
    if (this.#phase !== "open") return;
    this.#phase = "closing";
    this.#held = [];
    // Read (and drop) again while the queue goes out, as an unpaused connection does.
    if (this.#paused) {
      this.#paused = false;
      this.#sock.resume();
    }
    if (this.#backlog.length === 0) this.#sock.close();
  }

  destroy(): void {
    if (this.#phase === "gone") return;
    this.#phase = "closing";
    this.drop();
  }
}

function bun(): BunListenApi {
  return (globalThis as unknown as { Bun: BunListenApi }).Bun;
}

/** Listen with `Bun.listen` (TLS through its `tls` option). */
export const bunListen: Listen = async (options: ListenOptions, accept): Promise<Listening> => {
  const tls = options.tls;
  // Connections still in their TLS handshake, so that close() can drop them.
  const handshaking = new Set<Link>();
  const listener = bun().listen({
    hostname: options.host,
    port: options.port,
    allowHalfOpen: true,
    data: undefined,
    ...(tls !== undefined && { tls: { cert: tls.cert, key: tls.key } }),
    socket: {
      binaryType: "uint8array",
      open(sock) {
        sock.setNoDelay(true);
        const link = new Link(sock);
        sock.data = link;
        if (tls === undefined) {
          link.handOver(accept);
          return;
        }
        handshaking.add(link);
        link.limit(options.handshakeTimeoutMs, () => link.drop());
      },
      handshake(sock, success) {
        const link = sock.data;
        if (link === undefined || !link.handshaking) return;
        handshaking.delete(link);
        // The server asks for no client certificate: an authorization error
        // (there is always one, "no certificate") does not matter, a failed handshake does.
        if (success) link.handOver(accept);
        else link.drop();
      },
      data: (sock, chunk) => sock.data?.onData(chunk),
      drain: (sock) => sock.data?.onDrain(),
      end: (sock) => sock.data?.onEnd(),
      close(sock) {
        const link = sock.data;
        if (link === undefined) return;
        handshaking.delete(link);
        link.onClose();
      },
      error: (sock) => sock.data?.drop(),
    },
  });
  let stopped = false;
  return {
    port: listener.port,
    close: async () => {
      if (stopped) return;
      stopped = true;
      listener.stop(false);
      for (const link of [...handshaking]) link.drop();
      handshaking.clear();
    },
  };
};
