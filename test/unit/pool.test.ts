/**
 * Connection reuse, driven through the scripted in-memory peer with fake
 * timers: which endings give a connection back, which close it, when an idle
 * one stops being lent, the one retry on a fresh connection and when it is
 * not allowed, and what a client object's close() ends.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { ConnectionError, LockError, LockLostError } from "../../src/errors.ts";
import { idleGuardMs, sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  sharedPool.closeIdle();
  rt = useScriptedRuntime();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  sharedPool.closeIdle();
  vi.useRealTimers();
});

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

/** Answer every request on `peer` the way a free server would. */
function serve(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) => {
    if (cmd === "l" || cmd === "sl") peer.send(`ok ${token(++n)} 10\n`);
    else if (cmd === "e") peer.send(`acquired ${token(++n)} 10\n`);
    else peer.send("ok\n");
  };
}

async function cycle(lock: DistributedLock): Promise<void> {
  expect(await lock.acquire()).toBe(true);
  await lock.release();
}

describe("reuse through the shared pool", () => {
  it("acquires after a clean release on the same connection, across instances", async () => {
    rt.onPeer = serve;
    const a = new DistributedLock({ key: "a", leaseTtlS: 10 });
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    await cycle(a);
    await cycle(b);
    await cycle(a);
    expect(rt.peers).toHaveLength(1);
    expect(rt.peers[0]?.requests.map((r) => r[0])).toEqual(["l", "r", "l", "r", "l", "r"]);
    expect(sharedPool.idle).toBe(1);
  });

  it("concurrent holdings each get their own connection", async () => {
    rt.onPeer = serve;
    const locks = ["a", "b", "c"].map((key) => new DistributedLock({ key, leaseTtlS: 10 }));
    expect(await Promise.all(locks.map((l) => l.acquire()))).toEqual([true, true, true]);
    expect(rt.peers).toHaveLength(3);
    await Promise.all(locks.map((l) => l.release()));
    expect(sharedPool.idle).toBe(3);
  });

  it("different servers, TLS settings or secrets never share a connection", async () => {
    rt.onPeer = serve;
    await cycle(new DistributedLock({ key: "k", leaseTtlS: 10 }));
    await cycle(new DistributedLock({ key: "k", leaseTtlS: 10, servers: [["127.0.0.1", 7000]] }));
    // The first two requests of the third connection are auth, then the acquire.
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => {
        if (cmd === "auth") peer.send("ok\n");
        else if (cmd === "l") peer.send(`ok ${token(9)} 10\n`);
        else peer.send("ok\n");
      };
    };
    await cycle(new DistributedLock({ key: "k", leaseTtlS: 10, auth: "s3cret" }));
    await cycle(new DistributedLock({ key: "k", leaseTtlS: 10, auth: "other" }));
    await cycle(new DistributedLock({ key: "k", leaseTtlS: 10, auth: "s3cret" }));
    expect(rt.peers.map((p) => `${p.target.port}`)).toEqual(["6388", "7000", "6388", "6388"]);
    expect(rt.peers[2]?.requests.map((r) => r[0])).toEqual(["auth", "l", "r", "l", "r"]);
  });

  it("a holding that ends any other way closes its connection", async () => {
    rt.onPeer = serve;
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    expect(await lock.acquire()).toBe(true);
    lock.close();
    expect(rt.peers[0]?.closedByClient).toBe(true);
    expect(sharedPool.idle).toBe(0);
    // Queued, then released: the server must drop the queue place, so the connection goes.
    rt.onPeer = (peer) => {
      peer.onRequest = () => peer.send("queued\n");
    };
    expect(await lock.enqueue()).toBe("queued");
    await lock.release();
    expect(rt.peers[1]?.closedByClient).toBe(true);
    expect(sharedPool.idle).toBe(0);
  });

  it("a release the server refuses does not give the connection back", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 10\n`);
    expect(await p).toBe(true);
    const r = lock.release();
    await peer.nextRequest(2);
    peer.send("error\n");
    await expect(r).rejects.toBeInstanceOf(LockLostError);
    expect(peer.closedByClient).toBe(true);
    expect(sharedPool.idle).toBe(0);
  });

  it("an idle connection is lent only while the server's read timeout cannot have passed", async () => {
    rt.onPeer = serve;
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, serverReadTimeoutS: 5 });
    await cycle(lock);
    // Lent until 5 s after the last request, less the guard; then closed by the sweep.
    await tick(5000 - idleGuardMs(5000) - 10);
    await cycle(lock);
    expect(rt.peers).toHaveLength(1);
    await tick(5000 - idleGuardMs(5000) + 1);
    expect(rt.peers[0]?.closedByClient).toBe(true);
    expect(sharedPool.idle).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await cycle(lock);
    expect(rt.peers).toHaveLength(2);
  });

  it("an idle connection the server closed is never lent", async () => {
    rt.onPeer = serve;
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    await cycle(lock);
    rt.peers[0]?.hangUp();
    await cycle(lock);
    expect(rt.peers).toHaveLength(2);
  });
});

describe("one retry on a fresh connection", () => {
  async function pooledPeer(lock: DistributedLock): Promise<PeerEnd> {
    rt.onPeer = serve;
    await cycle(lock);
    const peer = rt.peers[0] as PeerEnd;
    peer.onRequest = undefined;
    rt.onPeer = undefined;
    return peer;
  }

  it("when a reused connection is closed by the server before any reply", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const stale = await pooledPeer(lock);
    const p = lock.acquire();
    await stale.nextRequest(3);
    stale.hangUp(new Error("ECONNRESET"));
    const fresh = await (async () => {
      while (rt.peers.length < 2) await tick();
      return rt.peers[1] as PeerEnd;
    })();
    expect(await fresh.nextRequest(1)).toEqual(["l", "k", "10 10"]);
    fresh.send(`ok ${token(7)} 10\n`);
    expect(await p).toBe(true);
    expect(lock.token).toBe(token(7));
    lock.close();
  });

  it("not when the reused connection timed out (the server may still be working on it)", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, acquireTimeoutS: 0 });
    const stale = await pooledPeer(lock);
    const p = lock.acquire().catch((e: unknown) => e);
    await stale.nextRequest(3);
    await tick(6000);
    const err = await p;
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe("TIMEOUT");
    expect(rt.peers).toHaveLength(1);
  });

  it("not twice, and not on a connection opened for this attempt", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const stale = await pooledPeer(lock);
    const p = lock.acquire().catch((e: unknown) => e);
    await stale.nextRequest(3);
    stale.hangUp();
    while (rt.peers.length < 2) await tick();
    const fresh = rt.peers[1] as PeerEnd;
    await fresh.nextRequest(1);
    fresh.hangUp();
    expect(await p).toBeInstanceOf(ConnectionError);
    await tick(100);
    expect(rt.peers).toHaveLength(2);
    expect(lock.state).toBe("released");
  });

  it("not after close() or an aborted signal", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const stale = await pooledPeer(lock);
    const p = lock.acquire().catch((e: unknown) => e);
    await stale.nextRequest(3);
    lock.close();
    stale.hangUp();
    expect(await p).toBeInstanceOf(LockError);
    await tick(100);
    expect(rt.peers).toHaveLength(1);
  });
});

describe("DflockdClient", () => {
  it("shares its own pool, and close() ends its holdings and attempts", async () => {
    rt.onPeer = serve;
    const client = new DflockdClient({ leaseTtlS: 10 });
    const a = client.lock("a");
    await cycle(a);
    await cycle(client.lock("b"));
    expect(rt.peers).toHaveLength(1);
    // Not the shared pool's: a plain instance connects afresh.
    await cycle(new DistributedLock({ key: "c", leaseTtlS: 10 }));
    expect(rt.peers).toHaveLength(2);
    expect(await a.acquire()).toBe(true);
    rt.onPeer = undefined;
    const waiting = client
      .lock("w")
      .acquire()
      .catch((e: unknown) => e);
    while (rt.peers.length < 3) await tick();
    await rt.peers[2]?.nextRequest(1);
    client.close();
    expect(a.state).toBe("released");
    expect(await waiting).toMatchObject({ code: "ABORTED" });
    expect(rt.peers[0]?.closedByClient).toBe(true);
    expect(rt.peers[2]?.closedByClient).toBe(true);
    await expect(client.lock("a").acquire()).rejects.toMatchObject({ code: "ABORTED" });
    expect(client.closed).toBe(true);
  });

  it("checks its options at once, and keeps connection settings to itself", () => {
    expect(() => new DflockdClient({ leaseTtlS: 0 })).toThrow(/leaseTtlS/);
    expect(() => new DflockdClient({ maxIdlePerServer: -1 })).toThrow(/maxIdlePerServer/);
    const client = new DflockdClient({
      servers: [
        ["a", 1],
        ["b", 2],
      ],
    });
    expect(client.servers).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    expect(() => client.lock("k", { servers: [["c", 3]] } as never)).toThrow(/client's setting/);
    expect(() => client.semaphore("k", 0)).toThrow(/limit/);
  });

  it("stats() answers for every server, failures included, on pooled connections", async () => {
    rt.onPeer = (peer) => {
      if (peer.target.port === 2) {
        peer.onRequest = () => peer.hangUp();
        return;
      }
      peer.onRequest = ([cmd]) =>
        peer.send(
          cmd === "stats"
            ? 'ok {"connections":1,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[]}\n'
            : "ok\n",
        );
    };
    const client = new DflockdClient({
      servers: [
        ["127.0.0.1", 1],
        ["127.0.0.1", 2],
      ],
    });
    const first = await client.stats();
    expect(first.map((s) => [s.port, s.ok])).toEqual([
      [1, true],
      [2, false],
    ]);
    await client.stats();
    expect(rt.peers.filter((p) => p.target.port === 1)).toHaveLength(1);
    client.close();
  });
});
