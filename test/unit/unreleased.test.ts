/**
 * A lock nobody will release (src/unreleased.ts), through the scripted peer
 * with fake timers: `maxHoldS` as the machine's `maxHold` event (when it ends
 * a holding, what the holder is told, what is left on the wire), its checks,
 * a client's default and a lock's own value; and the abandoned-holding
 * registry, with `FinalizationRegistry` replaced by a fake whose collections
 * the test makes by hand: which object is registered, once per holding, at
 * the holding's first renewal (a holding released sooner never meets the
 * registry), and when it is forgotten; and the warning. The real registry under a real GC
 * is test/integration/abandoned.test.ts.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError, LockError, LockLostError } from "../../src/errors.ts";
import type { AbandonedEvent } from "../../src/hooks.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore, type LockOptions } from "../../src/primitive.ts";
import { FakeRegistry, useFakeRegistry } from "../support/fake-registry.ts";
import { pause, tick, useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

/** The registrations now in force (none before the first one makes the registry). */
const cells = (): FakeRegistry["cells"] => FakeRegistry.last?.cells ?? [];

useFakeRegistry();

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

/** Start acquire() and grant it at once; returns the peer. */
async function held(lock: DistributedLock | DistributedSemaphore, lease = 10): Promise<PeerEnd> {
  const p = lock.acquire();
  const peer = await rt.peer();
  await peer.nextRequest(1);
  peer.send(`ok ${token(1)} ${lease}\n`);
  expect(await p).toBe(true);
  return peer;
}

/**
 * Run the clock to the holding's first renewal (sent before half its lease),
 * the peer's request number `n`, and answer it: the registry is told then.
 */
async function renewed(peer: PeerEnd, n: number, lease: number): Promise<void> {
  await tick(lease * 500);
  await peer.nextRequest(n);
  expect(peer.requests[n - 1]?.[0]).toMatch(/^s?n$/);
  peer.send(`ok ${lease}\n`);
  await tick();
}

/** What a maxHoldS loss looks like: a LockLostError naming the key and the limit, its cause coded MAX_HOLD. */
function expectMaxHoldLoss(err: unknown, key: string, maxHoldS: number): void {
  expect(err).toBeInstanceOf(LockLostError);
  const lost = err as LockLostError;
  expect(lost.code).toBe("LOCK_LOST");
  expect(lost.key).toBe(key);
  expect(lost.message).toContain(`"${key}"`);
  expect(lost.message).toContain(`maxHoldS of ${maxHoldS} s`);
  expect(lost.cause).toBeInstanceOf(LockError);
  expect((lost.cause as LockError).code).toBe("MAX_HOLD");
}

describe("maxHoldS", () => {
  it("ends the holding after maxHoldS: lost, told once (signal, onLost, hooks.lost), the connection let go", async () => {
    const onLost = vi.fn();
    const lost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, maxHoldS: 3, onLost, hooks: { lost } });
    const peer = await held(lock);
    const signal = lock.signal as AbortSignal;
    await tick(2999);
    expect(lock.state).toBe("held");
    expect(onLost).not.toHaveBeenCalled();
    await tick(1);
    expect(lock.state).toBe("lost");
    expect(onLost).toHaveBeenCalledTimes(1);
    const err = onLost.mock.calls[0]?.[0];
    expectMaxHoldLoss(err, "k", 3);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(err);
    expect(lost).toHaveBeenCalledTimes(1);
    expect(lost.mock.calls[0]?.[0]).toMatchObject({ key: "k", error: err });
    expect(() => lock.assertHeld()).toThrow(err);
    // Its only user: the connection is closed, which releases the lock on the server at once.
    expect(peer.closedByClient).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await expect(lock.release()).rejects.toBe(err);
    expect(lock.state).toBe("released");
    // A new holding gets a limit of its own.
    const again = await held(lock);
    expect(again).not.toBe(peer);
    await tick(2999);
    expect(lock.held).toBe(true);
    await tick(1);
    expect(lock.state).toBe("lost");
    expect(onLost).toHaveBeenCalledTimes(2);
  });

  it("renews as usual until then", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 4, maxHoldS: 5 });
    const peer = await held(lock, 4);
    // 4 s lease, 300 ms margin: renewals every 1850 ms.
    await tick(1850);
    expect(peer.requests[1]?.[0]).toBe("n");
    peer.send("ok 4\n");
    await tick(1850);
    expect(peer.requests[2]?.[0]).toBe("n");
    peer.send("ok 4\n");
    await tick(1299);
    expect(lock.state).toBe("held");
    await tick(1);
    expect(lock.state).toBe("lost");
  });

  it("ends a holding whose renewal is in flight at maxHoldS, not at its loss deadline", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 4, maxHoldS: 2, requestTimeoutMs: 60_000, onLost });
    const peer = await held(lock, 4);
    await tick(1850);
    expect(lock.state).toBe("renewing");
    await tick(149);
    expect(lock.state).toBe("renewing");
    await tick(1);
    expect(lock.state).toBe("lost");
    expectMaxHoldLoss(onLost.mock.calls[0]?.[0], "k", 2);
    expect(peer.closedByClient).toBe(true);
  });

  it("counts from the grant's arrival: time spent waiting for the lock does not count", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 3 });
    const e = lock.enqueue();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("queued\n");
    expect(await e).toBe("queued");
    const w = lock.wait(10);
    await peer.nextRequest(2);
    await tick(5000);
    peer.send(`ok ${token(1)} 30\n`);
    expect(await w).toBe(true);
    await tick(2999);
    expect(lock.state).toBe("held");
    await tick(1);
    expect(lock.state).toBe("lost");
  });

  it("is read from the clock by held, state and assertHeld(), with no timer run (a pause)", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 3, onLost });
    await held(lock, 30);
    pause(3000);
    expect(lock.held).toBe(false);
    expect(lock.state).toBe("lost");
    expectMaxHoldLoss(onLost.mock.calls[0]?.[0], "k", 3);
    expect(onLost).toHaveBeenCalledTimes(1);
  });

  it("does not end a release in flight, nor anything after a release", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 1, onLost });
    const peer = await held(lock, 30);
    await tick(500);
    const r = lock.release();
    await peer.nextRequest(2);
    await tick(1000);
    expect(lock.state).toBe("releasing");
    peer.send("ok\n");
    await r;
    expect(lock.state).toBe("released");
    await tick(5000);
    expect(onLost).not.toHaveBeenCalled();
    sharedPool.closeIdle();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ends a hold() scope's holding too: its signal aborts, its release() reports the loss", async () => {
    const lock = new DistributedSemaphore({ key: "s", limit: 2, leaseTtlS: 30, maxHoldS: 1.5 });
    const p = lock.hold();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 30\n`);
    const scope = await p;
    await tick(1500);
    expect(scope.signal.aborted).toBe(true);
    expectMaxHoldLoss(scope.signal.reason, "s", 1.5);
    await expect(scope.release()).rejects.toBe(scope.signal.reason);
  });

  it("comes from the client as a default, which a lock's own value replaces", async () => {
    const client = new DflockdClient({ maxHoldS: 2, leaseTtlS: 30 });
    const byDefault = client.lock("a");
    const explicitUndefined = client.lock("b", { maxHoldS: undefined });
    const own = client.semaphore("c", 3, { maxHoldS: 4 });
    for (const l of [byDefault, explicitUndefined, own]) await held(l, 30);
    await tick(1999);
    expect([byDefault.state, explicitUndefined.state, own.state]).toEqual(["held", "held", "held"]);
    await tick(1);
    expect([byDefault.state, explicitUndefined.state, own.state]).toEqual(["lost", "lost", "held"]);
    await tick(2000);
    expect(own.state).toBe("lost");
    client.close();
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["0", 0, /more than 0/],
    ["negative", -1, /more than 0/],
    ["NaN", Number.NaN, /the number NaN/],
    ["Infinity", Number.POSITIVE_INFINITY, /at most 31536000/],
    ["more than a year", 31_536_001, /If you meant 31536001 ms, pass 31536.001/],
    ["a string", "5", /Pass the number 5, not a string/],
    ["null", null, /got null/],
  ];
  it.each(bad)("refuses %s with InvalidArgumentError, before anything is sent", (_name, value, hint) => {
    const maxHoldS = value as number;
    const makers: Array<() => unknown> = [
      () => new DistributedLock({ key: "k", maxHoldS }),
      () => new DistributedSemaphore({ key: "k", limit: 1, maxHoldS }),
      () => new DflockdClient({ maxHoldS }),
      () => new DflockdClient().lock("k", { maxHoldS }),
      () => new DflockdClient().semaphore("k", 2, { maxHoldS }),
    ];
    for (const make of makers) {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/^maxHoldS is in seconds/);
      expect((err as Error).message).toMatch(hint);
    }
    expect(rt.peers).toHaveLength(0);
  });

  it("accepts fractions and up to a year", () => {
    for (const maxHoldS of [0.3, 1, 31_536_000]) {
      expect(() => new DistributedLock({ key: "k", maxHoldS } satisfies LockOptions)).not.toThrow();
    }
  });
});

describe("the abandoned-holding registry", () => {
  it("registers the instance of an acquire() at its first renewal, once per holding, never as its own held value, and forgets it at the end", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 4 });
    const peer = await held(lock, 4);
    expect(cells()).toHaveLength(0);
    await renewed(peer, 2, 4);
    expect(cells()).toHaveLength(1);
    expect(cells()[0]?.target).toBe(lock);
    expect(cells()[0]?.held).not.toBe(lock);
    // Later renewals register nothing more.
    await renewed(peer, 3, 4);
    expect(cells()).toHaveLength(1);
    const r = lock.release();
    await peer.nextRequest(4);
    peer.send("ok\n");
    await r;
    // Unregistered at once: V8's young collections keep every object still registered, so an instance released
    // and dropped without close() (the README's own pattern) would be promoted with all it refers to.
    expect(cells()).toHaveLength(0);
  });

  it("never tells the registry of a holding that ends before its first renewal", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : "ok\n");
    };
    const register = vi.spyOn(FakeRegistry.prototype, "register");
    try {
      for (let i = 0; i < 3; i++) {
        const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
        expect(await lock.acquire()).toBe(true);
        await tick(1000);
        await lock.release();
        lock.close();
      }
      await new DistributedLock({ key: "k", leaseTtlS: 10 }).withLock(() => tick(1000));
      expect(register).not.toHaveBeenCalled();
    } finally {
      register.mockRestore();
    }
  });

  // V8 keeps a cell's held value through young-generation collections even once unregistered: a held value
  // that still reached the instance after its holding (the driver did) kept every short holding's instance
  // alive into the old generation. After the holding ends, a held value must reach nothing.
  it("lets go of the holding once it ends: neither registry's held value reaches anything of it", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : cmd === "n" ? "ok 10\n" : "ok\n");
    };
    /** The objects and functions a held value still refers to. */
    const reaches = (held: unknown): unknown[] =>
      Object.values(held as object).filter((v) => (typeof v === "object" && v !== null) || typeof v === "function");
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    expect(await lock.acquire()).toBe(true);
    await tick(5000);
    const [holding] = FakeRegistry.all.flatMap((r) => r.cells.filter((c) => c.target === lock));
    expect(reaches(holding?.held)).not.toEqual([]);
    await lock.release();
    expect(reaches(holding?.held)).toEqual([]);

    const scope = await lock.hold();
    await tick(5000);
    const watches = FakeRegistry.all.flatMap((r) => r.cells.filter((c) => c.target === scope));
    expect(watches).toHaveLength(2);
    for (const w of watches) expect(reaches(w.held)).not.toEqual([]);
    await scope.release();
    for (const w of watches) expect(reaches(w.held)).toEqual([]);
    lock.close();
  });

  it("forgets a holding that is lost or closed", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const peer = await held(lock);
    await renewed(peer, 2, 10);
    expect(cells()).toHaveLength(1);
    peer.hangUp();
    await tick();
    expect(lock.state).toBe("lost");
    expect(cells()).toHaveLength(0);
    await lock.release().catch(() => undefined);
    await renewed(await held(lock), 2, 10);
    expect(cells()).toHaveLength(1);
    lock.close();
    expect(cells()).toHaveLength(0);
  });

  it("registers the instance of enqueue() and wait() once granted and renewed, not while queued", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const e = lock.enqueue();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("queued\n");
    await e;
    expect(cells()).toHaveLength(0);
    const w = lock.wait();
    await peer.nextRequest(2);
    peer.send(`ok ${token(1)} 10\n`);
    await w;
    expect(cells()).toHaveLength(0);
    await renewed(peer, 3, 10);
    expect(cells().map((c) => c.target)).toEqual([lock]);
    lock.close();
  });

  it("registers the HeldLock of a hold(), not the instance; nothing for withLock()", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : cmd === "n" ? "ok 10\n" : "ok\n");
    };
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const scope = await lock.hold();
    await tick(5000);
    expect(cells().map((c) => c.target)).toEqual([scope]);
    await scope.release();
    expect(cells()).toHaveLength(0);
    await lock.withLock(async () => {
      await tick(5000);
      expect(cells()).toHaveLength(0);
    });
    // A manual acquire after them is watched again.
    expect(await lock.acquire()).toBe(true);
    await tick(5000);
    expect(cells().map((c) => c.target)).toEqual([lock]);
    lock.close();
  });

  it("registers a late grant at the first renewal after the one that confirmed it, not before", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    // 6 s after the send, 3.5 s of the usable 9.5 s are left: a renewal must confirm it first.
    await tick(6000);
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    expect(peer.requests[1]?.[0]).toBe("n");
    expect(cells()).toHaveLength(0);
    peer.send("ok 10\n");
    expect(await p).toBe(true);
    expect(cells()).toHaveLength(0);
    await renewed(peer, 3, 10);
    expect(cells().map((c) => c.target)).toEqual([lock]);
    lock.close();
    expect(cells()).toHaveLength(0);
  });

  it("a manual call that got nothing leaves nothing behind for a later withLock()", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, acquireTimeoutS: 0 });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("timeout\n");
    expect(await p).toBe(false);
    const w = lock.withLock(() => {
      expect(cells()).toHaveLength(0);
    });
    await peer.nextRequest(2);
    peer.send(`ok ${token(2)} 10\n`);
    await peer.nextRequest(3);
    peer.send("ok\n");
    await w;
    expect(cells()).toHaveLength(0);
  });

  it("warns once when the instance is collected while it holds, and the holding goes on", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const abandoned = vi.fn<(e: AbandonedEvent) => void>();
      const lock = new DistributedLock({ key: "jobs", leaseTtlS: 4, hooks: { abandoned } });
      const peer = await held(lock, 4);
      await renewed(peer, 2, 4);
      const watch = cells()[0]?.held;
      (FakeRegistry.last as FakeRegistry).collect(lock);
      expect(warn).toHaveBeenCalledTimes(1);
      const text = String(warn.mock.calls[0]?.[0]);
      expect(text).toContain('DistributedLock holding "jobs" was garbage-collected');
      expect(text).toContain("until the process exits");
      expect(text).toMatch(/Release it .*or set maxHoldS/);
      expect(abandoned).toHaveBeenCalledTimes(1);
      expect(abandoned.mock.calls[0]?.[0]).toEqual({
        key: "jobs",
        server: "127.0.0.1:6388",
        object: "DistributedLock",
        maxHoldS: undefined,
      });
      // Once: a second report of the same holding says nothing.
      (FakeRegistry.last as FakeRegistry).cleanup(watch);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(abandoned).toHaveBeenCalledTimes(1);
      // Still held and renewed.
      await tick(1850);
      expect(peer.requests[2]?.[0]).toBe("n");
      expect(lock.state).toBe("renewing");
      lock.close();
    } finally {
      warn.mockRestore();
    }
  });

  it("names a semaphore, a HeldLock and the maxHoldS that will end the holding", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const abandoned = vi.fn<(e: AbandonedEvent) => void>();
      const sem = new DistributedSemaphore({ key: "s", limit: 2, leaseTtlS: 30, maxHoldS: 60, hooks: { abandoned } });
      await renewed(await held(sem, 30), 2, 30);
      (FakeRegistry.last as FakeRegistry).collect(sem);
      expect(String(warn.mock.calls[0]?.[0])).toContain('DistributedSemaphore holding "s"');
      expect(String(warn.mock.calls[0]?.[0])).toContain("until its maxHoldS of 60 s");
      expect(abandoned.mock.calls[0]?.[0]).toMatchObject({ object: "DistributedSemaphore", maxHoldS: 60 });
      sem.close();

      const lock = new DistributedLock({ key: "h", leaseTtlS: 30, hooks: { abandoned } });
      const p = lock.hold();
      const peer = await rt.peer();
      await peer.nextRequest(1);
      peer.send(`ok ${token(1)} 30\n`);
      const scope = await p;
      await renewed(peer, 2, 30);
      (FakeRegistry.last as FakeRegistry).collect(scope);
      expect(String(warn.mock.calls[1]?.[0])).toContain('HeldLock holding "h"');
      expect(abandoned.mock.calls[1]?.[0]).toMatchObject({ key: "h", object: "HeldLock" });
      lock.close();
    } finally {
      warn.mockRestore();
    }
  });

  it("a late report of an ended holding says nothing while the instance's next holding holds; the next one warns", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 30\n` : cmd === "n" ? "ok 30\n" : "ok\n");
    };
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
      expect(await lock.acquire()).toBe(true);
      await tick(15_000);
      const first = cells()[0]?.held;
      expect(first).toBeDefined();
      await lock.release();
      expect(await lock.acquire()).toBe(true);
      await tick(15_000);
      const second = cells()[0]?.held;
      expect(second).not.toBe(first);
      // The first holding's report, run late (a real registry's unregister() prevents it; this is the second guard).
      (FakeRegistry.last as FakeRegistry).cleanup(first);
      expect(warn).not.toHaveBeenCalled();
      (FakeRegistry.last as FakeRegistry).collect(lock);
      expect(warn).toHaveBeenCalledTimes(1);
      lock.close();
    } finally {
      warn.mockRestore();
    }
  });

  it("says nothing for a holding that ended before its report ran", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
      await renewed(await held(lock), 2, 10);
      const watch = cells()[0]?.held;
      expect(watch).toBeDefined();
      lock.close();
      (FakeRegistry.last as FakeRegistry).cleanup(watch);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});
