/**
 * The abandoned-holding registry (src/unreleased.ts), through the scripted
 * peer with fake timers, with `FinalizationRegistry` replaced by a fake whose
 * collections the test makes by hand: which object is registered, once per
 * holding, at the holding's first renewal (a holding released sooner never
 * meets the registry), and when it is forgotten; and the warning. The real
 * registry under a real GC is test/integration/abandoned.test.ts; `maxHoldS`
 * is test/unit/unreleased.test.ts.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { AbandonedEvent } from "../../src/hooks.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { FakeRegistry, useFakeRegistry } from "../support/fake-registry.ts";
import { grantedOn, tick, useLockTest } from "../support/lock-test.ts";
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
const held = (lock: DistributedLock | DistributedSemaphore, lease = 10): Promise<PeerEnd> => grantedOn(rt, lock, lease);

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
