/**
 * What the dflockd-compatible server (src/server) needs of a runtime to take
 * connections: a listener on a host and port, with or without TLS, that hands
 * each accepted connection to the server and carries its bytes. Each runtime's
 * adapter provides one with that runtime's own API (`adapters/<runtime>/listen.ts`);
 * nothing here touches a runtime.
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
