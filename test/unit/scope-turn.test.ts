/**
 * The turn a hold() scope keeps (src/engine.ts, src/unreleased.ts), through
 * the scripted peer with fake timers: a caller that times out waiting behind
 * an unreleased scope is told so, and what to do; a scope whose `HeldLock` is
 * collected unreleased gives the turn up once its holding has ended, with
 * `FinalizationRegistry` replaced by a fake the test collects by hand. The
 * real registry under a real GC is test/integration/abandoned.test.ts.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { AcquireTimeoutError, LockLostError } from "../../src/errors.ts";
import type { HeldLock } from "../../src/held.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { FakeRegistry, useFakeRegistry } from "../support/fake-registry.ts";
import { tick, useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const collect = (target: object): void => FakeRegistry.collect(target);
const watching = (target: object): number => FakeRegistry.watching(target);

useFakeRegistry();

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

/** Start hold() and grant it; returns the HeldLock and the peer. */
async function hold(lock: DistributedLock): Promise<[HeldLock, PeerEnd]> {
  const p = lock.hold();
  const peer = await rt.peer();
  await peer.nextRequest(1);
  peer.send(`ok ${token(1)} 30\n`);
  return [await p, peer];
}

/** A withLock() behind the scope, waiting for the turn at most `timeoutS`: what it gave. */
function behind(lock: DistributedLock, timeoutS: number): Promise<unknown> {
  return lock.withLock(() => "ran", { timeoutS }).catch((e: unknown) => e);
}

describe("a caller waiting behind an unreleased hold() scope", () => {
  it("is told the scope still holds it, and what to do", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    await hold(lock);
    const next = behind(lock, 2);
    await tick(2000);
    const err = await next;
    expect(err).toBeInstanceOf(AcquireTimeoutError);
    expect((err as Error).message).toBe(
      'timed out after 2s waiting for "k": this instance\'s previous hold() scope still holds it, not released in ' +
        "that time: call release() on its HeldLock (or use await using) to pass the turn on",
    );
    lock.close();
  });

  it("is told the scope lost the lock and was never released, naming the loss", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 1 });
    const [held] = await hold(lock);
    await tick(1000);
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    const next = behind(lock, 1);
    await tick(1000);
    const err = await next;
    expect(err).toBeInstanceOf(AcquireTimeoutError);
    expect((err as Error).message).toBe(
      `timed out after 1s waiting for "k": this instance's previous hold() scope was never released after it lost ` +
        `the lock (${(held.signal.reason as Error).message}): call release() on its HeldLock (or use await using) ` +
        "to pass the turn on",
    );
    lock.close();
  });

  it("is told nothing more behind a withLock() (its callback ends its turn)", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    let done: () => void = () => {};
    const first = lock.withLock(() => new Promise<void>((r) => (done = r)));
    const peer = await rt.peer();
    peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 30\n` : "ok\n");
    const next = behind(lock, 1);
    await tick(1000);
    expect(((await next) as Error).message).toBe('timed out after 1s waiting for "k"');
    done();
    await first;
    lock.close();
  });
});

describe("a hold() scope whose HeldLock is collected unreleased", () => {
  it("gives the turn up once maxHoldS has ended its holding, not before", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 5 });
      const [held] = await hold(lock);
      const next = behind(lock, 30);
      collect(held);
      // Still held: the lock is renewed on until maxHoldS, and the turn kept.
      await tick(4999);
      expect(lock.held).toBe(true);
      await tick(1);
      expect(lock.state).not.toBe("held");
      const peer = await rt.peer();
      await peer.nextRequest(1);
      peer.onRequest = () => peer.send("ok\n");
      peer.send(`ok ${token(2)} 30\n`);
      expect(await next).toBe("ran");
      expect(lock.state).toBe("released");
    } finally {
      warn.mockRestore();
    }
  });

  it("gives the turn up at once when its holding has already ended", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30, maxHoldS: 1 });
    const [held] = await hold(lock);
    await tick(1000);
    expect(lock.state).toBe("lost");
    const next = behind(lock, 30);
    collect(held);
    const peer = await rt.peer();
    peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(2)} 30\n` : "ok\n");
    expect(await next).toBe("ran");
  });

  it("gives the turn up after a connection loss too", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    const [held, first] = await hold(lock);
    const next = behind(lock, 30);
    collect(held);
    first.hangUp();
    await tick(0);
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.onRequest = () => peer.send("ok\n");
    peer.send(`ok ${token(2)} 30\n`);
    expect(await next).toBe("ran");
  });

  it("is watched only while its scope is open", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    const [held, peer] = await hold(lock);
    peer.onRequest = ([cmd]) => peer.send(cmd === "n" ? "ok 30\n" : "ok\n");
    expect(watching(held)).toBe(1); // the scope's registry; the warning's is told at the first renewal
    await tick(15_000);
    expect(watching(held)).toBe(2);
    await held.release();
    expect(watching(held)).toBe(0);
    lock.close();
  });
});
