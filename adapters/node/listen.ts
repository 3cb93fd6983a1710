/**
 * The dflockd-compatible server's listener on Node.js: `node:net` for TCP,
 * `node:tls` for TLS. Connections stay half-open when the peer finishes
 * sending, as a Go server's do, so a reply can still reach it.
 *
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Listen, ServerConn } from "../../src/server/listen.ts";

const EMPTY = new Uint8Array(0);

/** Listen with `node:net` / `node:tls`. */
export const nodeListen: Listen = async (options, accept) => {
  // TLS connections still in their handshake, by peer address, so that close() can drop them.
  const handshaking = new Map<string, net.Socket>();
  const peer = (s: net.Socket): string => `${s.remoteAddress}:${s.remotePort}`;
  const onSocket = (sock: net.Socket): void => {
    handshaking.delete(peer(sock));
    // After close(), bytes still coming are read and dropped: unread bytes would make the final close a reset,
    // which can cost the peer the end of its last reply.
    let closing = false;
    // Go turns Nagle off: replies go out at once, not after the peer's delayed ACK.
    sock.setNoDelay(true);
    const conn: ServerConn = {
      write: (bytes) => void sock.write(bytes),
      get queued() {
        return sock.destroyed ? 0 : sock.writableLength;
      },
      flushed: () =>
        new Promise<void>((resolve) => {
          if (sock.destroyed || sock.writableEnded) return resolve();
          // An empty write's callback runs once everything before it has been taken (or, with an error, on destroy).
          sock.write(EMPTY, () => resolve());
        }),
      pause: () => sock.pause(),
      resume: () => sock.resume(),
      close: () => {
        closing = true;
        if (sock.writableFinished || sock.destroyed) sock.destroy();
        else sock.end(() => sock.destroy());
      },
      destroy: () => sock.destroy(),
    };
    const events = accept(conn);
    sock.on("data", (b: Uint8Array) => {
      if (!closing) events.data(b);
    });
    sock.on("end", () => {
      if (!closing) events.end();
    });
    sock.on("error", () => {});
    sock.on("close", () => events.closed());
  };
  const server =
    options.tls !== undefined
      ? tls.createServer(
          {
            cert: options.tls.cert,
            key: options.tls.key,
            minVersion: "TLSv1.2",
            handshakeTimeout: options.handshakeTimeoutMs,
            allowHalfOpen: true,
          },
          onSocket,
        )
      : net.createServer({ allowHalfOpen: true }, onSocket);
  server.prependListener("connection", (sock: net.Socket) => {
    sock.on("error", () => {});
    if (options.tls === undefined) return;
    const key = peer(sock);
    handshaking.set(key, sock);
    sock.once("close", () => {
      if (handshaking.get(key) === sock) handshaking.delete(key);
    });
  });
  // Node only reports a handshake timeout (ERR_TLS_HANDSHAKE_TIMEOUT) and
  // leaves the socket open; every error here is before the handshake is done.
  server.on("tlsClientError", (_err: Error, sock: tls.TLSSocket) => sock.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : options.port;
  return {
    port,
    close: async () => {
      // The listening socket closes at once; the callback would wait for every connection.
      if (server.listening) server.close();
      for (const s of handshaking.values()) s.destroy();
      handshaking.clear();
    },
  };
};
