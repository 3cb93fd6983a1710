/** TLS and token authentication against real dflockd servers (--tls-cert/--tls-key, --auth-token). */
import { describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import {
  AuthError,
  acquire,
  ConnectionError,
  connect,
  DistributedLock,
  DistributedSemaphore,
  release,
  stats,
} from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const SECRET = "integration-secret-7";
const certs = testCerts();
const tlsFlags = ["--tls-cert", certs.certFile, "--tls-key", certs.keyFile];

describe("TLS + auth", () => {
  const server = useDflockd([...tlsFlags, "--auth-token", SECRET]);
  const opts = () => ({ host: "localhost", port: server().port, tls: { ca: certs.ca }, auth: SECRET });

  it("locks, semaphores, two-phase, stats and low-level calls work", async () => {
    const k = key();
    const a = new DistributedLock({ key: k, ...opts() });
    const b = new DistributedLock({ key: k, ...opts() });
    expect(await a.acquire()).toBe(true);
    expect(await b.enqueue()).toBe("queued");
    const granted = b.wait(10);
    await a.release();
    expect(await granted).toBe(true);
    expect((await stats(opts())).locks.some((l) => l.key === k)).toBe(true);
    await b.release();
    await new DistributedSemaphore({ key: key("sem"), limit: 2, ...opts() }).withLock(async () => {});
    const conn = await connect(opts());
    const g = await acquire(conn, key(), 1);
    expect(g.token).toMatch(/^[0-9a-f]{32}$/);
    conn.close();
  });

  it("a wrong secret is an AuthError", async () => {
    await expect(connect({ ...opts(), auth: "wrong" })).rejects.toBeInstanceOf(AuthError);
  });

  it("a missing secret is an AuthError", async () => {
    const { auth: _, ...noAuth } = opts();
    await expect(new DistributedLock({ key: key(), ...noAuth }).acquire()).rejects.toBeInstanceOf(AuthError);
  });

  it("a wrong CA is a ConnectionError", async () => {
    await expect(connect({ ...opts(), tls: { ca: certs.otherCa } })).rejects.toBeInstanceOf(ConnectionError);
  });

  it("a plain client fails quickly with a hint about TLS", async () => {
    const t0 = performance.now();
    const err = await connect({ host: "127.0.0.1", port: server().port, auth: SECRET }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/tls/i);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe("auth only", () => {
  const server = useDflockd(["--auth-token", SECRET]);
  it("works with the secret and refuses without it", async () => {
    const where = { host: "127.0.0.1", port: server().port };
    const conn = await connect({ ...where, auth: SECRET });
    const k = key();
    const g = await acquire(conn, k, 1);
    await release(conn, k, g.token);
    conn.close();
    await expect(stats(where)).rejects.toBeInstanceOf(AuthError);
  });
});

describe("TLS only", () => {
  const server = useDflockd(tlsFlags);
  it("verifies against the host name and the IP address", async () => {
    for (const host of ["localhost", "127.0.0.1"]) {
      const lock = new DistributedLock({ key: key(), host, port: server().port, tls: { ca: certs.ca } });
      expect(await lock.acquire()).toBe(true);
      await lock.release();
    }
  });

  it("a TLS client at a plain server fails with a clear error", async () => {
    const plain = await import("../harness/dflockd.ts").then((h) => h.startDflockd());
    try {
      const err = await connect({
        host: "localhost",
        port: plain.port,
        tls: { ca: certs.ca },
        connectTimeoutMs: 3000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as Error).message).toMatch(/TLS/);
    } finally {
      await plain.stop();
    }
  });
});
