/**
 * Seams between the driver and its callers that a review of the machine
 * rewrite found: a late grant is the caller's only once its acquirer has
 * resumed, HeldLock.assertHeld() during a release, wait() after a loss, and
 * a release answered just before its connection closed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LockError, LockLostError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, type LockOptions } from "../../src/primitive.ts";
import { grantedOn } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
/** The monotonic clock, moved by hand: timers are fake and run only when a test advances them. */
let now = 1000;
beforeEach(() => {
  sharedPool.closeIdle();
  rt = useScriptedRuntime();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  now = 1000;
  vi.spyOn(performance, "now").mockImplementation(() => now);
});
afterEach(() => {
  sharedPool.closeIdle();
  vi.restoreAllMocks();
  vi.useRealTimers();
});

function watched(extra: Partial<LockOptions> = {}) {
  const onLost = vi.fn();
  const lost = vi.fn();
  const released = vi.fn();
  const lock = new DistributedLock({ key: "k", leaseTtlS: 10, onLost, ...extra });
  return { lock, onLost, lost, released };
}

/** Close and release past the deadline, with and without hooks: close-past-deadline.test.ts. */
const grant = (lock: DistributedLock, lease = 10): Promise<PeerEnd> => grantedOn(rt, lock, lease);

describe("a late grant", () => {
  it("whose connection closes between its confirmation and its acquirer's turn is not the caller's", async () => {
    const lost = vi.fn();
    const { lock, onLost } = watched({ hooks: { lost } });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    now += 6000; // more than half the usable lease gone: the grant must be confirmed
    peer.send(`ok ${token(1)} 10\n`);
    expect((await peer.nextRequest(2))[0]).toBe("n");
    expect(lock.state).toBe("connecting");
    expect(lock.held).toBe(false);
    // Confirmed, and the connection closes before the acquirer resumes.
    peer.send("ok 10\n");
    peer.hangUp(new Error("ECONNRESET"));
    const r = await p;
    expect(r).toBeInstanceOf(LockError);
    expect(r).not.toBeInstanceOf(LockLostError);
    expect(onLost).not.toHaveBeenCalled();
    expect(lost).not.toHaveBeenCalled();
    expect(lock.state).toBe("released");
  });
});

describe("HeldLock.assertHeld()", () => {
  it("agrees with lock.assertHeld() while its release is in flight", async () => {
    const { lock } = watched();
    const p = lock.hold();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 10\n`);
    const held = await p;
    held.assertHeld();
    const released = held.release();
    expect((await peer.nextRequest(2))[0]).toBe("r");
    expect(() => lock.assertHeld()).toThrow(expect.objectContaining({ code: "NOT_HELD" }));
    expect(() => held.assertHeld()).toThrow(expect.objectContaining({ code: "NOT_HELD" }));
    peer.send("ok\n");
    await released;
    expect(() => held.assertHeld()).toThrow(LockError);
  });
});

describe("after a loss", () => {
  it("wait() throws it, and release() and assertHeld() still report it", async () => {
    const { lock, onLost } = watched();
    const e = lock.enqueue();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`acquired ${token(1)} 10\n`);
    expect(await e).toBe("acquired");
    now += 60_000; // a pause past the deadline, no timer run
    await expect(lock.wait(1)).rejects.toBeInstanceOf(LockLostError);
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(() => lock.assertHeld()).toThrow(LockLostError);
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    expect(lock.state).toBe("released");
  });
});

describe("a release answered ok", () => {
  it("ends the holding even if the connection closes before release() resumes", async () => {
    const { lock, onLost } = watched();
    const peer = await grant(lock);
    peer.onRequest = ([cmd]) => {
      if (cmd !== "r") return;
      peer.send("ok\n");
      peer.hangUp();
    };
    await lock.release();
    expect(lock.state).toBe("released");
    expect(onLost).not.toHaveBeenCalled();
    // Free to acquire again at once, not BUSY until the old lease's deadline.
    const again = lock.acquire({ timeoutS: 0 });
    const next = await rt.peer();
    await next.nextRequest(1);
    next.send(`ok ${token(2)} 10\n`);
    expect(await again).toBe(true);
    lock.close();
  });
});
