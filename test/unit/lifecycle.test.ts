/**
 * The life of a DistributedLock / DistributedSemaphore, driven through a
 * scripted in-memory peer (test/support/scripted-peer.ts) with fake timers,
 * so that every timing rule can be checked exactly. The same behaviours are
 * checked against a real dflockd in test/integration.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  AcquireTimeoutError,
  ConnectionError,
  InvalidArgumentError,
  LockError,
  LockLostError,
} from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore, type LockOptions } from "../../src/primitive.ts";
import { later, tick, useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

/**
 * A clean end (release answered `ok`, acquire answered `timeout`) gives the
 * connection back to the shared pool instead of closing it: check that, then
 * empty the pool, which must leave nothing open and no timer.
 */
function pooled(peer: PeerEnd): void {
  expect(peer.closedByClient).toBe(false);
  expect(sharedPool.idle).toBe(1);
  sharedPool.closeIdle();
  expect(peer.closedByClient).toBe(true);
}

/** Start acquire() and answer it with a grant; returns the peer. */
async function held(lock: DistributedLock, lease = 10, fence?: string): Promise<PeerEnd> {
  const p = lock.acquire();
  const peer = await rt.peer();
  await peer.nextRequest(1);
  peer.send(`ok ${token(1)} ${lease}${fence ? ` ${fence}` : ""}\n`);
  expect(await p).toBe(true);
  return peer;
}

/** Enqueue and answer "queued"; returns the peer. */
async function queued(lock: DistributedLock): Promise<PeerEnd> {
  const e = lock.enqueue();
  const peer = await rt.peer();
  await peer.nextRequest(1);
  peer.send("queued\n");
  expect(await e).toBe("queued");
  return peer;
}

describe("options", () => {
  const bad: Array<[string, Partial<LockOptions>]> = [
    ["missing key", { key: undefined as unknown as string }],
    ["key with a space", { key: "a b" }],
    ["key with LF", { key: "a\nb" }],
    ["negative timeout", { key: "k", acquireTimeoutS: -1 }],
    ["fractional timeout", { key: "k", acquireTimeoutS: 1.5 }],
    ["lease 0", { key: "k", leaseTtlS: 0 }],
    ["NaN lease", { key: "k", leaseTtlS: Number.NaN }],
    ["renewRatio 0", { key: "k", renewRatio: 0 }],
    ["renewRatio 1", { key: "k", renewRatio: 1 }],
    ["empty servers", { key: "k", servers: [] }],
    ["bad port", { key: "k", servers: [["h", 70000]] }],
    ["servers and host", { key: "k", servers: [["h", 1]], host: "x" }],
    ["bad host", { key: "k", host: "" }],
    ["strategy not a function", { key: "k", shardingStrategy: 3 as unknown as () => number }],
  ];
  it.each(bad)("rejects %s with InvalidArgumentError", (_name, options) => {
    expect(() => new DistributedLock(options as LockOptions)).toThrow(InvalidArgumentError);
  });

  it.each([0, -1, 1.5, Number.NaN, undefined])("rejects semaphore limit %s", (limit) => {
    expect(() => new DistributedSemaphore({ key: "k", limit: limit as number })).toThrow(InvalidArgumentError);
  });

  it.each([2, -1, 0.5, Number.NaN, "0" as unknown as number])(
    "rejects a sharding strategy returning %s before connecting",
    async (i) => {
      const lock = new DistributedLock({
        key: "k",
        servers: [
          ["a", 1],
          ["b", 2],
        ],
        shardingStrategy: () => i,
      });
      await expect(lock.acquire()).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(lock.enqueue()).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(rt.peers.length).toBe(0);
      expect(lock.state).toBe("released");
    },
  );

  it("routes by stableHashShard and copies the servers array", async () => {
    const servers: Array<[string, number]> = [
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ];
    const lock = new DistributedLock({ key: "my-job", servers });
    servers[1] = ["evil", 9];
    servers.length = 0;
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(peer.target).toMatchObject({ host: "b", port: 2 }); // crc32("my-job") % 3 === 1
    await peer.nextRequest(1);
    peer.send("timeout\n");
    expect(await p).toBe(false);
  });

  it("still honours the deprecated host/port", async () => {
    const lock = new DistributedLock({ key: "k", host: "old", port: 7000 });
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(peer.target).toMatchObject({ host: "old", port: 7000 });
    await peer.nextRequest(1);
    peer.send("timeout\n");
    await p;
  });

  it("defaults to 127.0.0.1:6388, a 10 s timeout and the server's lease", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(peer.target).toMatchObject({ host: "127.0.0.1", port: 6388 });
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "10"]);
    peer.send("timeout\n");
    await p;
  });
});

describe("acquire and release", () => {
  it("acquires, reports the grant, releases and gives its connection back to the pool", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const peer = await held(lock, 10, "0000000000000007");
    expect(peer.requests[0]).toEqual(["l", "k", "10 10"]);
    expect(lock.state).toBe("held");
    expect(lock.token).toBe(token(1));
    expect(lock.fence).toBe("0000000000000007");
    expect(lock.leaseTtl).toBe(10);
    const r = lock.release();
    expect(await peer.nextRequest(2)).toEqual(["r", "k", token(1)]);
    peer.send("ok\n");
    await r;
    expect(lock.state).toBe("released");
    expect(lock.token).toBeUndefined();
    pooled(peer);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("returns false on timeout and leaves nothing open but a pooled connection", async () => {
    const lock = new DistributedLock({ key: "k", acquireTimeoutS: 0 });
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "0"]);
    peer.send("timeout\n");
    expect(await p).toBe(false);
    pooled(peer);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("maps server errors and frees the instance", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("error_max_locks\n");
    await expect(p).rejects.toMatchObject({ code: "MAX_LOCKS" });
    expect(lock.state).toBe("released");
    // A refusal leaves the connection in a known state: it goes back to the pool.
    pooled(peer);
  });

  it("a concurrent acquire() is refused and opens no second connection", async () => {
    const lock = new DistributedLock({ key: "k" });
    const first = lock.acquire();
    await expect(lock.acquire()).rejects.toMatchObject({ code: "BUSY" });
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 10\n`);
    expect(await first).toBe(true);
    await expect(lock.acquire()).rejects.toMatchObject({ code: "BUSY" });
    expect(rt.peers.length).toBe(1);
    lock.close();
  });

  it("release() is a no-op when nothing is held", async () => {
    const lock = new DistributedLock({ key: "k" });
    await lock.release();
    expect(rt.peers.length).toBe(0);
  });

  it("release() waits for a slow server while the lease is provable, and is bounded by the loss deadline", async () => {
    const lock = new DistributedLock({ key: "k", requestTimeoutMs: 2000, safetyMarginMs: 500 });
    const peer = await held(lock, 30);
    const r = lock.release().catch((e: unknown) => e);
    await peer.nextRequest(2);
    // Past the request timeout, the release is still awaited: a slow server is not a lost lock.
    await tick(2001);
    expect(lock.state).toBe("releasing");
    expect(peer.closedByClient).toBe(false);
    // Past the lease's deadline (30 s from the acquire, less the margin), it can no longer be confirmed.
    await tick(30_000 - 500 - 2001);
    const err = await r;
    expect(err).toBeInstanceOf(LockLostError);
    expect(lock.state).toBe("released");
    expect(peer.closedByClient).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("release() reports a lock the server no longer knows as lost", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await held(lock, 30);
    const r = lock.release().catch((e: unknown) => e);
    await peer.nextRequest(2);
    peer.send("error\n");
    expect(await r).toBeInstanceOf(LockLostError);
    expect(lock.state).toBe("released");
  });

  it("close() is synchronous, idempotent, and aborts an acquire in flight", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    lock.close();
    lock.close();
    expect(lock.state).toBe("released");
    expect(peer.closedByClient).toBe(true);
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("close() while connecting closes the connection that arrives late", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire().catch((e: unknown) => e);
    lock.close();
    expect(await p).toBeInstanceOf(LockError);
    expect(rt.peers[0]?.closedByClient).toBe(true);
  });

  it("an AbortSignal abandons the attempt", async () => {
    const lock = new DistributedLock({ key: "k" });
    const ac = new AbortController();
    const p = lock.acquire({ signal: ac.signal }).catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    ac.abort();
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(peer.closedByClient).toBe(true);
    expect(lock.state).toBe("released");
    await expect(lock.acquire({ signal: ac.signal })).rejects.toMatchObject({ code: "ABORTED" });
  });
});

describe("renewal", () => {
  it("renews at lease × renewRatio with the TTL the lock was taken with", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const peer = await held(lock, 10);
    // 10 s lease, 500 ms safety margin: half of the usable 9.5 s.
    await tick(4749);
    expect(peer.requests.length).toBe(1);
    await tick(1);
    expect(peer.requests[1]).toEqual(["n", "k", `${token(1)} 10`]);
    expect(lock.state).toBe("renewing");
    peer.send("ok 10\n");
    await tick();
    expect(lock.state).toBe("held");
    await tick(4750);
    expect(peer.requests[2]).toEqual(["n", "k", `${token(1)} 10`]);
    lock.close();
  });

  it("sends the server's default TTL back when none was asked for (a bare renew would reset it)", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await held(lock, 33);
    await tick(15_675);
    expect(peer.requests[1]).toEqual(["n", "k", `${token(1)} 33`]);
    lock.close();
  });

  it("never idles past the server's read timeout, even with a long lease", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 120, serverReadTimeoutS: 4 });
    const peer = await held(lock, 120);
    for (let i = 0; i < 5; i++) {
      // Every 3 s: a second before the 4 s read timeout, counted from the last send.
      await tick(3000);
      expect(peer.requests.length).toBe(2 + i);
      peer.send("ok 120\n");
      await tick();
    }
    expect(lock.state).toBe("held");
    lock.close();
  });

  it("adjusts to the TTL the server returns", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const peer = await held(lock, 10);
    await tick(4750);
    peer.send("ok 4\n");
    await tick();
    // 4 s from the renewal's send, less a 300 ms margin (recomputed for 4 s): renew after 1850 ms.
    await tick(1849);
    expect(peer.requests.length).toBe(2);
    await tick(1);
    expect(peer.requests.length).toBe(3);
    expect(peer.requests[2]).toEqual(["n", "k", `${token(1)} 10`]);
    lock.close();
  });

  it("a refused renewal marks the lock lost, calls onLost once, gives the (sound) connection back", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost });
    const peer = await held(lock, 10);
    const signal = lock.signal as AbortSignal;
    await tick(5000);
    peer.send("error_lease_expired\n");
    await tick();
    expect(lock.state).toBe("lost");
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(onLost.mock.calls[0]?.[0]).toBeInstanceOf(LockLostError);
    expect(signal.aborted).toBe(true);
    pooled(peer);
    expect(vi.getTimerCount()).toBe(0);
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    expect(lock.state).toBe("released");
    await held(lock, 10);
    expect(lock.state).toBe("held");
    lock.close();
  });

  it("marks the lock lost when the deadline passes without a confirmed renewal", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 4, requestTimeoutMs: 60_000, onLost });
    const peer = await held(lock, 4);
    // 4 s lease, 300 ms margin: renew at 1850, lost at 3700 unless confirmed.
    await tick(1850);
    expect(lock.state).toBe("renewing");
    await tick(1849);
    expect(lock.state).toBe("renewing");
    await tick(1);
    expect(lock.state).toBe("lost");
    expect(onLost.mock.calls[0]?.[0].message).toMatch(/300 ms safety margin|not confirmed within/);
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(peer.closedByClient).toBe(true);
  });

  it("an onLost that throws or rejects is logged, never thrown into the runtime", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (const onLost of [
        () => {
          throw new Error("boom");
        },
        () => Promise.reject(new Error("async boom")),
      ]) {
        const lock = new DistributedLock({ key: "k", onLost });
        const peer = await held(lock, 30);
        peer.hangUp(new Error("ECONNRESET"));
        await tick();
        expect(lock.state).toBe("lost");
      }
      expect(logged).toHaveBeenCalledTimes(2);
      expect(String(logged.mock.calls[0]?.[1])).toMatch(/boom/);
      expect(String(logged.mock.calls[1]?.[1])).toMatch(/async boom/);
    } finally {
      logged.mockRestore();
    }
  });

  it("close() during the auth exchange cancels acquire() at once and closes the socket", async () => {
    const lock = new DistributedLock({ key: "k", auth: "sekrit", connectTimeoutMs: 60_000 });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    expect(peer.requests[0]?.[0]).toBe("auth");
    lock.close();
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(peer.closedByClient).toBe(true);
    expect(lock.state).toBe("released");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a renewal unanswered past the request timeout is awaited until the loss deadline, then reported as such", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, requestTimeoutMs: 1000, onLost });
    await held(lock, 10);
    await tick(4750);
    expect(lock.state).toBe("renewing");
    // A slow server is not a lost lock: the request timeout passes, the lease is still provable.
    await tick(1000);
    expect(lock.state).toBe("renewing");
    expect(onLost).not.toHaveBeenCalled();
    await tick(4250);
    expect(lock.state).toBe("lost");
    expect(onLost.mock.calls[0]?.[0].message).toMatch(/before the lease's deadline/);
    expect(onLost.mock.calls[0]?.[0].message).not.toMatch(/connection to the server was lost/);
  });

  it("a dropped connection while holding marks the lock lost", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", onLost });
    const peer = await held(lock, 30);
    peer.hangUp(new Error("ECONNRESET"));
    expect(lock.state).toBe("lost");
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(onLost.mock.calls[0]).toEqual([expect.objectContaining({ cause: expect.any(ConnectionError) })]);
  });

  it("release() waits for an in-flight renewal instead of interleaving", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const peer = await held(lock, 10);
    await tick(5000);
    expect(lock.state).toBe("renewing");
    const r = lock.release();
    await tick(10);
    expect(peer.requests.length).toBe(2);
    peer.send("ok 10\n");
    expect(await peer.nextRequest(3)).toEqual(["r", "k", token(1)]);
    peer.send("ok\n");
    await r;
    expect(lock.state).toBe("released");
  });
});

describe("two-phase", () => {
  it("fast path: enqueue acquires, wait returns true at once", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 5 });
    const e = lock.enqueue();
    const peer = await rt.peer();
    expect(await peer.nextRequest(1)).toEqual(["e", "k", "5"]);
    peer.send(`acquired ${token(3)} 5\n`);
    expect(await e).toBe("acquired");
    expect(await lock.wait(1)).toBe(true);
    expect(peer.requests.length).toBe(1);
    lock.close();
  });

  it("queued path: wait blocks until granted; a timeout gives up the place", async () => {
    const lock = new DistributedLock({ key: "k" });
    const e = lock.enqueue();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("queued\n");
    expect(await e).toBe("queued");
    expect(lock.state).toBe("queued");
    const w = lock.wait(3);
    expect(await peer.nextRequest(2)).toEqual(["w", "k", "3"]);
    peer.send("timeout\n");
    expect(await w).toBe(false);
    expect(lock.state).toBe("released");
    expect(peer.closedByClient).toBe(true);
  });

  it("wait() without enqueue() is an error", async () => {
    await expect(new DistributedLock({ key: "k" }).wait(1)).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
  });

  it("semaphores send their limit", async () => {
    const sem = new DistributedSemaphore({ key: "s", limit: 3, leaseTtlS: 7 });
    const e = sem.enqueue();
    const peer = await rt.peer();
    expect(await peer.nextRequest(1)).toEqual(["se", "s", "3 7"]);
    peer.send("queued\n");
    await e;
    const w = sem.wait();
    expect(await peer.nextRequest(2)).toEqual(["sw", "s", "10"]);
    peer.send(`ok ${token(4)} 7\n`);
    expect(await w).toBe(true);
    await tick(3500);
    expect(peer.requests[2]).toEqual(["sn", "s", `${token(4)} 7`]);
    peer.send("ok 7\n");
    await tick();
    const r = sem.release();
    expect(await peer.nextRequest(4)).toEqual(["sr", "s", token(4)]);
    peer.send("ok\n");
    await r;
    expect(sem.limit).toBe(3);
  });
});

describe("withLock", () => {
  it("returns the callback's value and releases", async () => {
    const lock = new DistributedLock({ key: "k" });
    const run = lock.withLock(async () => 42);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 33\n`);
    await peer.nextRequest(2);
    peer.send("ok\n");
    expect(await run).toBe(42);
    expect(lock.state).toBe("released");
  });

  it("throws AcquireTimeoutError on timeout without calling the callback", async () => {
    const lock = new DistributedLock({ key: "k", acquireTimeoutS: 0 });
    const fn = vi.fn();
    const run = lock.withLock(fn).catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("timeout\n");
    expect(await run).toBeInstanceOf(AcquireTimeoutError);
    expect(fn).not.toHaveBeenCalled();
  });

  it("releases when the callback throws and rethrows the callback's error, not the release error", async () => {
    const lock = new DistributedLock({ key: "k" });
    const boom = new Error("boom");
    const run = lock
      .withLock(async () => {
        throw boom;
      })
      .catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 33\n`);
    expect(await peer.nextRequest(2)).toEqual(["r", "k", token(1)]);
    peer.send("error\n");
    expect(await run).toBe(boom);
    expect(lock.state).toBe("released");
  });

  it("throws LockLostError if the lock was lost while the callback ran, and aborts its signal", async () => {
    const lock = new DistributedLock({ key: "k" });
    let seen: AbortSignal | undefined;
    let finish: () => void = () => {};
    const run = lock
      .withLock(
        (signal) =>
          new Promise<void>((r) => {
            seen = signal;
            finish = r;
          }),
      )
      .catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 33\n`);
    await tick();
    peer.hangUp();
    expect(seen?.aborted).toBe(true);
    finish();
    expect(await run).toBeInstanceOf(LockLostError);
  });
});

describe("races and timing found in review", () => {
  it("a lease granted after queueing is dated from the request, and confirmed before acquire() resolves", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost });
    const p = lock.acquire();
    let done = false;
    void p.then(() => {
      done = true;
    });
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(6000);
    // Only 3.5 s of the usable 9.5 s are left, counted from the send: renew first.
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    expect(peer.requests[1]).toEqual(["n", "k", `${token(1)} 10`]);
    await tick();
    expect(done).toBe(false);
    peer.send("ok 10\n");
    expect(await p).toBe(true);
    expect(lock.state).toBe("held");
    // The lease now runs from the renewal's send (6000): next renewal at 6000 + 4750.
    await tick(4749);
    expect(peer.requests.length).toBe(2);
    await tick(1);
    expect(peer.requests[2]?.[0]).toBe("n");
    expect(onLost).not.toHaveBeenCalled();
    lock.close();
  });

  it("a confirmation whose own reply came late proves too little: it is renewed again", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, requestTimeoutMs: 60_000 });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(6000);
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    // The renewal's reply takes 5 s: 4.5 s of its usable 9.5 s are left, not enough.
    await tick(5000);
    peer.send("ok 10\n");
    await peer.nextRequest(3);
    expect(peer.requests[2]?.[0]).toBe("n");
    peer.send("ok 10\n");
    expect(await p).toBe(true);
    expect(lock.state).toBe("held");
    lock.close();
  });

  it("a grant no confirmation can catch up with is given up after three tries", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, requestTimeoutMs: 60_000, onLost });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(6000);
    peer.send(`ok ${token(1)} 10\n`);
    for (let n = 2; n <= 4; n++) {
      await peer.nextRequest(n);
      await tick(8000);
      peer.send("ok 10\n");
    }
    const err = await p;
    expect(err).toBeInstanceOf(LockLostError);
    expect((err as Error).message).toMatch(/after 3 tries/);
    expect(peer.requests.length).toBe(4);
    expect(peer.closedByClient).toBe(true);
    expect(onLost).not.toHaveBeenCalled();
    expect(lock.state).toBe("released");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a late grant whose confirmation is refused: acquire() throws LockLostError, onLost is not called", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(12_000);
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    peer.send("error\n");
    const err = await p;
    expect(err).toBeInstanceOf(LockLostError);
    expect(onLost).not.toHaveBeenCalled();
    expect(lock.state).toBe("released");
    expect(lock.signal).toBeUndefined();
    pooled(peer);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a grant delayed in transit: the loss is reported at send + lease − margin, not later", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 5, requestTimeoutMs: 60_000, onLost });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    // The server granted at once; the reply spent 1 s on the way.
    await tick(1000);
    peer.send(`ok ${token(1)} 5\n`);
    expect(await p).toBe(true);
    // Usable until 5000 − 300 = 4700 after the send, whatever the reply's delay.
    await tick(3699);
    expect(lock.held).toBe(true);
    await tick(1);
    expect(lock.state).toBe("lost");
    expect(onLost).toHaveBeenCalledTimes(1);
  });

  it("the same for wait(): a grant is dated from the enqueue, and confirmed when late", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 5 });
    const peer = await queued(lock);
    const w = lock.wait(10);
    await peer.nextRequest(2);
    await tick(6000);
    peer.send(`ok ${token(1)} 5\n`);
    await peer.nextRequest(3);
    expect(peer.requests[2]?.[0]).toBe("n");
    peer.send("ok 5\n");
    expect(await w).toBe(true);
    await tick(100);
    expect(lock.state).toBe("held");
    lock.close();
  });

  it("a grant and a close in the same chunk: acquire() rejects typed, nothing is held", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 10\nerror\n`);
    const err = await p;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(lock.state).toBe("released");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a grant and a close in the same chunk: wait() rejects typed, not with an internal error", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await queued(lock);
    const w = lock.wait(5).catch((x: unknown) => x);
    await peer.nextRequest(2);
    peer.send(`ok ${token(1)} 10\nerror\n`);
    const err = await w;
    expect(err).toBeInstanceOf(LockError);
    expect(lock.state).toBe("released");
  });

  it("a second concurrent wait() is refused and does not destroy the first one's grant", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await queued(lock);
    const first = lock.wait(5);
    await expect(lock.wait(5)).rejects.toMatchObject({ code: "BUSY" });
    await peer.nextRequest(2);
    peer.send(`ok ${token(1)} 10\n`);
    expect(await first).toBe(true);
    expect(lock.held).toBe(true);
    expect(peer.requests.length).toBe(2);
    lock.close();
  });

  it("a dropped wait() is reported once; the next wait() says NOT_ENQUEUED", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await queued(lock);
    const w = lock.wait(5).catch((x: unknown) => x);
    await peer.nextRequest(2);
    peer.hangUp();
    expect(await w).toBeInstanceOf(ConnectionError);
    await expect(lock.wait(5)).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
  });

  it("a queued lock whose connection drops reports the drop from the next wait()", async () => {
    const lock = new DistributedLock({ key: "k" });
    const peer = await queued(lock);
    peer.hangUp();
    expect(lock.state).toBe("released");
    await expect(lock.wait(5)).rejects.toBeInstanceOf(ConnectionError);
    await expect(lock.wait(5)).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
  });

  it("a renewal confirmed during release() moves the deadline the release is held to", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 2 });
    const peer = await held(lock, 2);
    await tick(1000);
    expect(lock.state).toBe("renewing");
    const r = lock.release().catch((x: unknown) => x);
    peer.send("ok 2\n");
    await peer.nextRequest(3);
    await tick(1500); // past the old deadline (2 s), before the new one (3 s)
    peer.send("ok\n");
    expect(await r).toBeUndefined();
    expect(lock.state).toBe("released");
  });

  it("an older server's 'ok 0' reply to renewing a 1 s lease keeps the lock", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 1 });
    const peer = await held(lock, 1);
    for (let i = 0; i < 4; i++) {
      // 1 s lease, 300 ms margin: renew every 350 ms.
      await tick(350);
      expect(peer.requests[i + 1]).toEqual(["n", "k", `${token(1)} 1`]);
      peer.send("ok 0\n");
      await tick();
      expect(lock.state).toBe("held");
    }
    lock.close();
  });
});

describe("fake timers cleared between tests (found in review)", () => {
  it("a lock taken after vi.clearAllTimers() (a user's afterEach) is still renewed, or reported lost", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost });
    const peer = await held(lock, 10);
    const r = lock.release();
    await peer.nextRequest(2);
    peer.send("ok\n");
    await r;
    // The idle connection is kept (no closeIdleConnections()), and every fake timer is dropped.
    vi.clearAllTimers();
    await tick(1);
    const p = lock.acquire();
    expect(await peer.nextRequest(3)).toEqual(["l", "k", "10 10"]);
    peer.send(`ok ${token(2)} 10\n`);
    expect(await p).toBe(true);
    // Renewed at half the lease; unanswered, the holding is reported lost at its deadline.
    await tick(20_000);
    expect(peer.requests[3]?.[0]).toBe("n");
    expect(onLost).toHaveBeenCalledTimes(1);
    lock.close();
  });
});

describe("hand-over races (found in review)", () => {
  it("close() at any point between a grant's reply and its hand-over: never 'acquired' with nothing held", async () => {
    for (let depth = 0; depth < 12; depth++) {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
      const p = lock.acquire().catch((e: unknown) => e);
      const peer = await rt.peer();
      await peer.nextRequest(1);
      peer.send(`ok ${token(1)} 10\n`);
      const closed = later(depth, () => lock.close());
      const result = await p;
      await closed;
      if (result === true) {
        // Handed over before close(): then close() released it properly.
        expect(peer.closedByClient).toBe(true);
      } else {
        expect(result, `depth ${depth}`).toBeInstanceOf(LockError);
      }
      expect(lock.state, `depth ${depth}`).toBe("released");
      expect(lock.signal, `depth ${depth}`).toBeUndefined();
      expect(vi.getTimerCount(), `depth ${depth}`).toBe(0);
    }
  });

  it("close() at any point after a confirming renewal succeeds: acquire() never resolves true on a closed lock", async () => {
    for (let depth = 0; depth < 12; depth++) {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
      const p = lock.acquire().catch((e: unknown) => e);
      const peer = await rt.peer();
      await peer.nextRequest(1);
      await tick(6000);
      peer.send(`ok ${token(1)} 10\n`);
      await peer.nextRequest(2);
      peer.send("ok 10\n");
      const closed = later(depth, () => lock.close());
      const result = await p;
      await closed;
      if (result !== true) expect(result, `depth ${depth}`).toMatchObject({ code: "ABORTED" });
      expect(lock.state, `depth ${depth}`).toBe("released");
      expect(lock.signal, `depth ${depth}`).toBeUndefined();
      expect(vi.getTimerCount(), `depth ${depth}`).toBe(0);
    }
  });

  it("the caller's signal aborted during a confirmation: acquire() rejects ABORTED", async () => {
    const ac = new AbortController();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const p = lock.acquire({ signal: ac.signal }).catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(6000);
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    ac.abort();
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(peer.closedByClient).toBe(true);
    expect(lock.state).toBe("released");
  });

  it("a signal listener sees the final state and may call release()", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost: () => {} });
    const peer = await held(lock, 10);
    let seen = "";
    let released: Promise<unknown> | undefined;
    lock.signal?.addEventListener("abort", () => {
      seen = lock.state;
      released = lock.release().catch((e: unknown) => e);
    });
    peer.hangUp(new Error("ECONNRESET"));
    expect(seen).toBe("lost");
    expect(await released).toBeInstanceOf(LockLostError);
  });

  it("a release not confirmed by the lease's loss time is a loss, reported then", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 4, requestTimeoutMs: 60_000 });
    const peer = await held(lock, 4);
    const signal = lock.signal as AbortSignal;
    const r = lock.release().catch((e: unknown) => e);
    await peer.nextRequest(2);
    expect(peer.requests[1]?.[0]).toBe("r");
    await tick(3699);
    expect(signal.aborted).toBe(false);
    await tick(1);
    expect(signal.aborted).toBe(true);
    expect(await r).toBeInstanceOf(LockLostError);
    expect(lock.state).toBe("released");
  });

  it("a grant of 0 seconds is malformed", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 0\n`);
    expect(await p).toMatchObject({ code: "PROTOCOL" });
    expect(lock.state).toBe("released");
  });
});
