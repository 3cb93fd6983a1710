/**
 * `maxHoldS` against a server (the double, or a real dflockd): the holding
 * ends after it, the holder is told with a cause a program can test, and the
 * server has let the lock go (a contender gets it long before the lease would
 * have run out). Every wait is for an event.
 */
import { describe, expect, it } from "vitest";
import {
  AcquireTimeoutError,
  DflockdClient,
  DistributedLock,
  DistributedSemaphore,
  LockError,
  LockLostError,
} from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd();
const at = () => ({ servers: [server().address] });

/** A promise of the first loss `onLost` is told, and the option that tells it. */
function lossWatch(): { lost: Promise<LockLostError>; onLost: (err: LockLostError) => void } {
  let onLost: (err: LockLostError) => void = () => {};
  const lost = new Promise<LockLostError>((resolve) => {
    onLost = resolve;
  });
  return { lost, onLost };
}

function expectMaxHold(err: unknown, k: string, maxHoldS: number): void {
  expect(err).toBeInstanceOf(LockLostError);
  expect((err as LockLostError).key).toBe(k);
  expect((err as Error).message).toContain(`maxHoldS of ${maxHoldS} s`);
  expect((err as Error).cause).toBeInstanceOf(LockError);
  expect(((err as Error).cause as LockError).code).toBe("MAX_HOLD");
}

describe("maxHoldS", () => {
  it("releases a lock after maxHoldS and reports it lost; a contender gets it long before the lease ends", async () => {
    const k = key("maxhold");
    const watch = lossWatch();
    const lock = new DistributedLock({ key: k, leaseTtlS: 30, maxHoldS: 0.3, onLost: watch.onLost, ...at() });
    const t0 = performance.now();
    expect(await lock.acquire()).toBe(true);
    const signal = lock.signal as AbortSignal;
    const err = await watch.lost;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
    expectMaxHold(err, k, 0.3);
    expect(signal.reason).toBe(err);
    expect(lock.state).toBe("lost");
    expect(() => lock.assertHeld()).toThrow(err);
    // The server let it go: a lease of 30 s would keep the contender out far longer than this wait.
    const contender = new DistributedLock({ key: k, acquireTimeoutS: 10, ...at() });
    const waited = performance.now();
    expect(await contender.acquire()).toBe(true);
    expect(performance.now() - waited).toBeLessThan(10_000);
    await contender.release();
    await expect(lock.release()).rejects.toBe(err);
    expect(lock.state).toBe("released");
  });

  it("a client's default applies to its locks; a lock's own value replaces it", async () => {
    const client = new DflockdClient({ ...at(), leaseTtlS: 30, maxHoldS: 0.3 });
    try {
      const short = key("short");
      const watch = lossWatch();
      const a = client.lock(short, { onLost: watch.onLost });
      const b = client.lock(key("long"), { maxHoldS: 600 });
      expect(await a.acquire()).toBe(true);
      expect(await b.acquire()).toBe(true);
      expectMaxHold(await watch.lost, short, 0.3);
      expect(b.held).toBe(true);
      const contender = client.lock(short, { acquireTimeoutS: 10, maxHoldS: undefined });
      expect(await contender.acquire()).toBe(true);
      await contender.release();
      await b.release();
      await a.release().catch(() => undefined);
    } finally {
      client.close();
    }
  });

  it("ends a hold() scope of a semaphore: its signal aborts, and the slot is free again", async () => {
    const k = key("maxhold-sem");
    const sem = new DistributedSemaphore({ key: k, limit: 1, leaseTtlS: 30, maxHoldS: 0.3, ...at() });
    const held = await sem.hold();
    const reason = await new Promise<unknown>((resolve) => {
      held.signal.addEventListener("abort", () => resolve(held.signal.reason), { once: true });
    });
    expectMaxHold(reason, k, 0.3);
    const other = new DistributedSemaphore({ key: k, limit: 1, acquireTimeoutS: 10, ...at() });
    expect(await other.acquire()).toBe(true);
    await other.release();
    await expect(held.release()).rejects.toBe(reason);
  });

  it("a hold() scope it ended keeps the instance's turn until released: a caller behind it is told why", async () => {
    const k = key("maxhold-turn");
    const lock = new DistributedLock({ key: k, leaseTtlS: 30, maxHoldS: 0.3, ...at() });
    const held = await lock.hold();
    const reason = await new Promise<unknown>((resolve) => {
      held.signal.addEventListener("abort", () => resolve(held.signal.reason), { once: true });
    });
    expectMaxHold(reason, k, 0.3);
    const err = await lock.withLock(() => "ran", { timeoutS: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcquireTimeoutError);
    const message = (err as Error).message;
    expect(message).toContain(`timed out after 1s waiting for "${k}": this instance's previous hold() scope`);
    expect(message).toContain("was never released after it lost the lock");
    expect(message).toContain("maxHoldS of 0.3 s");
    expect(message).toContain("call release() on its HeldLock (or use await using)");
    // Released, it reports the loss and passes the turn on.
    await expect(held.release()).rejects.toBe(reason);
    expect(await lock.withLock(() => "ran", { timeoutS: 1 })).toBe("ran");
    lock.close();
  });
});
