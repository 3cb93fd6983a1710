/** Every example of the API contract, against a real dflockd. */
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import {
  AcquireTimeoutError,
  acquire,
  connect,
  DistributedLock,
  DistributedSemaphore,
  enqueue,
  LockError,
  release,
  renew,
  type ShardingStrategy,
  semAcquire,
  semEnqueue,
  semRelease,
  semRenew,
  semWaitForLock,
  stableHashShard,
  stats,
  waitForLock,
} from "../support/client.ts";
import { key, until, useDflockd, useDflockds } from "./helpers.ts";

const server = useDflockd();
const at = () => ({ servers: [server().address] });
const where = () => ({ host: server().host, port: server().port });

describe("DistributedLock", () => {
  it("withLock holds the lock during the callback and releases after", async () => {
    const k = key();
    const lock = new DistributedLock({ key: k, ...at() });
    const seen = await lock.withLock(async () => (await stats(where())).locks.some((l) => l.key === k));
    expect(seen).toBe(true);
    expect(lock.state).toBe("released");
    await until(async () => !(await stats(where())).locks.some((l) => l.key === k), 2000, "lock to disappear");
  });

  it("manual acquire / release with acquireTimeoutS and leaseTtlS", async () => {
    const k = key();
    const lock = new DistributedLock({ key: k, acquireTimeoutS: 10, leaseTtlS: 20, ...at() });
    expect(await lock.acquire()).toBe(true);
    try {
      expect(lock.leaseTtl).toBe(20);
      const entry = (await stats(where())).locks.find((l) => l.key === k);
      expect(entry?.lease_expires_in_s).toBeLessThanOrEqual(20);
      expect(entry?.lease_expires_in_s).toBeGreaterThan(15);
    } finally {
      await lock.release();
    }
  });

  it("acquire returns false when the lock stays taken, and the waiter gets it after release", async () => {
    const k = key();
    const a = new DistributedLock({ key: k, ...at() });
    const b = new DistributedLock({ key: k, acquireTimeoutS: 0, ...at() });
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(false);
    await a.release();
    expect(await b.acquire()).toBe(true);
    await b.release();
  });

  it("two-phase fast path: enqueue acquires, wait returns true", async () => {
    const lock = new DistributedLock({ key: key(), acquireTimeoutS: 10, leaseTtlS: 20, ...at() });
    expect(await lock.enqueue()).toBe("acquired");
    expect(await lock.wait(10)).toBe(true);
    await lock.release();
  });

  it("two-phase queued path: wait blocks until the holder releases", async () => {
    const k = key();
    const holder = new DistributedLock({ key: k, ...at() });
    const waiter = new DistributedLock({ key: k, ...at() });
    await holder.acquire();
    expect(await waiter.enqueue()).toBe("queued");
    const granted = waiter.wait(10);
    await holder.release();
    expect(await granted).toBe(true);
    await waiter.release();
  });

  it("two-phase wait times out and gives up its place", async () => {
    const k = key();
    const holder = new DistributedLock({ key: k, ...at() });
    const waiter = new DistributedLock({ key: k, ...at() });
    await holder.acquire();
    expect(await waiter.enqueue()).toBe("queued");
    expect(await waiter.wait(1)).toBe(false);
    expect(waiter.state).toBe("released");
    await holder.release();
  });

  it("withLock raises AcquireTimeoutError, which is a LockError", async () => {
    const k = key();
    const holder = new DistributedLock({ key: k, ...at() });
    await holder.acquire();
    const err = await new DistributedLock({ key: k, acquireTimeoutS: 0, ...at() })
      .withLock(async () => {})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcquireTimeoutError);
    expect(err).toBeInstanceOf(LockError);
    await holder.release();
  });
});

describe("DistributedSemaphore", () => {
  it("withLock admits up to limit holders at once", async () => {
    const k = key("sem");
    const limit = 3;
    let inside = 0;
    let most = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runs = Array.from({ length: 5 }, () =>
      new DistributedSemaphore({ key: k, limit, ...at() }).withLock(async () => {
        inside++;
        most = Math.max(most, inside);
        if (inside === limit) release();
        await gate;
        inside--;
      }),
    );
    await Promise.all(runs);
    expect(most).toBe(limit);
  });

  it("manual acquire / release, and a try-lock fails when full", async () => {
    const k = key("sem");
    const a = new DistributedSemaphore({ key: k, limit: 2, acquireTimeoutS: 10, leaseTtlS: 20, ...at() });
    const b = new DistributedSemaphore({ key: k, limit: 2, ...at() });
    const c = new DistributedSemaphore({ key: k, limit: 2, acquireTimeoutS: 0, ...at() });
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(true);
    expect(await c.acquire()).toBe(false);
    const s = (await stats(where())).semaphores.find((x) => x.key === k);
    expect(s).toMatchObject({ key: k, limit: 2, holders: 2 });
    await a.release();
    expect(await c.acquire()).toBe(true);
    await Promise.all([b.release(), c.release()]);
  });

  it("two-phase enqueue / wait", async () => {
    const k = key("sem");
    const a = new DistributedSemaphore({ key: k, limit: 1, ...at() });
    const b = new DistributedSemaphore({ key: k, limit: 1, acquireTimeoutS: 10, ...at() });
    expect(await a.enqueue()).toBe("acquired");
    expect(await b.enqueue()).toBe("queued");
    const granted = b.wait(10);
    await a.release();
    expect(await granted).toBe(true);
    await b.release();
  });

  it("a different limit for a held key is LIMIT_MISMATCH", async () => {
    const k = key("sem");
    const a = new DistributedSemaphore({ key: k, limit: 5, ...at() });
    await a.acquire();
    const err = await new DistributedSemaphore({ key: k, limit: 3, ...at() }).acquire().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "LIMIT_MISMATCH" });
    await a.release();
  });
});

describe("stats()", () => {
  it("reports connections, locks, semaphores and idle keys", async () => {
    const k = key();
    const sk = key("sem");
    const lock = new DistributedLock({ key: k, ...at() });
    const sem = new DistributedSemaphore({ key: sk, limit: 4, ...at() });
    await lock.acquire();
    await sem.acquire();
    const s = await stats(where());
    expect(s.connections).toBeGreaterThanOrEqual(3);
    expect(s.locks.find((l) => l.key === k)).toMatchObject({ key: k, waiters: 0 });
    expect(typeof s.locks.find((l) => l.key === k)?.owner_conn_id).toBe("number");
    expect(s.semaphores.find((x) => x.key === sk)).toMatchObject({ key: sk, limit: 4, holders: 1, waiters: 0 });
    expect(Array.isArray(s.idle_locks)).toBe(true);
    expect(Array.isArray(s.idle_semaphores)).toBe(true);
    await lock.release();
    await sem.release();
    const after = await stats(where());
    expect(after.locks.some((l) => l.key === k)).toBe(false);
  });
});

describe("low-level functions", () => {
  it("run as written in the contract, on a plain net.Socket", async () => {
    const sock = net.createConnection({ host: server().host, port: server().port });
    const k1 = key("my-key");
    const k2 = key("another-key");
    const sk = key("sem-key");

    const { token, lease } = await acquire(sock, k1, 10);
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(lease).toBeGreaterThan(0);
    const remaining = await renew(sock, k1, token, 60);
    expect(remaining).toBeGreaterThan(0);
    await release(sock, k1, token);

    const result = await enqueue(sock, k2);
    expect(result.status).toBe("acquired");

    const sem = await semAcquire(sock, sk, 10, 5);
    const semRemaining = await semRenew(sock, sk, sem.token, 60);
    expect(semRemaining).toBeGreaterThan(0);
    await semRelease(sock, sk, sem.token);

    const semResult = await semEnqueue(sock, sk, 5);
    expect(semResult.status).toBe("acquired");
    sock.destroy();
  });

  it("two-phase queued path with connect()", async () => {
    const k = key();
    const a = await connect(where());
    const b = await connect(where());
    const held = await acquire(a, k, 10);
    const r = await enqueue(b, k);
    expect(r).toEqual({ status: "queued", token: null, lease: null });
    const granted = waitForLock(b, k, 10);
    await release(a, k, held.token);
    expect((await granted).token).toMatch(/^[0-9a-f]{32}$/);
    a.close();
    b.close();
  });

  it("semaphore two-phase queued path", async () => {
    const k = key("sem");
    const a = await connect(where());
    const b = await connect(where());
    const held = await semAcquire(a, k, 10, 1);
    expect((await semEnqueue(b, k, 1)).status).toBe("queued");
    const granted = semWaitForLock(b, k, 10);
    await semRelease(a, k, held.token);
    expect((await granted).lease).toBeGreaterThan(0);
    a.close();
    b.close();
  });

  it("acquire and waitForLock throw AcquireTimeoutError on timeout", async () => {
    const k = key();
    const a = await connect(where());
    const b = await connect(where());
    await acquire(a, k, 10);
    await expect(acquire(b, k, 0)).rejects.toBeInstanceOf(AcquireTimeoutError);
    a.close();
    b.close();
  });

  it("release with a wrong token is a server error and the connection stays usable", async () => {
    const conn = await connect(where());
    const k = key();
    await expect(release(conn, k, "0".repeat(32))).rejects.toMatchObject({ code: "SERVER_ERROR" });
    const { token } = await acquire(conn, k, 1);
    await release(conn, k, token);
    conn.close();
  });
});

describe("sharding across several servers", () => {
  const servers = useDflockds(3);

  it("routes each key to stableHashShard(key, 3)", async () => {
    const list = servers().map((s) => s.address);
    for (let i = 0; i < 6; i++) {
      const k = key("shard");
      const lock = new DistributedLock({ key: k, servers: list });
      await lock.acquire();
      const expected = stableHashShard(k, 3);
      const found = await Promise.all(
        servers().map(async (s) => (await stats({ host: s.host, port: s.port })).locks.some((l) => l.key === k)),
      );
      expect(found.map((f, j) => (f ? j : -1)).filter((j) => j >= 0)).toEqual([expected]);
      await lock.release();
    }
  });

  it("uses a custom strategy", async () => {
    const list = servers().map((s) => s.address);
    const last: ShardingStrategy = (_key, numServers) => numServers - 1;
    const k = key("custom");
    await new DistributedLock({ key: k, servers: list, shardingStrategy: last }).withLock(async () => {
      const s = servers()[2];
      if (!s) throw new Error("no server");
      expect((await stats({ host: s.host, port: s.port })).locks.some((l) => l.key === k)).toBe(true);
    });
  });
});
