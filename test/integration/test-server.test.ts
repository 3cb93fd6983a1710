/**
 * `startTestServer()` (the `dflockd-client/testing` subpath, from source)
 * on the runtime under test, with the runtime's own listener: options and
 * their typed errors, the controls a user's test needs (stop, crash, restart
 * on the same port, stats, graceful shutdown), TLS and auth, and nothing left
 * listening afterwards.
 */
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { ConfigError, startTestServer, TestServerStoppedError } from "../../testing.ts";
import { testCerts } from "../harness/certs.ts";
import { AuthError, DistributedLock, LockLostError, stats } from "../support/client.ts";
import { key, until } from "./helpers.ts";

/** Whether a TCP connect to `port` is refused (nothing listening). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

describe("startTestServer", () => {
  it("listens on 127.0.0.1 and a free port, serves a contended lock, and leaves nothing listening once stopped", async () => {
    const server = await startTestServer();
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
    expect(server.servers).toEqual([["127.0.0.1", server.port]]);
    const k = key();
    const a = new DistributedLock({ key: k, servers: server.servers });
    const b = new DistributedLock({ key: k, servers: server.servers, acquireTimeoutS: 0 });
    await a.acquire();
    expect(await b.acquire()).toBe(false);
    const s = await server.stats();
    expect(s.locks.map((l) => l.key)).toEqual([k]);
    expect(s.connections).toBeGreaterThan(0);
    await a.release();
    await server.stop();
    expect(await refused(server.port)).toBe(true);
    await expect(server.stats()).rejects.toBeInstanceOf(TestServerStoppedError);
  });

  it("await using stops it", async () => {
    let port = 0;
    {
      await using server = await startTestServer();
      port = server.port;
      expect(await refused(port)).toBe(false);
    }
    expect(await refused(port)).toBe(true);
  });

  it("kill() is a crash a holder learns of, and restart() serves again on the same port with nothing held", async () => {
    const server = await startTestServer();
    try {
      const k = key();
      const lost: unknown[] = [];
      const lock = new DistributedLock({ key: k, servers: server.servers, onLost: (e) => lost.push(e) });
      await lock.acquire();
      await server.kill();
      await until(() => lost.length === 1, 10_000, "onLost after kill()");
      expect(lost[0]).toBeInstanceOf(LockLostError);
      expect(await refused(server.port)).toBe(true);
      await server.restart();
      expect((await server.stats()).locks).toEqual([]);
      const again = new DistributedLock({ key: k, servers: server.servers, acquireTimeoutS: 1 });
      await again.acquire();
      await again.release();
    } finally {
      await server.stop();
    }
  });

  it("shutdown() answers a blocked acquire and stops accepting, as dflockd on SIGTERM", async () => {
    const server = await startTestServer({ shutdownTimeoutS: 1 });
    const k = key();
    const holder = new DistributedLock({ key: k, servers: server.servers });
    await holder.acquire();
    const waiter = new DistributedLock({ key: k, servers: server.servers, acquireTimeoutS: 10 });
    const waiting = waiter.acquire();
    await until(async () => (await server.stats()).locks[0]?.waiters === 1, 5_000, "the waiter queued");
    const started = performance.now();
    const done = server.shutdown();
    // The server's own answer, not a dropped connection.
    await expect(waiting).rejects.toMatchObject({ code: "SERVER_ERROR" });
    expect(await refused(server.port)).toBe(true);
    // The holder's connection is served until shutdownTimeoutS, then closed: the holder learns it.
    const lost = new Promise((resolve) => holder.signal?.addEventListener("abort", resolve));
    await done;
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    await lost;
    await holder.close();
  });

  it("shutdown() waits for connections even after others came and went", async () => {
    const server = await startTestServer({ shutdownTimeoutS: 1 });
    await stats({ host: server.host, port: server.port }); // a connection that opens and closes
    await until(async () => (await server.stats()).connections === 0, 5_000, "the first connection gone");
    const lock = new DistributedLock({ key: key(), servers: server.servers });
    await lock.acquire();
    const started = performance.now();
    await server.shutdown();
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    await lock.close();
  });

  it("stop() during a shutdown ends it now, and stop() after a pending restart leaves nothing listening", async () => {
    const server = await startTestServer({ shutdownTimeoutS: 30 });
    const lock = new DistributedLock({ key: key(), servers: server.servers });
    await lock.acquire();
    const draining = server.shutdown();
    expect((await server.stats()).locks).toHaveLength(1); // still served while draining
    const started = performance.now();
    await server.stop();
    await draining;
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await refused(server.port)).toBe(true);
    await lock.close();

    const restarting = server.restart();
    await server.stop();
    await restarting;
    expect(await refused(server.port)).toBe(true);
    await expect(server.stats()).rejects.toBeInstanceOf(TestServerStoppedError);
  });

  it("takes dflockd's settings as options: the default lease, auth, TLS", async () => {
    const certs = testCerts();
    const server = await startTestServer({
      defaultLeaseTtlS: 1,
      authToken: "s3cret",
      tls: { cert: certs.cert, key: certs.key },
    });
    try {
      const tls = { ca: certs.ca };
      const at = { servers: server.servers, tls };
      const s = await stats({ host: server.host, port: server.port, tls, auth: "s3cret" });
      expect(s.locks).toEqual([]);
      await expect(stats({ host: server.host, port: server.port, tls, auth: "wrong" })).rejects.toBeInstanceOf(
        AuthError,
      );
      const lock = new DistributedLock({ key: key(), ...at, auth: "s3cret" });
      await lock.acquire();
      expect(lock.leaseTtl).toBe(1);
      await lock.release();
    } finally {
      await server.stop();
    }
  });

  it("refuses bad options with a ConfigError before anything listens", async () => {
    await expect(startTestServer({ readTimeoutS: 0 })).rejects.toThrow(/readTimeoutS must be > 0/);
    await expect(startTestServer({ maxLocks: 1.5 })).rejects.toBeInstanceOf(ConfigError);
    await expect(startTestServer({ port: 70_000 })).rejects.toThrow(/port must be 0-65535/);
    await expect(startTestServer({ tls: { cert: "x" } as never })).rejects.toThrow(/PEM text/);
    await expect(startTestServer({ readTimeout: 5 } as never)).rejects.toThrow(/unknown option "readTimeout"/);
  });
});
