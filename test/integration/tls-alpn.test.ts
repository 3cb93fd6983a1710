/**
 * TLS through a server that enforces ALPN: a TLS-terminating proxy in front
 * of a plaintext dflockd, with ALPN protocols configured (as Go's
 * crypto/tls since 1.17, rustls or nginx `ssl_alpn` would have). Such a
 * server refuses a ClientHello whose ALPN protocols it has none of; Deno's
 * adapter offers one (its plaintext probe) and must then shake hands again
 * offering none. Node and Bun offer no ALPN: the same test passes there.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import { connect, DistributedLock, stats } from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd();
const certs = testCerts();
let proxy: tls.Server;
let port = 0;
/** Every socket the proxy has, destroyed at the end (the pool keeps idle connections open). */
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  proxy = tls.createServer({ cert: certs.cert, key: certs.key, ALPNProtocols: ["h2", "http/1.1"] }, (front) => {
    const back = net.connect(server().port, "127.0.0.1");
    sockets.add(front).add(back);
    front.pipe(back).pipe(front);
    front.on("error", () => back.destroy());
    back.on("error", () => front.destroy());
    front.on("close", () => back.destroy());
    back.on("close", () => front.destroy());
  });
  proxy.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  port = (proxy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
});

describe("TLS through a server that enforces ALPN", () => {
  it("connects, asks and locks, on every runtime", async () => {
    const conn = await connect({ host: "localhost", port, tls: { ca: certs.ca } });
    conn.close();
    const s = await stats({ host: "localhost", port, tls: { ca: certs.ca } });
    expect(s.connections).toBeGreaterThanOrEqual(1);
    const lock = new DistributedLock({ key: key("alpn"), host: "localhost", port, tls: { ca: certs.ca } });
    try {
      await lock.acquire();
      expect(lock.held).toBe(true);
      await lock.release();
    } finally {
      lock.close();
    }
  });

  it("a plaintext dflockd behind no proxy still fails at once as not speaking TLS", async () => {
    const t0 = performance.now();
    const err = await connect({ host: "localhost", port: server().port, tls: { ca: certs.ca } }).catch((e) => e);
    expect((err as Error).message).toMatch(/does not seem to speak TLS/);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });
});
