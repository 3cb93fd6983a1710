/**
 * Connection reuse and sharing against a dflockd (the run's server, real or
 * double), with a counting proxy of our own in front of it (test/faults/proxy.ts)
 * to see how many connections the client opens.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionPool, DEFAULT_SHARE_AFTER } from "../../src/pool.ts";
import { type FaultProxy, startProxy } from "../faults/proxy.ts";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { DflockdClient, DistributedLock, stats } from "../support/client.ts";
import { key, until } from "./helpers.ts";

// Share at once (by default a server first gets 8 connections of its own).
beforeAll(() => {
  ConnectionPool.defaultShareAfter = 0;
});
afterAll(() => {
  ConnectionPool.defaultShareAfter = DEFAULT_SHARE_AFTER;
});

let server: DflockdServer;
let proxy: FaultProxy;
let opened = 0;
beforeAll(async () => {
  server = await startDflockd();
  proxy = await startProxy({ port: server.port });
  proxy.observe((e) => {
    if (e.direction === "up" && e.chunk !== undefined && e.conn > opened) opened = e.conn;
  });
});
afterAll(async () => {
  await proxy.close();
  await server.stop();
});

let client: DflockdClient;
afterEach(() => client?.close());
const fresh = (): DflockdClient => {
  client = new DflockdClient({ servers: [proxy.address], leaseTtlS: 10 });
  return client;
};
const where = () => ({ host: server.host, port: server.port });
const heldKeys = async (): Promise<string[]> => (await stats(where())).locks.map((l) => l.key);

describe("connections, against the run's dflockd", () => {
  it("sequential acquires reuse one connection", async () => {
    const c = fresh();
    const before = opened;
    const k = key();
    for (let i = 0; i < 5; i++) expect(await c.lock(k).withLock(() => i)).toBe(i);
    await c.lock(key()).withLock(() => undefined);
    expect(opened - before).toBe(1);
  });

  it("locks held at once share a connection; each release leaves the others held", async () => {
    const c = fresh();
    const before = opened;
    const keys = [key(), key(), key(), key()];
    const locks = keys.map((k) => c.lock(k));
    for (const l of locks) expect(await l.acquire()).toBe(true);
    expect(opened - before).toBe(1);
    expect((await heldKeys()).filter((k) => keys.includes(k)).sort()).toEqual([...keys].sort());
    await locks[1]?.release();
    locks[2]?.close();
    await until(async () => (await heldKeys()).filter((k) => keys.includes(k)).length === 2, 3000, "two left");
    expect(locks[0]?.held && locks[3]?.held).toBe(true);
    await locks[0]?.release();
    await locks[3]?.release();
  });

  it("a taken key waits on a connection of its own, and is handed over on release", async () => {
    const c = fresh();
    const k = key();
    const holder = c.lock(k);
    expect(await holder.acquire()).toBe(true);
    const before = opened;
    const waiter = c.lock(k, { acquireTimeoutS: 5 });
    const granted = waiter.acquire();
    await until(async () => (await stats(where())).locks.some((l) => l.key === k && l.waiters > 0), 3000, "queued");
    expect(opened - before).toBe(1);
    await holder.release();
    expect(await granted).toBe(true);
    await waiter.release();
  });

  it("with acquireTimeoutS 0 a taken key is refused on the shared connection, without a new one", async () => {
    const c = fresh();
    const k = key();
    const holder = c.lock(k);
    const other = c.lock(key());
    expect(await holder.acquire()).toBe(true);
    expect(await other.acquire()).toBe(true);
    const before = opened;
    // The same key cannot join a connection that holds it, but `other`'s connection is the same one.
    expect(await c.lock(k, { acquireTimeoutS: 0 }).acquire()).toBe(false);
    expect(opened - before).toBe(1);
    await holder.release();
    await other.release();
  });

  it("after a burst of connections, holdings join one that holds rather than each taking an idle one", async () => {
    const n = 16;
    // A server first gets n connections of their own: the burst opens one per acquire.
    ConnectionPool.defaultShareAfter = n;
    const c = fresh();
    ConnectionPool.defaultShareAfter = 0;
    const locks = Array.from({ length: n }, () => c.lock(key()));
    const before = opened;
    expect(await Promise.all(locks.map((l) => l.acquire()))).toEqual(locks.map(() => true));
    expect(opened - before).toBe(n);
    // The first keeps holding; the others release (15 idle connections), then each cycles on its own.
    const [anchor, ...others] = locks as [DistributedLock, ...DistributedLock[]];
    await Promise.all(others.map((l) => l.release()));
    const carried = new Set<number>();
    let counting = true;
    proxy.observe((e) => {
      if (counting && e.direction === "up" && e.chunk !== undefined) carried.add(e.conn);
    });
    await Promise.all(
      others.map(async (l) => {
        for (let i = 0; i < 5; i++) {
          expect(await l.acquire()).toBe(true);
          await l.release();
        }
      }),
    );
    counting = false;
    // All on the anchor's connection: lending idle ones first used 15 of them, one per lock.
    expect(carried.size).toBe(1);
    expect(opened - before).toBe(n);
    await anchor.release();
  });

  it("a burst of first acquisitions opens shareAfter connections, then one per 64 that wait for it", async () => {
    ConnectionPool.defaultShareAfter = 4;
    const c = fresh();
    ConnectionPool.defaultShareAfter = 0;
    const locks = Array.from({ length: 4 + 100 }, () => c.lock(key()));
    const before = opened;
    expect(await Promise.all(locks.map((l) => l.acquire()))).toEqual(locks.map(() => true));
    // One per acquire before: 104.
    expect(opened - before).toBe(4 + 2);
    expect((await heldKeys()).length).toBeGreaterThanOrEqual(104);
    await Promise.all(locks.map((l) => l.release()));
  });

  it("an idle connection whose server went away is not lent: the next acquire reaches the new server", async () => {
    const second = await startDflockd();
    try {
      const c = fresh();
      await c.lock(key()).withLock(() => undefined);
      proxy.retarget(second.port);
      const before = opened;
      // The old server stops: its close passes through the proxy to the idle connection.
      await server.stop();
      const k = key();
      await until(
        async () =>
          (await c
            .lock(k, { acquireTimeoutS: 0 })
            .withLock(() => true)
            .catch(() => false)) === true,
        5000,
        "an acquire through the new server",
      );
      expect(opened - before).toBeGreaterThanOrEqual(1);
    } finally {
      server = await startDflockd();
      proxy.retarget(server.port);
      await second.stop();
    }
  });

  it("the process-wide pool serves new DistributedLock instances the same way", async () => {
    const before = opened;
    const k = key();
    for (let i = 0; i < 3; i++) {
      await new DistributedLock({ key: k, servers: [proxy.address], leaseTtlS: 10 }).withLock(() => undefined);
    }
    expect(opened - before).toBe(1);
  });

  it("client.close() ends holdings and attempts; the server frees them", async () => {
    const c = fresh();
    const k = key();
    const held = c.lock(k);
    expect(await held.acquire()).toBe(true);
    const blocked = c
      .lock(k, { acquireTimeoutS: 30 })
      .acquire()
      .catch((e: unknown) => e);
    await until(async () => (await stats(where())).locks.some((l) => l.key === k && l.waiters > 0), 3000, "queued");
    c.close();
    expect(await blocked).toMatchObject({ code: "ABORTED" });
    expect(held.state).toBe("released");
    await until(async () => !(await heldKeys()).includes(k), 3000, "the lock to be freed");
  });
});
