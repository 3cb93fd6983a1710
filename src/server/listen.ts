/**
 * What the dflockd-compatible server (src/server) needs of a runtime to take
 * connections: a listener on a host and port, with or without TLS, that hands
 * each accepted connection to the server and carries its bytes. Each runtime's
 * adapter provides one with that runtime's own API (`adapters/<runtime>/listen.ts`),
 * with {@link WriteLedger} to count what it has sent; nothing here touches a runtime.
 *
 * @module
 */

/** One accepted connection, as the server drives it. */
export interface ServerConn {
  /** Queue `bytes` to the peer, in order. */
  write(bytes: Uint8Array): void;
  /** Bytes given to `write()` that the OS has not taken yet (0 once closed). */
  readonly queued: number;
  /**
   * Resolves once every byte written so far has been handed to the OS, or the
   * connection is gone. Never rejects.
   */
  flushed(): Promise<void>;
  /**
   * Stop reading from the peer (no `data` until `resume()`), so that the OS's
   * buffers fill and the peer is held back, as a server that is not reading holds it.
   */
  pause(): void;
  /** Read again after `pause()`. */
  resume(): void;
  /**
   * Close as a process closes a socket: bytes already queued still go, then
   * the connection is closed both ways. Reading stops at once.
   */
  close(): void;
  /** Close at once, dropping anything not yet written: a crash. */
  destroy(): void;
}

/** What the server does with one connection's events; the listener calls these. */
export interface ConnEvents {
  /** Bytes from the peer. */
  data(bytes: Uint8Array): void;
  /** The peer has finished sending (FIN); the connection may still be written to. */
  end(): void;
  /**
   * The connection is gone (closed by either side, or failed). Called once, last; it may be
   * called from within `close()` or `destroy()` (Bun does).
   */
  closed(): void;
}

/** Where and how to listen. */
export interface ListenOptions {
  /** Address to bind. */
  readonly host: string;
  /** Port to bind; `0` for a free one. */
  readonly port: number;
  /** PEM certificate chain and key: serve TLS (1.2 or later) instead of plain TCP. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
  /** With TLS: milliseconds a connection may take to finish its handshake before it is dropped. */
  readonly handshakeTimeoutMs: number;
}

/** A listener that is accepting. */
export interface Listening {
  /** The port it is bound to. */
  readonly port: number;
  /**
   * Stop accepting; resolves once the port is no longer listened on. Connections
   * already given to `accept` are not touched; any still in their TLS handshake are dropped.
   */
  close(): Promise<void>;
}

/**
 * Start listening. `accept` is called for each new connection, before any of
 * its bytes, and returns the handlers for its events.
 */
export type Listen = (options: ListenOptions, accept: (conn: ServerConn) => ConnEvents) => Promise<Listening>;

/**
 * A listener's count of bytes given to a connection's `write()` and taken by
 * the OS, for {@link ServerConn.queued} and {@link ServerConn.flushed}: each
 * `flushed()` waits only for the bytes written before it was called.
 */
export class WriteLedger {
  #given = 0;
  #taken = 0;
  /** Who waits in `flushed()`, in order, each for the count of bytes taken it needs. */
  readonly #waiters: { upTo: number; resolve: () => void }[] = [];

  /** Bytes given and not yet taken. */
  get queued(): number {
    return this.#given - this.#taken;
  }

  /** `n` more bytes given to `write()`. */
  give(n: number): void {
    this.#given += n;
  }

  /** `n` more bytes taken by the OS: release the `flushed()` calls that were waiting for them. */
  take(n: number): void {
    this.#taken += n;
    while ((this.#waiters[0]?.upTo ?? Number.POSITIVE_INFINITY) <= this.#taken) this.#waiters.shift()?.resolve();
  }

  /** Nothing more will be taken (all of it written, or never to be): release every waiter. */
  settle(): void {
    this.take(this.#given - this.#taken);
  }

  /** Resolves once every byte given so far has been taken (or {@link WriteLedger.settle} was called). */
  flushed(): Promise<void> {
    if (this.#taken >= this.#given) return Promise.resolve();
    const upTo = this.#given;
    return new Promise((resolve) => this.#waiters.push({ upTo, resolve }));
  }
}
