/**
 * A lock nobody will release (src/unreleased.ts), through the scripted peer
 * with fake timers: `maxHoldS` as the machine's `maxHold` event (when it ends
 * a holding, what the holder is told, what is left on the wire), its checks,
 * a client's default and a lock's own value. `FinalizationRegistry` is the
 * fake, so that no holding here meets the real one. The abandoned-holding
 * registry is test/unit/abandoned-registry.test.ts.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError, LockError, LockLostError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore, type LockOptions } from "../../src/primitive.ts";
import { useFakeRegistry } from "../support/fake-registry.ts";
import { grantedOn, pause, tick, useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

useFakeRegistry();

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

/** Start acquire() and grant it at once; returns the peer. */
const held = (lock: DistributedLock | DistributedSemaphore, lease = 10): Promise<PeerEnd> => grantedOn(rt, lock, lease);

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
