/**
 * The dflockd double: an in-process TCP (or TLS) server that answers the
 * dflockd protocol as a real server does, for tests and the demo wherever no
 * real dflockd can be installed. It is not part of the published package.
 *
 * It takes the real server's command-line flags (config.ts), so the test
 * harness can start either with the same settings; it runs under Node, Bun
 * and Deno through `node:net` / `node:tls` (the client under test uses each
 * runtime's own sockets; the double's listener is just a test fixture).
 *
 * @example
 * ```ts
 * const server = await startDouble(["--read-timeout", "2"]);
 * // ... connect to server.port ...
 * await server.stop();
 * ```
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { type DoubleConfig, type DoubleOptions, parseFlags } from "./config.ts";
import { LineReader } from "./lines.ts";
import { Session, type SessionHost } from "./session.ts";
import { LockTable } from "./table.ts";

/** A running double. */
export interface DoubleServer {
  readonly host: string;
  readonly port: number;
  /** `[host, port]`, ready for the `servers` option. */
  readonly address: [string, number];
  /** The settings in force. */
  readonly config: DoubleConfig;
  /** Open client connections. */
  connections(): number;
  /**
   * Begin a graceful shutdown and stay in it: stop accepting; with the
   * `draining` option, open connections get `error_draining` for every request
   * from now on. `stop()` ends it.
   */
  drain(): void;
  /** Stop: stop accepting, close every connection, resolve when done. */
  stop(): Promise<void>;
  /** Stop as on SIGKILL: every connection dropped at once. */
  kill(): Promise<void>;
}

/**
 * Start a double with real-server `flags` (`--port 0` or no `--port`: a free
 * port is picked) and the reply forms in `options`.
 */
export async function startDouble(flags: readonly string[] = [], options: DoubleOptions = {}): Promise<DoubleServer> {
  const hasPort = flags.some((f) => /^--?port(=|$)/.test(f));
  const cfg = parseFlags(hasPort ? flags : [...flags, "--port", "0"], options, (p) => readFileSync(p, "utf8"));
  const table = new LockTable(cfg);
  const sockets = new Set<net.Socket>();
  // Sessions still running: a peer that went away while its `l`/`w` is
  // blocked still counts until that request ends, as on the server.
  let live = 0;
  let nextId = 0;
  let stopping = false;
  const host: SessionHost = {
    cfg,
    table,
    connections: () => live,
    draining: () => stopping,
  };

  const onSocket = (sock: net.Socket): void => {
    if (sock.destroyed) return; // refused below
    sockets.add(sock);
    live++;
    const lines = new LineReader();
    const session = new Session(++nextId, host, { write: (t) => void sock.write(t), end: () => sock.end() }, lines);
    sock.on("data", (b: Uint8Array) => lines.push(b));
    sock.on("error", () => {});
    sock.on("close", () => {
      sockets.delete(sock);
      lines.close();
    });
    sock.on("end", () => lines.close());
    void session.run().finally(() => {
      live--;
      table.dropOwner(session, cfg.autoReleaseOnDisconnect);
      sock.end();
    });
  };

  const server =
    cfg.tlsCert !== undefined && cfg.tlsKey !== undefined
      ? tls.createServer(
          {
            cert: readFileSync(cfg.tlsCert),
            key: readFileSync(cfg.tlsKey),
            minVersion: "TLSv1.2",
            handshakeTimeout: cfg.readTimeoutS * 1000,
            allowHalfOpen: true,
          },
          onSocket,
        )
      : // A peer's FIN does not close our side: the session ends it when it is done.
        net.createServer({ allowHalfOpen: true }, onSocket);
  // Every accepted TCP socket, TLS handshake or not, so that stop() can end it.
  const accepted = new Set<net.Socket>();
  // Over --max-connections (or stopping): accepted, then closed with no bytes.
  server.prependListener("connection", (raw: net.Socket) => {
    raw.on("error", () => {});
    if (stopping || (cfg.maxConnections > 0 && live + 1 > cfg.maxConnections)) {
      raw.destroy();
      return;
    }
    accepted.add(raw);
    raw.once("close", () => accepted.delete(raw));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : cfg.port;
  cfg.port = port;

  const sweep = setInterval(() => table.sweep(), cfg.leaseSweepIntervalS * 1000);
  const gc = setInterval(() => table.collect(), cfg.gcIntervalS * 1000);
  sweep.unref?.();
  gc.unref?.();

  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  const drain = (): void => {
    if (stopping) return;
    stopping = true;
    server.close();
  };
  const shut = async (hard: boolean): Promise<void> => {
    drain();
    clearInterval(sweep);
    clearInterval(gc);
    for (const s of sockets) {
      if (hard) s.destroy();
      else s.end();
    }
    // A peer that ignores the FIN (or a half-open failed handshake) must not hold the stop up.
    const grace = setTimeout(() => {
      for (const s of sockets) s.destroy();
      for (const s of accepted) s.destroy();
    }, 200);
    await closed;
    clearTimeout(grace);
  };

  return {
    host: cfg.host,
    port,
    address: [cfg.host, port],
    config: cfg,
    connections: () => live,
    drain,
    stop: () => shut(false),
    kill: () => shut(true),
  };
}
