/**
 * Connections opened for sharing (src/sharing-dial.ts, `ConnectionPool.sharingDial`),
 * through the scripted in-memory peer with fake timers: a burst of first
 * acquisitions opens `shareAfter` connections of their own and then one per
 * 64 joiners; a joiner that gives up leaves only itself; the connect is
 * cancelled once every joiner has left; a failed connect fails every joiner;
 * one key never waits twice for one connection; a client's close() ends the
 * wait and leaves no socket open.
 *
 * Every test talks to a server port of its own, so that a connection one test
 * leaves behind is never lent to the next.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { ConnectionError, LockError } from "../../src/errors.ts";
import { MAX_SHARED, sharedPool } from "../../src/pool.ts";
import type { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, useGatedPoolTest } from "../support/pool.ts";
import type { PeerEnd, ScriptedRuntime } from "../support/scripted-peer.ts";

const gated = useGatedPoolTest(7600);
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = gated.rt();
});
const { lock, open } = gated;

/** The commands and waits a peer was sent, as "cmd key wait". */
const sent = (peer: PeerEnd | undefined): string[] => (peer?.requests ?? []).map((r) => r.join(" "));

describe("a burst of first acquisitions", () => {
  it("opens shareAfter connections of their own, then one per MAX_SHARED joiners, each joiner trying", async () => {
    sharedPool.shareAfter = 2;
    const n = 2 + 2 * MAX_SHARED;
    const locks = Array.from({ length: n }, (_, i) => lock(`k${i}`));
    const acquired = Promise.all(locks.map((l) => l.acquire()));
    open();
    expect(await acquired).toEqual(locks.map(() => true));
    // Opening one per acquisition made n connections.
    expect(rt.peers).toHaveLength(4);
    expect(sent(rt.peers[0])).toEqual(["l k0 10 10"]);
    const joined = sent(rt.peers[2]);
    expect(joined).toHaveLength(MAX_SHARED);
    expect(joined.every((r) => r.endsWith(" 0 10"))).toBe(true);
    await Promise.all(locks.map((l) => l.release()));
    expect(sharedPool.shared).toBe(0);
  });

  it("a joiner whose key is taken asks again, blocking, on a connection of its own", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const b = lock("taken");
    const first = a.acquire();
    const second = b.acquire({ timeoutS: 5 });
    rt.onPeer = (peer) => {
      serve(peer);
      if (rt.peers.length !== 2) return;
      const granting = peer.onRequest;
      peer.onRequest = (request) => {
        // The try is refused; what comes after it is granted.
        if (request[2] === "0 10") peer.send("timeout\n");
        else granting?.(request);
      };
    };
    open();
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    // The connection opened for sharing was left idle by the refused try, and taken, to itself, for the wait.
    expect(rt.peers).toHaveLength(2);
    expect(sent(rt.peers[1])).toEqual(["l taken 0 10", "l taken 5 10"]);
    await Promise.all([a.release(), b.release()]);
  });
});

describe("which acquires wait for a connection opened for sharing", () => {
  it("one that is up, with room, is joined while own connects are still opening", async () => {
    sharedPool.shareAfter = 2;
    const slow = rt.gate;
    const own = [lock("a"), lock("b")];
    const owning = own.map((l) => l.acquire());
    await tick();
    let quick = (): void => {};
    rt.gate = new Promise<void>((resolve) => {
      quick = resolve;
    });
    const joiners = [lock("c"), lock("d")];
    const joining = joiners.map((l) => l.acquire());
    await tick();
    rt.gate = undefined;
    quick();
    expect(await Promise.all(joining)).toEqual([true, true]);
    expect(rt.peers).toHaveLength(1);
    // It holds 2 of 64: the next acquire joins it rather than open another (found in review).
    const e = lock("e");
    expect(await e.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    open();
    await slow;
    expect(await Promise.all(owning)).toEqual([true, true]);
    await Promise.all([...own, ...joiners, e].map((l) => l.release()));
  });

  it("not one for a key held on a shared connection here: it goes straight to a connection of its own", async () => {
    sharedPool.shareAfter = 1;
    open();
    const holder = lock("hot");
    expect(await holder.acquire()).toBe(true);
    // The holder's connection is shared now, with "hot" on it: a try elsewhere could not take the lock.
    const twin = lock("hot");
    const waiting = twin.acquire({ timeoutS: 5 });
    await tick();
    expect(rt.peers).toHaveLength(2);
    expect(sent(rt.peers[1])).toEqual(["l hot 5 10"]);
    expect(await waiting).toBe(true);
    await Promise.all([holder.release(), twin.release()]);
  });

  it("a key that left every shared connection waits for one opened for sharing again", async () => {
    sharedPool.shareAfter = 1;
    open();
    // One shared connection, full: 64 holdings, "hot" among them.
    const locks = [lock("hot"), ...Array.from({ length: MAX_SHARED - 1 }, (_, i) => lock(`f${i}`))];
    for (const l of locks) expect(await l.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    const [hot] = locks as [DistributedLock];
    await hot.release();
    const filler = lock("x");
    expect(await filler.acquire()).toBe(true);
    // Full again, "hot" on none of it: another instance of "hot" tries on a connection opened for sharing.
    const again = lock("hot");
    expect(await again.acquire({ timeoutS: 5 })).toBe(true);
    expect(rt.peers).toHaveLength(2);
    expect(sent(rt.peers[1])).toEqual(["l hot 0 10"]);
    await Promise.all([...locks.slice(1), filler, again].map((l) => l.release()));
  });

  it("not one for a key on a connection opened for sharing: its joiners count as on it once it is up", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const b = lock("b");
    // "a" opens the first connection, its own; "b" waits for one opened for sharing.
    const acquired = Promise.all([a.acquire(), b.acquire()]);
    open();
    expect(await acquired).toEqual([true, true]);
    expect(rt.peers).toHaveLength(2);
    // "a"'s connection goes idle and is closed: the one opened for sharing, with "b" on it, is all there is.
    await a.release();
    sharedPool.closeIdle();
    expect(sharedPool.shared).toBe(1);
    // "b" is on it: another instance of "b" goes straight to a connection of its own, no try first (found in review).
    const twin = lock("b");
    const waiting = twin.acquire({ timeoutS: 5 });
    await tick();
    expect(rt.peers).toHaveLength(3);
    expect(sent(rt.peers[2])).toEqual(["l b 5 10"]);
    await b.release();
    expect(await waiting).toBe(true);
    await twin.release();
  });

  it("not one for a key another instance waits for: each instance of a key in a burst asks on its own", async () => {
    sharedPool.shareAfter = 1;
    const twins = [lock("k"), lock("k"), lock("k")];
    const first = lock("a").acquire();
    const asking = twins.map((t) => t.acquire({ timeoutS: 5 }));
    open();
    await first;
    expect(await Promise.all(asking)).toEqual([true, true, true]);
    // a's, one opened for sharing (the first "k" tries there), and one of its own for each other "k".
    expect(rt.peers).toHaveLength(4);
    expect(
      rt.peers
        .flatMap(sent)
        .filter((r) => r.startsWith("l k "))
        .sort(),
    ).toEqual(["l k 0 10", "l k 5 10", "l k 5 10"]);
  });
});

describe("waiting for a connection opened for sharing", () => {
  it("a joiner that gives up leaves only itself", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("own");
    const own = a.acquire();
    const quitter = new AbortController();
    const b = lock("b");
    const c = lock("c");
    const gaveUp = b.acquire({ signal: quitter.signal });
    const stays = c.acquire();
    quitter.abort();
    await expect(gaveUp).rejects.toMatchObject({ code: "ABORTED" });
    expect(b.state).toBe("released");
    open();
    expect(await own).toBe(true);
    expect(await stays).toBe(true);
    expect(rt.peers).toHaveLength(2);
    expect(sent(rt.peers[1])).toEqual(["l c 0 10"]);
    await Promise.all([a.release(), c.release()]);
  });

  it("an instance that left does not take another instance of its key out of the wait", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const own = a.acquire();
    const quitter = new AbortController();
    const first = lock("k");
    const gaveUp = first.acquire({ signal: quitter.signal });
    // Keeps the connect going once the first has left.
    const other = lock("x");
    const kept = other.acquire();
    quitter.abort();
    // The key's place is free: another instance of it waits for the same connection, and then the first is closed.
    const second = lock("k");
    const stays = second.acquire();
    first.close();
    await expect(gaveUp).rejects.toMatchObject({ code: "ABORTED" });
    open();
    expect(await own).toBe(true);
    expect(await stays).toBe(true);
    expect(await kept).toBe(true);
    expect(rt.peers).toHaveLength(2);
    expect(sent(rt.peers[1])?.sort()).toEqual(["l k 0 10", "l x 0 10"]);
    await Promise.all([a.release(), second.release(), other.release()]);
  });

  it("the connect is cancelled once every joiner has left, and takes no new joiner meanwhile", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const own = a.acquire();
    const b = lock("b");
    const c = lock("c");
    const gaveUp = b.acquire();
    const closed = c.acquire();
    b.close();
    c.close();
    await expect(gaveUp).rejects.toBeInstanceOf(LockError);
    await expect(closed).rejects.toBeInstanceOf(LockError);
    // Joins after the cancel start a connect of their own kind, not the cancelled one.
    const d = lock("d");
    const later = d.acquire();
    open();
    expect(await own).toBe(true);
    expect(await later).toBe(true);
    await tick();
    // a's, the cancelled one (closed as it opened, nothing sent), and d's.
    expect(rt.peers).toHaveLength(3);
    const cancelled = rt.peers.find((p) => p.closedByClient);
    expect(cancelled).toBeDefined();
    expect(sent(cancelled)).toEqual([]);
    expect(rt.peers.filter((p) => sent(p).includes("l d 0 10"))).toHaveLength(1);
    await Promise.all([a.release(), d.release()]);
  });

  it("a connect that fails fails every joiner with its error, and the next acquire connects afresh", async () => {
    sharedPool.shareAfter = 1;
    const attempts = ["a", "b", "c"].map((k) => lock(k).acquire());
    rt.refuse = true;
    open();
    for (const p of attempts) await expect(p).rejects.toBeInstanceOf(ConnectionError);
    rt.refuse = false;
    const d = lock("d");
    expect(await d.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    expect(sent(rt.peers[0])).toEqual(["l d 10 10"]);
    await d.release();
  });

  it("two instances of one key never wait for the same connection", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const own = a.acquire();
    const twins = [lock("k"), lock("k")];
    const both = twins.map((t) => t.acquire({ timeoutS: 0 }));
    open();
    expect(await own).toBe(true);
    // (This scripted server grants whatever is asked.)
    expect(await Promise.all(both)).toEqual([true, true]);
    // Each try went to a connection of its own kind: never two of "k" on one.
    const carrying = rt.peers.filter((p) => sent(p).some((r) => r.startsWith("l k ")));
    expect(carrying).toHaveLength(2);
    await a.release();
    await Promise.all(twins.map((t) => t.release()));
  });

  it("a client's close() ends every wait, and the connection, once open, is closed", async () => {
    sharedPool.shareAfter = 1;
    const client = new DflockdClient({ servers: gated.servers(), leaseTtlS: 10 });
    const own = client.lock("a").acquire();
    const joiners = ["b", "c"].map((k) => client.lock(k).acquire());
    client.close();
    for (const p of [own, ...joiners]) await expect(p).rejects.toMatchObject({ code: "ABORTED" });
    open();
    await tick();
    expect(rt.peers.every((p) => p.closedByClient)).toBe(true);
    expect(rt.peers.every((p) => sent(p).length === 0)).toBe(true);
  });
});
