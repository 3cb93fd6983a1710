/** FIFO order and lease expiry, against a real dflockd. */
import { describe, expect, it } from "vitest";
import { acquire, connect, DistributedLock, enqueue, stats, waitForLock } from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd(["--lease-sweep-interval", "1"]);
const at = () => ({ servers: [server().address] });
const where = () => ({ host: server().host, port: server().port });

describe("FIFO", () => {
  it("grants waiters in the order they queued", async () => {
    const k = key("fifo");
    const holder = new DistributedLock({ key: k, ...at() });
    await holder.acquire();
    const waiters = Array.from({ length: 5 }, () => new DistributedLock({ key: k, acquireTimeoutS: 20, ...at() }));
    for (const w of waiters) expect(await w.enqueue()).toBe("queued");
    const order: number[] = [];
    const runs = waiters.map(async (w, i) => {
      expect(await w.wait(20)).toBe(true);
      order.push(i);
      await w.release();
    });
    await holder.release();
    await Promise.all(runs);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it("a free lock is not granted past a queued waiter", async () => {
    const k = key("fifo");
    const holder = new DistributedLock({ key: k, ...at() });
    const queued = new DistributedLock({ key: k, ...at() });
    await holder.acquire();
    expect(await queued.enqueue()).toBe("queued");
    const granted = queued.wait(10);
    await holder.release();
    expect(await granted).toBe(true);
    expect(await new DistributedLock({ key: k, acquireTimeoutS: 0, ...at() }).acquire()).toBe(false);
    await queued.release();
  });
});

describe("lease expiry", () => {
  it("hands the lock to the next waiter when the holder stops renewing", async () => {
    const k = key("expire");
    const quiet = await connect(where());
    // Low-level acquire: nothing renews it.
    await acquire(quiet, k, 0, 1);
    const t0 = performance.now();
    const waiter = await connect(where());
    expect((await enqueue(waiter, k)).status).toBe("queued");
    const g = await waitForLock(waiter, k, 10);
    const waited = performance.now() - t0;
    expect(g.token).toMatch(/^[0-9a-f]{32}$/);
    expect(waited).toBeGreaterThan(500);
    expect(waited).toBeLessThan(4000);
    quiet.close();
    waiter.close();
  });

  it("the server forgets a closed connection's lock at once", async () => {
    const k = key("close");
    const lock = new DistributedLock({ key: k, ...at() });
    await lock.acquire();
    lock.close();
    const next = new DistributedLock({ key: k, acquireTimeoutS: 5, ...at() });
    expect(await next.acquire()).toBe(true);
    expect((await stats(where())).locks.filter((l) => l.key === k).length).toBe(1);
    await next.release();
  });
});
