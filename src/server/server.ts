/**
 * The dflockd-compatible server: takes connections from a runtime's listener
 * (listen.ts), runs a session on each, sweeps leases and collects idle keys on
 * dflockd's intervals, and stops three ways: gracefully as dflockd does on
 * SIGTERM, at once (a test's teardown), or as a crash.
 *
 * @module
 */

import { MAX_AUTH_LINE_BYTES, MAX_LINE_BYTES } from "./args.ts";
import type { ServerConfig } from "./config.ts";
import { delayOf, LineReader } from "./lines.ts";
import type { ConnEvents, Listen, Listening, ServerConn } from "./listen.ts";
import { Session, type SessionHost, type SessionSocket } from "./session.ts";
import { LockTable } from "./table.ts";

/** A running server. */
export interface RunningServer {
  readonly host: string;
  /** The port it listens on (the one picked, when asked for port 0). */
  readonly port: number;
  /** The settings in force. */
  readonly config: ServerConfig;
  /** Open client connections, as `stats` counts them. */
  connections(): number;
  /** The `stats` reply's JSON body, as a client would get it. */
  statsJson(): string;
  /**
   * Shut down as dflockd does on SIGTERM: stop accepting and stop the lease
   * sweep and garbage collection; answer every blocked `l`/`w` with `error`;
   * keep serving open connections (their read timeout still applies) until
   * they close or `shutdownTimeoutS` passes, then close them.
   * Resolves once every connection is gone.
   */
  shutdown(): Promise<void>;
  /** Stop now: stop accepting and close every connection (replies already written still go). */
  stop(): Promise<void>;
  /** Stop as a crash would: every connection dropped at once, nothing more written. */
  kill(): Promise<void>;
}

/** Unread request bytes past which a connection stops being read (dflockd reads only when it is ready). */
const READ_HIGH_WATER = 64 * 1024;

/** After a close, how long a connection may take to report closed before it is dropped. */
const CLOSE_GRACE_MS = 1_000;

const ENCODER = new TextEncoder();

/**
 * Start serving `cfg` on a listener from `listen`.
 *
 * @param cfg The settings (not copied: the chosen port is written back).
 * @param listen The runtime's listener.
 * @returns The running server, once it accepts connections.
 */
export async function startServer(cfg: ServerConfig, listen: Listen): Promise<RunningServer> {
  const table = new LockTable(cfg);
  const open = new Map<ServerConn, () => void>();
  const cancels = new Set<() => void>();
  // Who waits for the last connection to go; each wait gets its own promise (the set empties more than once).
  const emptied: (() => void)[] = [];
  const whenEmpty = (): Promise<void> =>
    open.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve));
  // Sessions still running: a peer that went away while its `l`/`w` is
  // blocked still counts until that request ends, as on the server.
  let live = 0;
  let nextId = 0;
  let serving = true;
  const host: SessionHost = {
    cfg,
    table,
    connections: () => live,
    shuttingDown: () => !serving,
    onShutdown(cancel) {
      cancels.add(cancel);
      return () => cancels.delete(cancel);
    },
  };
  const forget = (conn: ServerConn): void => {
    open.delete(conn);
    if (open.size === 0) for (const resolve of emptied.splice(0)) resolve();
  };

  const accept = (conn: ServerConn): ConnEvents => {
    // Over --max-connections (or stopping): accepted, then closed with no bytes.
    if (!serving || (cfg.maxConnections > 0 && live >= cfg.maxConnections)) {
      conn.close();
      return { data: () => {}, end: () => {}, closed: () => {} };
    }
    live++;
    const lines = new LineReader({
      // v1.15+ takes an `auth` line of up to 64 KiB: the session judges each line's own limit.
      maxLine: cfg.longAuth ? MAX_AUTH_LINE_BYTES : MAX_LINE_BYTES,
      dropCr: cfg.crAnywhere,
      highWater: READ_HIGH_WATER,
      full: () => conn.pause(),
      room: () => conn.resume(),
    });
    const sock: SessionSocket = {
      write: (t) => conn.write(ENCODER.encode(t)),
      get queued() {
        return conn.queued;
      },
      flushed: () => conn.flushed(),
    };
    const session = new Session(++nextId, host, sock, lines);
    // What stopping does to the session first: no more requests, and no wait left running.
    open.set(conn, () => {
      lines.close();
      session.abort();
    });
    void session.run().finally(() => {
      live--;
      table.dropOwner(session, cfg.autoReleaseOnDisconnect);
      conn.close();
    });
    return {
      data: (b) => lines.push(b),
      end: () => {
        lines.close();
        session.peerClosed();
      },
      closed: () => {
        lines.close();
        session.peerClosed();
        forget(conn);
      },
    };
  };

  const tls =
    cfg.tlsCert !== undefined && cfg.tlsKey !== undefined ? { cert: cfg.tlsCert, key: cfg.tlsKey } : undefined;
  const listening: Listening = await listen(
    { host: cfg.host, port: cfg.port, tls, handshakeTimeoutMs: delayOf(cfg.readTimeoutS) },
    accept,
  );
  cfg.port = listening.port;

  const sweep = setInterval(() => table.sweep(), delayOf(cfg.leaseSweepIntervalS));
  const gc = setInterval(() => table.collect(), delayOf(cfg.gcIntervalS));
  let closing: Promise<void> | undefined;

  /** Stop accepting and the background loops, and end blocked requests; then `close` the connections. */
  const end = (close: (() => void) | undefined): Promise<void> => {
    if (serving) {
      serving = false;
      clearInterval(sweep);
      clearInterval(gc);
      for (const cancel of [...cancels]) cancel();
      closing = listening.close();
    }
    close?.();
    return Promise.all([closing, whenEmpty()]).then(() => {});
  };
  const closeAll = (): void => {
    if (open.size === 0) return;
    for (const [conn, abort] of open) {
      abort();
      conn.close();
    }
    const grace = setTimeout(() => {
      for (const conn of open.keys()) conn.destroy();
    }, CLOSE_GRACE_MS);
    void whenEmpty().then(() => clearTimeout(grace));
  };
  let drained: Promise<void> | undefined;

  return {
    host: cfg.host,
    port: listening.port,
    config: cfg,
    connections: () => live,
    statsJson: () => table.stats(live),
    shutdown() {
      if (drained !== undefined) return drained;
      const limit = cfg.shutdownTimeoutS;
      const timer = limit > 0 ? setTimeout(closeAll, delayOf(limit)) : undefined;
      drained = end(undefined).finally(() => clearTimeout(timer));
      return drained;
    },
    stop: () => end(closeAll),
    kill: () =>
      end(() => {
        for (const [conn, abort] of open) {
          abort();
          conn.destroy();
        }
      }),
  };
}
