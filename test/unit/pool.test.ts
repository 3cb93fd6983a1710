/**
 * Connection reuse, driven through the scripted in-memory peer with fake
 * timers: which endings give a connection back, which close it, when an idle
 * one stops being lent, the one retry on a fresh connection and when it is
 * not allowed, and what a client object's close() ends.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { ConnectionError, LockError, LockLostError } from "../../src/errors.ts";
import { idleGuardMs, sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

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
    // Below shareAfter (with 0, a second concurrent acquire would join a connection opened for sharing).
    sharedPool.shareAfter = 3;
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

  it("a release the server refuses leaves a sound connection: it goes back", async () => {
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
    expect(peer.closedByClient).toBe(false);
    expect(sharedPool.idle).toBe(1);
  });

  it("an idle connection is lent only while the server's read timeout cannot have passed", async () => {
    rt.onPeer = serve;
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, serverReadTimeoutS: 5 });
    await cycle(lock);
    // Lent until 5 s after the last request, less the guard; then pinged (a v1.10 server answers error, and
    // reads the line: lent for as long again), then closed by the sweep.
    await tick(5000 - idleGuardMs(5000) - 10);
    await cycle(lock);
    expect(rt.peers).toHaveLength(1);
    await tick(5000 - idleGuardMs(5000) + 1);
    expect(rt.peers[0]?.closedByClient).toBe(false);
    expect(rt.peers[0]?.requests.at(-1)?.[0]).toBe("ping");
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

describe("holdings sharing a connection", () => {
  /** Hold `key` on a fresh connection answered by serve(); returns the lock and its peer. */
  async function holding(key: string, options: object = {}): Promise<[DistributedLock, PeerEnd]> {
    rt.onPeer = serve;
    const lock = new DistributedLock({ key, leaseTtlS: 10, ...options });
    expect(await lock.acquire()).toBe(true);
    return [lock, rt.peers[rt.peers.length - 1] as PeerEnd];
  }

  it("a new holding joins a connection that holds, with a request that cannot block", async () => {
    const [a, peer] = await holding("a");
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    expect(await b.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    expect(peer.requests).toEqual([
      ["l", "a", "10 10"],
      ["l", "b", "0 10"],
    ]);
    // One leaves: the connection stays with the other; the last one leaving makes it idle.
    await a.release();
    expect(peer.closedByClient).toBe(false);
    expect(sharedPool.shared).toBe(1);
    await b.release();
    expect(sharedPool.shared).toBe(0);
    expect(sharedPool.idle).toBe(1);
  });

  it("never two holdings of one key on one connection", async () => {
    const [first] = await holding("k");
    const second = new DistributedLock({ key: "k", leaseTtlS: 10, acquireTimeoutS: 0 });
    const p = second.acquire();
    while (rt.peers.length < 2) await tick();
    expect(await rt.peers[1]?.nextRequest(1)).toEqual(["l", "k", "0 10"]);
    expect(await p).toBe(true);
    first.close();
    second.close();
  });

  it("with acquireTimeoutS 0, a refused try is the answer: no second connection", async () => {
    const [a, peer] = await holding("a");
    peer.onRequest = () => peer.send("timeout\n");
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, acquireTimeoutS: 0 });
    expect(await b.acquire()).toBe(false);
    expect(rt.peers).toHaveLength(1);
    a.close();
  });

  it("enqueue() never shares: a queue place ties its connection up", async () => {
    const [a] = await holding("a");
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    expect(await b.enqueue()).toBe("acquired");
    expect(rt.peers).toHaveLength(2);
    a.close();
    b.close();
  });

  it("close() of one holding sends its release and leaves the others alone", async () => {
    const [a, peer] = await holding("a");
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    expect(await b.acquire()).toBe(true);
    b.close();
    expect(b.state).toBe("released");
    expect(peer.requests.at(-1)).toEqual(["r", "b", token(2)]);
    expect(peer.closedByClient).toBe(false);
    expect(a.state).toBe("held");
    await a.release();
  });

  it("a shared connection lost takes every holding on it, each told once", async () => {
    const lost: string[] = [];
    const onLost = (e: LockLostError) => lost.push(e.key);
    const [, peer] = await holding("a", { onLost });
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, onLost });
    expect(await b.acquire()).toBe(true);
    peer.hangUp();
    expect(lost.sort()).toEqual(["a", "b"]);
  });

  it("a holding lost to silence closes the shared connection: the others cannot be proven either", async () => {
    const lost: string[] = [];
    const onLost = (e: LockLostError) => lost.push(e.key);
    const [, peer] = await holding("a", { onLost, leaseTtlS: 4 });
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, onLost });
    expect(await b.acquire()).toBe(true);
    peer.onRequest = undefined;
    await tick(11_000);
    expect(lost.sort()).toEqual(["a", "b"]);
    expect(peer.closedByClient).toBe(true);
  });

  it("close() during a try on a shared connection rejects at once; a late grant is released", async () => {
    const [a, peer] = await holding("a");
    peer.onRequest = undefined;
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    const p = b.acquire().catch((e: unknown) => e);
    expect(await peer.nextRequest(2)).toEqual(["l", "b", "0 10"]);
    b.close();
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(peer.closedByClient).toBe(false);
    peer.send(`ok ${token(9)} 10\n`);
    expect(await peer.nextRequest(3)).toEqual(["r", "b", token(9)]);
    peer.send("ok\n");
    expect(a.state).toBe("held");
    a.close();
  });

  it("an aborted signal during a try does the same", async () => {
    const [a, peer] = await holding("a");
    peer.onRequest = undefined;
    const b = new DistributedLock({ key: "b", leaseTtlS: 10 });
    const ac = new AbortController();
    const p = b.acquire({ signal: ac.signal }).catch((e: unknown) => e);
    await peer.nextRequest(2);
    ac.abort(new Error("stop"));
    expect(await p).toMatchObject({ code: "ABORTED" });
    peer.send("timeout\n");
    await tick();
    expect(peer.requests).toHaveLength(2);
    expect(peer.closedByClient).toBe(false);
    a.close();
  });
});

describe("when sharing starts", () => {
  it("a server first gets shareAfter connections of its own, then holdings share them", async () => {
    rt.onPeer = serve;
    sharedPool.shareAfter = 2;
    const locks = ["a", "b", "c", "d"].map((key) => new DistributedLock({ key, leaseTtlS: 10 }));
    for (const l of locks) expect(await l.acquire()).toBe(true);
    // a and b each opened one; c and d found two open and joined one that holds.
    expect(rt.peers).toHaveLength(2);
    expect(rt.peers.flatMap((p) => p.requests.map((r) => r.join(" "))).sort()).toEqual([
      "l a 10 10",
      "l b 10 10",
      "l c 0 10",
      "l d 0 10",
    ]);
    for (const l of locks) l.close();
  });

  it("past shareAfter, an acquire joins a connection that holds before it takes an idle one", async () => {
    rt.onPeer = serve;
    sharedPool.shareAfter = 2;
    const [a, b, c] = ["a", "b", "c"].map((key) => new DistributedLock({ key, leaseTtlS: 10 })) as [
      DistributedLock,
      DistributedLock,
      DistributedLock,
    ];
    try {
      expect(await Promise.all([a.acquire(), b.acquire()])).toEqual([true, true]);
      await b.release();
      expect(sharedPool.idle).toBe(1);
      // Lending the idle one first would keep every connection of a burst in use, one per holding.
      expect(await c.acquire()).toBe(true);
      expect(rt.peers).toHaveLength(2);
      expect(rt.peers[0]?.requests.map((r) => r.join(" "))).toEqual(["l a 10 10", "l c 0 10"]);
      expect(sharedPool.idle).toBe(1);
    } finally {
      for (const l of [a, b, c]) l.close();
    }
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
    // "w" is taken: the try on the shared connection is refused, and the
    // blocking acquire goes to a connection of its own, where it waits.
    const first = rt.peers[0] as PeerEnd;
    const seen: string[][] = [];
    first.onRequest = (request) => {
      seen.push(request);
      if (request[1] === "w") first.send("timeout\n");
      else first.send(request[0] === "l" ? `ok ${token(5)} 10\n` : "ok\n");
    };
    rt.onPeer = undefined;
    const waiting = client
      .lock("w")
      .acquire()
      .catch((e: unknown) => e);
    while (rt.peers.length < 3) await tick();
    expect(seen).toEqual([["l", "w", "0 10"]]);
    expect(await rt.peers[2]?.nextRequest(1)).toEqual(["l", "w", "10 10"]);
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
