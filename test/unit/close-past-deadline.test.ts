/**
 * close(), client.close() and release() past the loss deadline, with no
 * timer run: never a loss for what the user ended, hooks or not (I3).
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { LockLostError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { grantedOn, pause, useLockTest } from "../support/lock-test.ts";
import type { PeerEnd, ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

const held = (lock: DistributedLock, lease = 10): Promise<PeerEnd> => grantedOn(rt, lock, lease);

describe("close() past the deadline", () => {
  it("close() without hooks: no onLost", async () => {
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost });
    await held(lock);
    pause(60_000);
    lock.close();
    expect(onLost).not.toHaveBeenCalled();
  });

  it("close() with hooks.released: no onLost either (README: close() never calls onLost)", async () => {
    const onLost = vi.fn();
    const lost = vi.fn();
    const released = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost, hooks: { released, lost } });
    await held(lock);
    const signal = lock.signal as AbortSignal;
    pause(60_000);
    lock.close();
    expect(onLost).not.toHaveBeenCalled();
    expect(lost).not.toHaveBeenCalled();
    expect(released).toHaveBeenCalledTimes(1);
    expect(signal.reason).not.toBeInstanceOf(LockLostError);
  });

  it("client.close() with hooks.released: no onLost (I3)", async () => {
    const onLost = vi.fn();
    const client = new DflockdClient({});
    const lock = client.lock("k", { leaseTtlS: 10, onLost, hooks: { released: () => {} } });
    await held(lock);
    pause(60_000);
    client.close();
    expect(onLost).not.toHaveBeenCalled();
  });

  it("release() past the deadline behaves the same with and without hooks", async () => {
    const results: string[] = [];
    for (const hooks of [undefined, { released: () => {} }]) {
      vi.restoreAllMocks();
      sharedPool.closeIdle();
      const onLost = vi.fn();
      const lock = new DistributedLock({ key: `k${results.length}`, leaseTtlS: 10, onLost, hooks });
      const peer = await held(lock);
      peer.onRequest = ([cmd]) => {
        if (cmd === "r") peer.send("ok\n");
      };
      pause(60_000);
      const r = await lock.release().then(
        () => "resolved",
        (e: unknown) => (e instanceof LockLostError ? "lost" : String(e)),
      );
      results.push(`${r}, onLost ${onLost.mock.calls.length}`);
    }
    expect(results[1]).toBe(results[0]);
  });
});
