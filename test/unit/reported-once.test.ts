/**
 * Each failure reaches the call it belongs to, once: a refused confirmation,
 * a renewal during release(). (wait() after a pause: seams.test.ts.)
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { LockLostError } from "../../src/errors.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { grantedOn, tick, useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

const held = (lock: DistributedLock, lease = 10): Promise<PeerEnd> => grantedOn(rt, lock, lease);

describe("each failure is reported once, to the call it belongs to", () => {
  it("a refused confirmation is reported once: a later wait() says NOT_ENQUEUED", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10 });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    await tick(12_000);
    peer.send(`ok ${token(1)} 10\n`);
    await peer.nextRequest(2);
    peer.send("error\n");
    expect(await p).toBeInstanceOf(LockLostError);
    await expect(lock.wait(1)).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
  });

  it("hooks.renewed for a renewal confirmed while releasing (as before)", async () => {
    const renewed = vi.fn();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, requestTimeoutMs: 60_000, hooks: { renewed } });
    const peer = await held(lock, 10);
    await tick(4750);
    await peer.nextRequest(2);
    expect(peer.requests[1]?.[0]).toBe("n");
    const r = lock.release();
    peer.send("ok 10\n");
    await peer.nextRequest(3);
    peer.send("ok\n");
    await r;
    expect(renewed).toHaveBeenCalledTimes(1);
  });
});
