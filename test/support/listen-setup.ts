/**
 * The listener under test for test/transport/listen*.test.ts: the runtime's
 * own (`Bun.listen` under Bun, `Deno.listen`/`Deno.listenTls` under Deno,
 * `node:net`/`node:tls` under Node), started on a free port, its peers, and
 * the clean-up after each test (`afterEach(cleanUp)`).
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { bunListen } from "../../adapters/bun/listen.ts";
import { denoListen } from "../../adapters/deno/listen.ts";
import { nodeListen } from "../../adapters/node/listen.ts";
import type { Listen, Listening } from "../../src/server/listen.ts";
import { testCerts } from "../harness/certs.ts";
import { Holdback, Peer, ServerSide } from "./listen-peers.ts";
import { RUNTIME } from "./runtime.ts";

const listen: Listen = RUNTIME === "deno" ? denoListen : RUNTIME === "bun" ? bunListen : nodeListen;
const certs = testCerts();

const listenings: Listening[] = [];
const peers: Peer[] = [];
const accepted: ServerSide[] = [];
const proxies: Holdback[] = [];

/** After each test: its peers, proxies, server-side connections and listeners go. */
export async function cleanUp(): Promise<void> {
  for (const p of peers.splice(0)) p.sock.destroy();
  for (const p of proxies.splice(0)) p.close();
  // The server's side too: a connection the peer left is half-open until the server closes it.
  for (const side of accepted.splice(0)) side.conn.destroy();
  await Promise.all(listenings.splice(0).map((l) => l.close()));
}

/** Listen on a free port (or `port`); accepted connections come out of `next()`. */
export async function start(opts: { tls?: boolean; handshakeTimeoutMs?: number; port?: number } = {}) {
  const queue: ServerSide[] = [];
  const waiting: ((s: ServerSide) => void)[] = [];
  const sides: ServerSide[] = [];
  const listening = await listen(
    {
      host: "127.0.0.1",
      port: opts.port ?? 0,
      tls: opts.tls ? { cert: certs.cert, key: certs.key } : undefined,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    },
    (conn) => {
      const side = new ServerSide(conn);
      sides.push(side);
      accepted.push(side);
      const w = waiting.shift();
      if (w) w(side);
      else queue.push(side);
      return side.events;
    },
  );
  listenings.push(listening);
  const next = (): Promise<ServerSide> => {
    const ready = queue.shift();
    return ready ? Promise.resolve(ready) : new Promise((r) => waiting.push(r));
  };
  return { listening, port: listening.port, next, sides };
}

/** A node:net (or node:tls) peer connecting to `port`. */
export function dial(port: number, secure = false): Peer {
  const sock = secure
    ? tls.connect({ host: "127.0.0.1", port, ca: certs.ca, servername: "localhost", allowHalfOpen: true })
    : net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  const peer = new Peer(sock);
  sock.once(secure ? "secureConnect" : "connect", () => peer.connected.resolve());
  peers.push(peer);
  return peer;
}

/** A {@link Holdback} proxy in front of `port`. */
export async function holdback(port: number): Promise<Holdback> {
  const proxy = await Holdback.open(port);
  proxies.push(proxy);
  return proxy;
}
